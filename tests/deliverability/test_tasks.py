"""The normalisation task run by a real Celery worker, enqueued after the webhook commits."""

import pytest

from deliverability.models import DeliveryEvent, RawDeliveryBatch, RawDeliveryEvent
from tests.conftest import wait_for

from . import payloads as p
from .test_webhooks import SENDGRID


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_webhook_events_are_normalised_by_a_real_worker(client, celery_worker):
    batch = [p.sendgrid_event("delivered", email=f"w{i}@example.com", sg_event_id=f"w-{i}")
             for i in range(50)]
    batch.append(p.sendgrid_event("bounce", email="gone@example.com", sg_event_id="w-bounce"))
    batch.append(batch[0])  # a duplicate inside the batch
    response = p.post_json(client, SENDGRID, batch)
    assert response.status_code == 200
    assert RawDeliveryEvent.objects.count() == 52

    wait_for(lambda: not RawDeliveryBatch.objects.filter(processed_at__isnull=True).exists())
    assert DeliveryEvent.objects.count() == 51
    assert DeliveryEvent.objects.get(recipient="gone@example.com").kind == "bounced_hard"
    wait_for(lambda: not DeliveryEvent.objects.filter(dispatched_at__isnull=True).exists())


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_threshold_alert_emails_the_deliverability_owner_through_the_worker(
        celery_worker, security_officer, deliverability_lead):
    from datetime import timedelta

    from incidents import services
    from incidents.monitoring import services as monitoring
    from tests.factories import declare

    from .helpers import add_events

    # (declared by someone other than the marketer: the worker's SMTP inbox is shared by
    # the session, and other tests check whom it never wrote to)
    incident = declare(security_officer, title="Wrong list mailed")
    services.step_assign_owner(step=incident.steps.get(number=6), actor=security_officer,
                               owner=deliverability_lead)
    add_events("delivered", 1000, incident.declared_at)
    add_events("complained", 5, incident.declared_at)  # 0.5 %
    raised = monitoring.deliverability_check(incident=incident,
                                             now=incident.declared_at + timedelta(minutes=5))
    assert len(raised) == 2

    inbox = celery_worker["inbox"]

    def owner_mail():
        return [m for m in inbox.messages if "dana@example.test" in m.rcpt_tos
                and b"[Deliverability] Wrong list mailed" in m.content]

    assert len(wait_for(lambda: len(owner_mail()) >= 2 and owner_mail())) == 2
