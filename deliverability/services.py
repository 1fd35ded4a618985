"""Writes: store raw webhook events, normalise them, hand new events to listeners."""

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from . import feedback, repair
from .models import DeliveryEvent, RawDeliveryBatch, RawDeliveryEvent

if TYPE_CHECKING:
    from .ingest import RawEvent

log = logging.getLogger(__name__)

# RawDeliveryEvent's columns in ingest.RawEvent's order.
RAW_FIELDS = ("esp", "esp_account", "event_type", "kind", "dedupe_key", "event_id",
              "message_id", "recipient", "occurred_at", "campaign_key", "broadcast_id",
              "recipient_id", "metadata", "tags", "reject_reason", "description",
              "mta_response", "esp_event", "repairs")

NORMALISE_BATCH = 20000
# Per queue, so that test runs and benchmarks sharing one Redis never see each other's.
NORMALISE_QUEUED_KEY = f"deliverability:normalise-queued:{settings.CELERY_TASK_DEFAULT_QUEUE}"
DISPATCH_BATCH = 1000


@transaction.atomic
def raw_events_store(*, esp: str, rows: "Sequence[RawEvent]",
                     request_repairs: Counter | None = None) -> RawDeliveryBatch | None:
    """Write one request's events as one batch and queue their processing after commit.

    What had to be repaired to store them (repair.py) is counted on each raw row and
    summed on the batch, with `request_repairs` (made while parsing the body) added.
    """
    if not rows:
        return None
    batch = RawDeliveryBatch.objects.create(esp=esp, event_count=len(rows))
    repairs: Counter = Counter(request_repairs or {})
    if connection.vendor == "postgresql":
        _copy_raw(batch.pk, rows, repairs)
    else:
        RawDeliveryEvent.objects.bulk_create(
            [_raw_instance(batch, row, repairs) for row in rows], batch_size=500)
    if repairs:
        batch.repairs = dict(repairs)
        batch.save(update_fields=["repairs"])
    transaction.on_commit(_schedule_normalisation)
    return batch


NORMALISE_DEBOUNCE_S = 0.5


def _schedule_normalisation() -> None:
    # One queued task at a time is enough: it takes every pending batch. The flag only
    # saves work: if its task is lost, the flag expires and the next batch queues another,
    # and the periodic sweep takes whatever is left.
    from .tasks import normalise_delivery_events

    try:
        if cache.add(NORMALISE_QUEUED_KEY, 1, timeout=10):
            normalise_delivery_events.apply_async(countdown=NORMALISE_DEBOUNCE_S)
    except Exception:
        # The events are committed; the ESP must get its 200 (else it resends them).
        log.exception("could not queue delivery event normalisation; the sweep will")


def _copy_raw(batch_id: int, rows: "Sequence[RawEvent]", total: Counter) -> None:
    """COPY the rows, adding the repairs made to `total` (JSON columns are checked here)."""
    # COPY, not bulk_create: a 1,000-event webhook costs milliseconds this way against
    # hundreds of ms for an INSERT whose parameters are quoted one by one in Python.
    table = RawDeliveryEvent._meta.db_table
    columns = ", ".join(("batch_id", *RAW_FIELDS))
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for r in rows:
                fixes = dict(r.repairs) if r.repairs else {}
                metadata = repair.jsonb_text(r.metadata, fixes)
                tags = repair.jsonb_text(r.tags, fixes)
                esp_event = repair.jsonb_text(r.esp_event, fixes)
                copy.write_row((batch_id, r.esp, r.esp_account, r.event_type, r.kind,
                                r.dedupe_key, r.event_id, r.message_id, r.recipient,
                                r.occurred_at, r.campaign_key, r.broadcast_id,
                                r.recipient_id, metadata, tags, r.reject_reason,
                                r.description, r.mta_response, esp_event,
                                repair.jsonb_text(dict(fixes), fixes) if fixes else "{}"))
                if fixes:
                    total.update(_counts(fixes))


