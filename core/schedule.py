"""Every periodic task Amends runs, in one place (read by CELERY_BEAT_SCHEDULE)."""

BEAT_SCHEDULE: dict = {
    "incidents-check-step-targets": {
        "task": "incidents.tasks.check_step_targets",
        "schedule": 60.0,
    },
}
