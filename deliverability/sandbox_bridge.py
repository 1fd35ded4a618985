"""The sandbox ESP's tracking events, stored as if its webhook had posted them.

A real ESP posts its events to /webhooks/...; the sandbox hands them over in-process
(messaging.signals.sandbox_events_emitted) right after it accepts a batch. They go through
the same store-first path and the same normalisation as webhook events.
"""

from anymail.signals import AnymailTrackingEvent

from messaging.esp.base import TrackedEvent

from . import services
from .ingest import raw_event_from_anymail
from .models import DeliveryKind


def _kind(event: TrackedEvent) -> str:
    if event.event_type == "bounced":
        return DeliveryKind.BOUNCED_HARD
    if event.event_type == "deferred" and event.description.startswith("soft bounce"):
        return DeliveryKind.BOUNCED_SOFT
    return event.event_type if event.event_type in DeliveryKind.values else DeliveryKind.OTHER


def sandbox_events_received(sender, events: list[TrackedEvent], **kwargs) -> None:
    rows = []
    for tracked in events:
        kind = _kind(tracked)
        esp_event = {"type": kind, "event_id": tracked.event_id,
                     "message_id": tracked.message_id, "recipient": tracked.recipient,
                     "timestamp": tracked.timestamp.isoformat(),
                     "metadata": dict(tracked.metadata), "description": tracked.description}
        event = AnymailTrackingEvent(
            event_type=kind, timestamp=tracked.timestamp, event_id=tracked.event_id,
            message_id=tracked.message_id, recipient=tracked.recipient,
            metadata=dict(tracked.metadata), description=tracked.description,
            esp_event=esp_event)
        rows.append(raw_event_from_anymail(event, "Sandbox"))
    services.raw_events_store(esp="sandbox", rows=rows)