def _counts(fixes: dict) -> dict:
    return {k: v for k, v in fixes.items() if isinstance(v, int)}


def _raw_instance(batch: RawDeliveryBatch, row: "RawEvent", total: Counter) -> RawDeliveryEvent:
    fixes = dict(row.repairs)
    values = row._asdict()
    for name in ("metadata", "tags", "esp_event"):
        encoded = repair.jsonb_text(values[name], fixes)
        values[name] = None if encoded is None else json.loads(encoded)
    values["repairs"] = dict(fixes)
    total.update(_counts(fixes))
    return RawDeliveryEvent(batch=batch, **values)


@dataclass(frozen=True)
class NormaliseResult:
    processed: int = 0
    created: int = 0


_EVENT_FIELDS = ("esp", "esp_account", "kind", "dedupe_key", "event_id", "message_id",
                 "recipient", "campaign_key", "broadcast_id", "recipient_id")


def _event_from_raw(row: dict, kinds: frozenset[str] | None, now) -> DeliveryEvent:
    return DeliveryEvent(
        **{name: row[name] for name in _EVENT_FIELDS},
        occurred_at=row["occurred_at"] or row["batch__received_at"],
        description=row["description"][:1000], raw_id=row["id"],
        dispatched_at=None if kinds is None or row["kind"] in kinds else now,
    )


def _insert_events_orm(batch_ids: list[int]) -> int:
    """Portable path (SQLite in the embedded run): build rows in Python."""
    rows = RawDeliveryEvent.objects.filter(batch_id__in=batch_ids).values(
        "id", "batch__received_at", "occurred_at", "description", *_EVENT_FIELDS)
    before = DeliveryEvent.objects.count()
    kinds, now = feedback.dispatched_kinds(), timezone.now()
    DeliveryEvent.objects.bulk_create([_event_from_raw(row, kinds, now) for row in rows],
                                      batch_size=500, ignore_conflicts=True)
    return DeliveryEvent.objects.count() - before


_INSERT_EVENTS_SQL = """
INSERT INTO deliverability_deliveryevent
    (esp, esp_account, kind, occurred_at, dedupe_key, event_id, message_id, recipient,
     campaign_key, broadcast_id, recipient_id, description, raw_id, created_at,
     dispatched_at)
SELECT r.esp, r.esp_account, r.kind, COALESCE(r.occurred_at, b.received_at), r.dedupe_key,
       r.event_id, r.message_id, r.recipient, r.campaign_key, r.broadcast_id,
       r.recipient_id, left(r.description, 1000), r.id, now(),
       CASE WHEN %(all_kinds)s OR r.kind = ANY(%(kinds)s) THEN NULL ELSE now() END
  FROM deliverability_rawdeliveryevent r
  JOIN deliverability_rawdeliverybatch b ON b.id = r.batch_id
 WHERE r.batch_id = ANY(%(batches)s)
 ORDER BY r.id
ON CONFLICT (esp, dedupe_key) DO NOTHING
"""


def _insert_events_sql(batch_ids: list[int]) -> int:
    """PostgreSQL: one INSERT ... SELECT ... ON CONFLICT DO NOTHING; returns rows added."""
    kinds = feedback.dispatched_kinds()
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_EVENTS_SQL, {"batches": batch_ids, "all_kinds": kinds is None,
                                            "kinds": sorted(kinds or ())})
        return cursor.rowcount


def _claim_batches(max_events: int) -> tuple[list[int], int]:
    pending = (RawDeliveryBatch.objects.select_for_update(skip_locked=True)
               .filter(processed_at__isnull=True).order_by("id")
               .values_list("id", "event_count")[:200])
    claimed, total = [], 0
    for batch_id, count in pending:
        if claimed and total + count > max_events:
            break
        claimed.append(batch_id)
        total += count
    return claimed, total


