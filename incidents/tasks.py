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


# --- Sign-off (issue 5) ------------------------------------------------------------------

@shared_task(bind=True, max_retries=5, ignore_result=True)
def notify_signoffs_voided(self, signoff_ids: list[int]) -> None:
    from incidents.plan.signoff import signoffs_voided_notify

    try:
        signoffs_voided_notify(signoff_ids=signoff_ids)
    except (smtplib.SMTPException, OSError) as exc:
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 10) from exc


# --- Deliverability monitoring (issue 6) ---------------------------------------------------

@shared_task(bind=True, max_retries=5, ignore_result=True)
def notify_deliverability_owner(self, event_id: int) -> None:
    from incidents.monitoring.services import deliverability_alert_notify

    event = TimelineEvent.objects.select_related("incident").filter(pk=event_id).first()
    if event is None:
        log.warning("timeline event %s is gone; no deliverability email", event_id)
        return
    try:
        deliverability_alert_notify(event=event)
    except (smtplib.SMTPException, OSError) as exc:
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 10) from exc


@shared_task(ignore_result=True)
def check_deliverability() -> int:
    from incidents.monitoring.services import deliverability_check_open_incidents

    return deliverability_check_open_incidents()
