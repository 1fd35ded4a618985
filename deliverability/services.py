"""Writes: store raw webhook events, normalise them, hand new events to listeners."""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from . import feedback
from .models import DeliveryEvent, RawDeliveryBatch, RawDeliveryEvent
from .normalise import int_or_none

log = logging.getLogger(__name__)

NORMALISE_BATCH = 5000
DISPATCH_BATCH = 1000


@transaction.atomic
def raw_events_store(*, esp: str, rows: list[RawDeliveryEvent]) -> RawDeliveryBatch | None:
    """Write one request's events as one batch and queue their processing after commit."""
    if not rows:
        return None
    batch = RawDeliveryBatch.objects.create(esp=esp, event_count=len(rows))
    for row in rows:
        row.batch = batch
    RawDeliveryEvent.objects.bulk_create(rows, batch_size=1000)
    from .tasks import normalise_delivery_events

    transaction.on_commit(normalise_delivery_events.delay)
    return batch


@dataclass(frozen=True)
class NormaliseResult:
    processed: int = 0
    created: int = 0


_RAW_FIELDS = ("id", "batch__received_at", "esp", "esp_account", "kind", "dedupe_key",
               "event_id", "message_id", "recipient", "occurred_at", "metadata", "description")


def _event_from_raw(row: dict) -> DeliveryEvent:
    metadata = row["metadata"] if isinstance(row["metadata"], dict) else {}
    campaign = metadata.get("campaign_id", "")
    return DeliveryEvent(
        esp=row["esp"], esp_account=row["esp_account"], kind=row["kind"],
        occurred_at=row["occurred_at"] or row["batch__received_at"],
        dedupe_key=row["dedupe_key"], event_id=row["event_id"], message_id=row["message_id"],
        recipient=row["recipient"],
        campaign_key=str(campaign)[:100] if campaign not in (None, "") else "",
        broadcast_id=int_or_none(metadata.get("broadcast_id")),
        recipient_id=int_or_none(metadata.get("recipient_id")),
        description=row["description"][:1000], raw_id=row["id"],
    )


def _claim_batches(max_events: int) -> list[int]:
    pending = (RawDeliveryBatch.objects.select_for_update(skip_locked=True)
               .filter(processed_at__isnull=True).order_by("id")
               .values_list("id", "event_count")[:100])
    claimed, total = [], 0
    for batch_id, count in pending:
        if claimed and total + count > max_events:
            break
        claimed.append(batch_id)
        total += count
    return claimed


def delivery_events_normalise(*, batch_size: int = NORMALISE_BATCH) -> NormaliseResult:
    """Turn every pending raw batch into DeliveryEvents, at most one per ESP event.

    Batches are claimed with FOR UPDATE SKIP LOCKED, so several workers share the work
    without doing it twice, and events are inserted with ON CONFLICT DO NOTHING on
    (esp, dedupe_key): an event seen before — a redelivered batch, or a duplicate within
    one — adds nothing.
    """
    processed = created = 0
    while True:
        with transaction.atomic():
            batch_ids = _claim_batches(batch_size)
            if not batch_ids:
                break
            rows = list(RawDeliveryEvent.objects.filter(batch_id__in=batch_ids)
                        .values(*_RAW_FIELDS))
            before = DeliveryEvent.objects.filter(raw__batch_id__in=batch_ids).count()
            DeliveryEvent.objects.bulk_create([_event_from_raw(row) for row in rows],
                                              batch_size=2000, ignore_conflicts=True)
            new = DeliveryEvent.objects.filter(raw__batch_id__in=batch_ids).count() - before
            RawDeliveryBatch.objects.filter(id__in=batch_ids).update(processed_at=timezone.now())
            delivery_events_link(batch_ids=batch_ids)
        processed += len(rows)
        created += new
    return NormaliseResult(processed=processed, created=created)


def delivery_events_link(*, batch_ids: list[int]) -> int:
    """Fill foreign keys to messaging and audiences for the events just normalised.

    A stub until those models exist on this branch. The lead wires it as one set-based
    UPDATE per relation, e.g. for subscribers (deliverability may import audiences):

        UPDATE deliverability_deliveryevent e SET subscriber_id = s.id
          FROM audiences_subscriber s
          JOIN deliverability_rawdeliveryevent r ON r.id = e.raw_id
         WHERE r.batch_id = ANY(%s) AND e.subscriber_id IS NULL AND s.email = e.recipient

    and likewise broadcast (e.broadcast_id from our metadata), campaign (e.campaign_key)
    and the recipient log / ledger row (e.message_id, e.recipient_id). Returns rows linked.
    """
    return 0


def delivery_events_dispatch(*, batch_size: int = DISPATCH_BATCH) -> int:
    """Give each committed, not yet dispatched event to the registered listeners.

    Rows are claimed with SKIP LOCKED; a listener that raises leaves its event pending
    (logged) for the next run, and the others go on. Returns how many were dispatched.
    """
    dispatched = 0
    while True:
        with transaction.atomic():
            pending = DeliveryEvent.objects.select_for_update(skip_locked=True).filter(
                dispatched_at__isnull=True).order_by("id")
            listeners = feedback.delivery_listeners()
            if not listeners:
                # Nothing listens (yet): mark the lot in one statement.
                return dispatched + DeliveryEvent.objects.filter(
                    dispatched_at__isnull=True).update(dispatched_at=timezone.now())
            events = list(pending[:batch_size])
            if not events:
                return dispatched
            done = []
            for event in events:
                try:
                    with transaction.atomic():
                        feedback.on_delivery_event(event)
                except Exception:
                    log.exception("delivery listener failed for event %s; will retry", event.pk)
                else:
                    done.append(event.pk)
            DeliveryEvent.objects.filter(id__in=done).update(dispatched_at=timezone.now())
            dispatched += len(done)
            if len(done) < len(events):
                # Failures stay pending; stop here rather than spin on them.
                return dispatched
