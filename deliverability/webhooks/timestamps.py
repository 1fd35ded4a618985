"""Impossible event times in anymail's parsers: drop them instead of failing the batch.

anymail turns each ESP's timestamp with `datetime.fromtimestamp` or `parse_datetime` and
catches some errors but not all: `Infinity`, 1e30 (SendGrid) or 1e20 (Mailgun) raise
OverflowError, which would turn a 1,000-event batch into a 500. The mixin below retries
such an event without its timestamp fields (the ESP payload on the raw row keeps them) and
notes the repair on the event for ingest to count.
"""

from collections.abc import Iterator
from typing import Any

from anymail.signals import AnymailTrackingEvent

from ..normalise import esp_slug
from ..repair import original_repr

# Where each ESP puts the event time (from each anymail parser); "*" is any key.
TIMESTAMP_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "sendgrid": (("timestamp",),),
    "mailgun": (("event-data", "timestamp"),),
    "mailjet": (("time",),),
    "mandrill": (("ts",),),
    "brevo": (("ts_epoch",),),
    "sendinblue": (("ts_epoch",),),
    "sparkpost": (("timestamp",),),  # of the inner event anymail passes second
    "postmark": (("DeliveredAt",), ("BouncedAt",), ("ReceivedAt",), ("ChangedAt",)),
}
# Which positional argument of esp_to_anymail_event is the ESP event: SparkPost's parser
# takes (event_class, event, raw_event); the others take (esp_event).
_EVENT_ARGUMENT = {"sparkpost": 1}
_CONVERSION_ERRORS = (OverflowError, ValueError, OSError)


def _found(event: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if not path:
        yield (), event
        return
    if not isinstance(event, dict):
        return
    keys = list(event) if path[0] == "*" else [path[0]]
    for key in keys:
        if key in event:
            for rest, value in _found(event[key], path[1:]):
                yield (key, *rest), value


def _without(event: dict, path: tuple[str, ...]) -> dict:
    """A copy of `event` without the value at `path` (dicts copied along the path only)."""
    copy = dict(event)
    if len(path) == 1:
        copy.pop(path[0], None)
    else:
        copy[path[0]] = _without(copy[path[0]], path[1:])
    return copy


def timestamp_values(esp: str, esp_event: Any) -> list[tuple[tuple[str, ...], Any]]:
    return [hit for path in TIMESTAMP_PATHS.get(esp, ()) for hit in _found(esp_event, path)]


def note_repair(event: AnymailTrackingEvent, original: Any) -> None:
    event.timestamp = None
    event.amends_repairs = {"timestamp": 1, "original_timestamp": original_repr(original)}


class TimestampRepair:
    """Mixin for anymail tracking views that convert one ESP event at a time."""

    def esp_to_anymail_event(self, *args: Any, **kwargs: Any):
        esp = esp_slug(self.esp_name)
        index = _EVENT_ARGUMENT.get(esp, 0)
        esp_event = args[index] if len(args) > index else None
        try:
            event = super().esp_to_anymail_event(*args, **kwargs)
        except _CONVERSION_ERRORS:
            hits = timestamp_values(esp, esp_event)
            if not hits:
                raise
            stripped = esp_event
            for path, _value in hits:
                stripped = _without(stripped, path)
            event = super().esp_to_anymail_event(
                *args[:index], stripped, *args[index + 1:], **kwargs)
            if event.esp_event is stripped:  # the raw row keeps what the ESP sent
                event.esp_event = esp_event
            note_repair(event, hits[0][1])
            return event
        if event.timestamp is None:
            # anymail swallowed a value it could not convert (1e12 is "year 33658").
            hits = [hit for hit in timestamp_values(esp, esp_event) if hit[1] not in (None, "")]
            if hits:
                note_repair(event, hits[0][1])
        return event