def delivery_events_normalise(*, batch_size: int = NORMALISE_BATCH) -> NormaliseResult:
    """Turn every pending raw batch into DeliveryEvents, at most one per ESP event.

    Batches are claimed with FOR UPDATE SKIP LOCKED, so several workers share the work
    without doing it twice, and events are inserted with ON CONFLICT DO NOTHING on
    (esp, dedupe_key): an event seen before — a redelivered batch, or a duplicate within
    one — adds nothing. On PostgreSQL that is one set-based INSERT ... SELECT per claim.
    """
    processed = created = 0
    insert = _insert_events_sql if connection.vendor == "postgresql" else _insert_events_orm
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Safe to lose on a server crash: the raw batches would still be pending
                # and the next run redoes them. Saves a WAL flush per transaction.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            claimed, events = _claim_batches(batch_size)
            if not claimed:
                break
            created += insert(claimed)
            processed += events
            RawDeliveryBatch.objects.filter(id__in=claimed).update(processed_at=timezone.now())
            delivery_events_link(batch_ids=claimed)
    return NormaliseResult(processed=processed, created=created)


def delivery_events_link(*, batch_ids: list[int]) -> int:
    """Link the events just normalised from these raw batches to their subscribers, by
    address (one set-based UPDATE; the lookup uses the subscribers' lower(email) index),
    and settle the apology ledger rows in doubt that they name.

    Broadcasts and campaigns are matched by the ids our metadata carries (broadcast_id,
    recipient_id, campaign_key). Returns how many events were linked to subscribers.
    """
    from audiences.models import Subscriber

    subscriber = Subscriber.objects.annotate(address=Lower("email")).filter(
        address=Lower(OuterRef("recipient"))).values("id")[:1]
    from messaging.broadcasts import deliveries_settle_from_events

    fresh = RawDeliveryEvent.objects.filter(batch_id__in=batch_ids).values("id")
    linked = (DeliveryEvent.objects.filter(raw_id__in=fresh, subscriber__isnull=True)
              .exclude(recipient="").filter(Exists(subscriber))
              .update(subscriber=Subquery(subscriber)))
    # Apology ledger rows left in doubt are settled by the events that name them.
    deliveries_settle_from_events(sightings=list(
        DeliveryEvent.objects.filter(raw_id__in=fresh, broadcast_id__isnull=False,
                                     recipient_id__isnull=False)
        .values_list("broadcast_id", "recipient_id", "message_id")))
    return linked


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


PRUNE_CHUNK = 5000


def raw_events_prune(*, now: datetime | None = None, chunk: int = PRUNE_CHUNK) -> int:
    """Delete raw webhook rows received more than DELIVERABILITY_RAW_RETENTION_DAYS ago
    whose normalised event exists, then the batches left empty. Returns rows deleted.

    A raw row goes only once a DeliveryEvent with its (esp, dedupe_key) exists (checked on
    the unique index), so a batch not normalised yet keeps its payloads whatever its age.
    Deletes run `chunk` rows per transaction: short locks, and a beat run that dies
    half-way leaves nothing half-done. DeliveryEvent.raw_id is not a foreign key for this.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.DELIVERABILITY_RAW_RETENTION_DAYS)
    old = RawDeliveryBatch.objects.filter(processed_at__isnull=False, received_at__lt=cutoff)
    normalised = DeliveryEvent.objects.filter(esp=OuterRef("esp"),
                                              dedupe_key=OuterRef("dedupe_key"))
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(RawDeliveryEvent.objects.filter(batch__in=old.values("id"))
                       .filter(Exists(normalised)).order_by("id")
                       .values_list("id", flat=True)[:chunk])
            if not ids:
                break
            deleted += RawDeliveryEvent.objects.filter(id__in=ids).delete()[0]
    while True:
        with transaction.atomic():
            empty = list(old.filter(~Exists(RawDeliveryEvent.objects.filter(
                batch_id=OuterRef("pk")))).order_by("id").values_list("id", flat=True)[:chunk])
            if not empty:
                break
            RawDeliveryBatch.objects.filter(id__in=empty).delete()
    if deleted:
        log.info("pruned %d raw webhook rows older than %s", deleted, cutoff.date())
    return deleted
