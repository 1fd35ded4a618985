"""The seam between delivery events and whoever acts on them.

Deliverability knows nothing of subscribers or the apology ledger (they live in audiences
and messaging, built elsewhere). It offers two plug points instead:

* ``delivery_listener_register(fn)``: ``fn(event)`` is called once for every new
  DeliveryEvent, after it is committed (``on_delivery_event``). Messaging will register
  one that settles apology ledger rows left *in doubt* from the event's metadata.
* ``SubscriberFeedback(port)``: a ready-made listener applying the feedback policy — a
  hard bounce or a spam complaint suppresses the address (onto a suppression list named
  for the reason), an unsubscribe unsubscribes it; nothing is ever deleted. Audiences
  provides the port (an object with ``suppress`` and ``unsubscribe``) and registers
  ``SubscriberFeedback(its_port)`` in its AppConfig.ready().

Listeners must be idempotent: an event is dispatched at least once (a worker killed after
a listener ran but before ``dispatched_at`` was saved will dispatch it again).
"""

import logging
from collections.abc import Callable
from typing import Protocol

from .models import DeliveryEvent, DeliveryKind

log = logging.getLogger(__name__)

DeliveryListener = Callable[[DeliveryEvent], None]

_listeners: list[DeliveryListener] = []

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
    """Listener: hard bounce / complaint -> suppress; unsubscribe -> unsubscribed."""

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


def delivery_listener_register(listener: DeliveryListener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def delivery_listener_unregister(listener: DeliveryListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def delivery_listeners() -> tuple[DeliveryListener, ...]:
    return tuple(_listeners)


def on_delivery_event(event: DeliveryEvent) -> None:
    """Hand one committed event to every registered listener."""
    for listener in tuple(_listeners):
        listener(event)
