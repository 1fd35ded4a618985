"""Step 4's background work. Names stay under incidents.tasks so queued messages and
the beat schedule keep working."""

import smtplib

from celery import shared_task

from incidents.plan.signoff import signoff_request_notify, signoffs_voided_notify


@shared_task(bind=True, max_retries=5, ignore_result=True,
             name="incidents.tasks.notify_signoffs_voided")
def notify_signoffs_voided(self, signoff_ids: list[int]) -> None:
    try:
        signoffs_voided_notify(signoff_ids=signoff_ids)
    except (smtplib.SMTPException, OSError) as exc:
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 10) from exc


@shared_task(bind=True, max_retries=5, ignore_result=True,
             name="incidents.tasks.notify_signoff_requested")
def notify_signoff_requested(self, incident_id: int, user_ids: list[int]) -> None:
    try:
        signoff_request_notify(incident_id=incident_id, user_ids=user_ids)
    except (smtplib.SMTPException, OSError) as exc:
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 10) from exc
