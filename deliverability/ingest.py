"""From anymail's `tracking` signal to RawDeliveryEvent rows, one write per request.

anymail's webhook views send the signal once per event while parsing a request. Inside
`collect()` (entered by our view wrapper) the receiver only builds rows in memory; the
wrapper writes them all at once when the view has accepted the whole request, so a
request that fails validation or parsing half-way stores nothing. A signal sent outside
a request (someone calling anymail directly) is stored at once.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, NamedTuple

from anymail.signals import AnymailTrackingEvent

from . import repair, services
from .normalise import classify, dedupe_key, esp_slug, our_ids

_collected: ContextVar[list["RawEvent"] | None] = ContextVar(
    "deliverability_collected", default=None)


class RawEvent(NamedTuple):
    """One event as it will be stored (RawDeliveryEvent's columns, batch aside).

    A plain tuple rather than a model instance: building 1,000 Django models per
    request cost more than parsing and storing them together.
    """

    esp: str
    esp_account: str
    event_type: str
    kind: str
    dedupe_key: uuid.UUID
    event_id: str
    message_id: str
    recipient: str
    occurred_at: datetime | None
    campaign_key: str
    broadcast_id: int | None
    recipient_id: int | None
    metadata: dict
    tags: list
    reject_reason: str
    description: str
    mta_response: str
    esp_event: Any
    # What was repaired to make the event storable (see repair.py); {} almost always.
    # The JSON columns are checked when they are encoded (services._copy_raw), which
    # adds to this same dict.
    repairs: dict


def _text(value: Any, limit: int, repairs: repair.Repairs) -> str:
    if value is None:
        return ""
    return repair.clean_text(str(value), repairs)[:limit]


def raw_event_from_anymail(event: AnymailTrackingEvent, esp_name: str) -> RawEvent:
    esp = esp_slug(esp_name)
    repairs: repair.Repairs = dict(getattr(event, "amends_repairs", None) or ())
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    recipient = _text(event.recipient, 254, repairs).strip().lower()
    event_type = _text(event.event_type, 32, repairs)
    event_id = _text(event.event_id, 255, repairs)
    message_id = _text(event.message_id, 255, repairs)
    campaign_key, broadcast_id, recipient_id = our_ids(metadata)
    occurred_at = event.timestamp
    if repair.implausible(occurred_at):
        repair.count(repairs, "timestamp")
        repairs["original_timestamp"] = occurred_at.isoformat()
        occurred_at = None
    return RawEvent(
        esp=esp,
        esp_account=_text(metadata.get("esp_account") or esp, 100, repairs),
        event_type=event_type,
        kind=classify(esp=esp, event_type=event_type, esp_event=event.esp_event),
        dedupe_key=dedupe_key(esp=esp, event_id=event_id, message_id=message_id,
                              event_type=event_type, occurred_at=occurred_at,
                              recipient=recipient),
        event_id=event_id, message_id=message_id, recipient=recipient,
        occurred_at=occurred_at, campaign_key=_text(campaign_key, 100, repairs),
        broadcast_id=broadcast_id, recipient_id=recipient_id, metadata=metadata,
        tags=list(event.tags or []), reject_reason=_text(event.reject_reason, 32, repairs),
        description=_text(event.description, 2000, repairs),
        mta_response=_text(event.mta_response, 2000, repairs),
        esp_event=_jsonable(event.esp_event), repairs=repairs,
    )


def _jsonable(esp_event: Any) -> Any:
    # Legacy form-encoded webhooks (Mailgun, Mandrill) hand over a QueryDict.
    if hasattr(esp_event, "lists"):
        return {key: values if len(values) > 1 else values[0]
                for key, values in esp_event.lists()}
    return esp_event


def tracking_received(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    row = raw_event_from_anymail(event, esp_name)
    collected = _collected.get()
    if collected is None:
        services.raw_events_store(esp=row.esp, rows=[row])
    else:
        collected.append(row)


@contextmanager
def collect() -> Iterator[list[RawEvent]]:
    rows: list[RawEvent] = []
    token = _collected.set(rows)
    try:
        yield rows
    finally:
        _collected.reset(token)
