"""Every periodic task Amends runs, in one place (read by CELERY_BEAT_SCHEDULE)."""

BEAT_SCHEDULE: dict = {
    "incidents-check-step-targets": {
        "task": "incidents.tasks.check_step_targets",
        "schedule": 60.0,
    },
    "deliverability-sweep-events": {
        "task": "deliverability.tasks.sweep_delivery_events",
        "schedule": 300.0,
    },
    "deliverability-prune-raw-events": {
        "task": "deliverability.tasks.prune_raw_delivery_events",
        "schedule": 86400.0,
    },
    "incidents-check-deliverability": {
        "task": "incidents.tasks.check_deliverability",
        "schedule": 60.0,
    },
}

# Issue 4, send: broadcasts whose batch chain died (a killed worker) are picked up again,
# claims no live worker holds become "in doubt", and in-doubt rows are reconciled. Every
# 2 s so a dead worker costs seconds, not a minute (issue 15); one cheap query when idle.
BEAT_SCHEDULE["messaging-broadcast-watchdog"] = {
    "task": "messaging.tasks.broadcast_watchdog",
    "schedule": 2.0,
    "options": {"expires": 10.0},  # a backlog of looks is worth nothing
}

# Issue 12: imports whose worker died are queued again; uploads of previews nobody
# imported do not pile up under MEDIA_ROOT.
BEAT_SCHEDULE["audiences-import-watchdog"] = {
    "task": "audiences.tasks.audience_import_watchdog",
    "schedule": 300.0,
}

# Issue 13: an affected-audience computation whose task message was lost is queued again
# instead of waiting for a worker forever.
BEAT_SCHEDULE["incidents-audience-watchdog"] = {
    "task": "incidents.assessment.tasks.audience_watchdog",
    "schedule": 60.0,
    "options": {"expires": 50.0},
}
