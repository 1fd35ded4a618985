"""Raw webhook payloads are pruned after the retention period, once normalised."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.schedule import BEAT_SCHEDULE
from deliverability import services
from deliverability.models import DeliveryEvent, RawDeliveryBatch, RawDeliveryEvent

from . import payloads as p
from .test_webhooks import SENDGRID

pytestmark = pytest.mark.django_db


def _batch(client, prefix: str, n: int, *, days_ago: int) -> None:
    events = [p.sendgrid_event(email=f"{prefix}{i}@example.com", sg_event_id=f"{prefix}-{i}")
              for i in range(n)]
    assert p.post_json(client, SENDGRID, events).status_code == 200
    RawDeliveryBatch.objects.filter(pk=RawDeliveryBatch.objects.latest("id").pk).update(
        received_at=timezone.now() - timedelta(days=days_ago))


def test_old_normalised_raw_rows_are_deleted_in_chunks_and_the_rest_kept(client, settings):
    settings.DELIVERABILITY_RAW_RETENTION_DAYS = 90
    _batch(client, "old", 5, days_ago=91)
    _batch(client, "dup", 2, days_ago=95)
    _batch(client, "new", 3, days_ago=89)
    services.delivery_events_normalise()
    # A replay of old events: its rows are duplicates, their normalised events exist.
    _batch(client, "old", 2, days_ago=92)
    services.delivery_events_normalise()
    # Old but never normalised (the worker was down): kept whatever its age.
    _batch(client, "pending", 2, days_ago=200)

    assert services.raw_events_prune(chunk=2) == 5 + 2 + 2
    assert sorted(RawDeliveryEvent.objects.values_list("event_id", flat=True)) == [
        "new-0", "new-1", "new-2", "pending-0", "pending-1"]
    assert RawDeliveryBatch.objects.count() == 2  # the empty old batches went too
    assert DeliveryEvent.objects.count() == 10  # normalised events are never touched
    assert services.raw_events_prune() == 0


def test_retention_is_a_setting(client, settings):
    assert settings.DELIVERABILITY_RAW_RETENTION_DAYS == 90  # the default
    _batch(client, "x", 1, days_ago=10)
    services.delivery_events_normalise()
    assert services.raw_events_prune() == 0
    settings.DELIVERABILITY_RAW_RETENTION_DAYS = 7
    assert services.raw_events_prune() == 1


def test_pruning_runs_daily_from_the_beat_schedule():
    entry = BEAT_SCHEDULE["deliverability-prune-raw-events"]
    assert entry["task"] == "deliverability.tasks.prune_raw_delivery_events"
    assert entry["schedule"] == 86400.0
