"""Step 6's background work. Names stay under incidents.tasks so queued messages and
the beat schedule keep working."""

import logging
import smtplib

from celery import shared_task

from incidents.models import TimelineEvent
from incidents.monitoring.services import (
    deliverability_alert_notify,
    deliverability_check_open_incidents,
)

log = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=5, ignore_result=True,
             name="incidents.tasks.notify_deliverability_owner")
def notify_deliverability_owner(self, event_id: int) -> None:
    event = TimelineEvent.objects.select_related("incident").filter(pk=event_id).first()
    if event is None:
        log.warning("timeline event %s is gone; no deliverability email", event_id)
        return
    try:
        deliverability_alert_notify(event=event)
    except (smtplib.SMTPException, OSError) as exc:
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 10) from exc


@shared_task(ignore_result=True, name="incidents.tasks.check_deliverability")
def check_deliverability() -> int:
    return deliverability_check_open_incidents()
