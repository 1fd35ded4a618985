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
