import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

from config.longlived import settle_long_lived_process

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("amends")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Step packages keep their own task modules (incidents/plan/tasks.py, ...).
app.autodiscover_tasks(["incidents.plan", "incidents.monitoring", "incidents.learn",
                        "incidents.assessment"])


@worker_init.connect  # the worker's main process (the only one with --pool=solo)
@worker_process_init.connect  # each prefork child
def _settle(**_kwargs) -> None:
    settle_long_lived_process()
