import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("amends")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Step packages keep their own task modules (incidents/plan/tasks.py, ...).
app.autodiscover_tasks(["incidents.plan", "incidents.monitoring", "incidents.learn",
                        "incidents.assessment"])
