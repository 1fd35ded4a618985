"""The seam between delivery events and whoever acts on them.

Deliverability knows nothing of subscribers or the apology ledger (they live in audiences
and messaging, built elsewhere). It offers two plug points instead:

* ``delivery_listener_register(fn, kinds=...)``: ``fn(event)`` is called once for every
  new DeliveryEvent of those kinds (all kinds if None), after it is committed
  (``on_delivery_event``). Messaging will register one that settles apology ledger rows
  left *in doubt* from the event's metadata (kinds: delivered, bounces, rejected).
  Events of kinds nobody listens to are stored as already dispatched, so the bulk of
  traffic (opens, clicks, deferrals) costs no second write.
* ``SubscriberFeedback(port)``: a ready-made listener applying the feedback policy — a
  hard bounce or a spam complaint suppresses the address (onto a suppression list named
  for the reason), an unsubscribe unsubscribes it; nothing is ever deleted. Audiences
  provides the port (an object with ``suppress`` and ``unsubscribe``) and registers
  ``SubscriberFeedback(its_port)`` in its AppConfig.ready().

Listeners must be idempotent: an event is dispatched at least once (a worker killed after
a listener ran but before ``dispatched_at`` was saved will dispatch it again).
"""

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from .models import DeliveryEvent, DeliveryKind

log = logging.getLogger(__name__)

DeliveryListener = Callable[[DeliveryEvent], None]

_listeners: dict[DeliveryListener, frozenset[str] | None] = {}

# Suppression list names, one per reason (audiences creates them on first use).
SUPPRESSION_LISTS = {
    DeliveryKind.BOUNCED_HARD: "Hard bounces",
    DeliveryKind.COMPLAINED: "Spam complaints",
}


class SubscriberStatusPort(Protocol):
    """What audiences must offer; both calls are idempotent and never delete anything."""

    def suppress(self, *, email: str, reason: str, list_name: str,
                 event: DeliveryEvent) -> None: ...

    def unsubscribe(self, *, email: str, event: DeliveryEvent) -> None: ...


class SubscriberFeedback:
    """Listener: hard bounce / complaint -> suppress; unsubscribe -> unsubscribed.

    Register it with ``kinds=SubscriberFeedback.KINDS``.
    """

    KINDS = frozenset({DeliveryKind.BOUNCED_HARD, DeliveryKind.COMPLAINED,
                       DeliveryKind.UNSUBSCRIBED})

    def __init__(self, port: SubscriberStatusPort) -> None:
        self.port = port

    def __call__(self, event: DeliveryEvent) -> None:
        if not event.recipient:
            return
        if event.kind in SUPPRESSION_LISTS:
            self.port.suppress(email=event.recipient, reason=event.kind,
                               list_name=SUPPRESSION_LISTS[event.kind], event=event)
        elif event.kind == DeliveryKind.UNSUBSCRIBED:
            self.port.unsubscribe(email=event.recipient, event=event)


def delivery_listener_register(listener: DeliveryListener, *,
                               kinds: Iterable[str] | None = None) -> None:
    """Register (or re-register with other kinds) a listener; kinds=None means all."""
    _listeners[listener] = frozenset(kinds) if kinds is not None else None


def delivery_listener_unregister(listener: DeliveryListener) -> None:
    _listeners.pop(listener, None)


def delivery_listeners() -> tuple[DeliveryListener, ...]:
    return tuple(_listeners)


def dispatched_kinds() -> frozenset[str] | None:
    """The kinds some listener wants (None: every kind; empty: nobody listens)."""
    wanted: set[str] = set()
    for kinds in _listeners.values():
        if kinds is None:
            return None
        wanted |= kinds
    return frozenset(wanted)


def on_delivery_event(event: DeliveryEvent) -> None:
    """Hand one committed event to every listener that wants its kind."""
    for listener, kinds in tuple(_listeners.items()):
        if kinds is None or event.kind in kinds:
            listener(event)
