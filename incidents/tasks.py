import logging
import smtplib

from celery import shared_task

from incidents import services
from incidents.models import TimelineEvent

log = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=5, ignore_result=True)
def notify_timeline_event(self, event_id: int) -> None:
    event = TimelineEvent.objects.select_related("incident").filter(pk=event_id).first()
    if event is None:
        log.warning("timeline event %s is gone; nothing to notify", event_id)
        return
    try:
        services.timeline_event_notify(event=event)
    except (smtplib.SMTPException, OSError) as exc:
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 10) from exc


@shared_task(ignore_result=True)
def check_step_targets() -> int:
    return services.steps_flag_overdue()
