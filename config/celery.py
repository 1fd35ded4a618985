import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

from config.longlived import freeze_loaded_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("amends")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Step packages keep their own task modules (incidents/plan/tasks.py, ...).
app.autodiscover_tasks(["incidents.plan", "incidents.monitoring", "incidents.learn",
                        "incidents.assessment"])


@worker_init.connect  # the worker's main process (the only one with --pool=solo)
@worker_process_init.connect  # each prefork child
def _freeze_loaded_objects(**_kwargs) -> None:
    freeze_loaded_objects()
