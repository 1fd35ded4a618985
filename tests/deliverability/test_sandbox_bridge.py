"""The sandbox ESP's synthetic events reach deliverability like webhook events do."""

import pytest

from audiences.models import Subscriber
from deliverability import services
from deliverability.models import DeliveryEvent
from messaging.esp.base import OutgoingMessage
from messaging.esp.sandbox import SandboxAdapter

pytestmark = pytest.mark.django_db(transaction=True)  # the store queues work on commit


def test_sandbox_sends_become_delivery_events_with_feedback():
    Subscriber.objects.create(email="gone@example.com")
    sandbox = SandboxAdapter(seed=7, outcomes={}, emit_events=True)  # everyone delivered...
    doomed = SandboxAdapter(seed=7, outcomes={"bounced_hard": 1.0}, emit_events=True)
    metadata = {"broadcast_id": "5", "recipient_id": "1"}
    sandbox.send_batch([OutgoingMessage(to=f"p{i}@example.com", subject="Sorry",
                                        from_email="care@brand.test", text="We are sorry.",
                                        metadata={**metadata, "recipient_id": str(i)})
                        for i in range(3)])
    doomed.send_batch([OutgoingMessage(to="gone@example.com", subject="Sorry",
                                       from_email="care@brand.test", text="We are sorry.",
                                       metadata=metadata)])
    services.delivery_events_normalise()
    services.delivery_events_dispatch()
    kinds = sorted(DeliveryEvent.objects.values_list("recipient", "kind", "broadcast_id"))
    assert kinds == [("gone@example.com", "bounced_hard", 5),
                     ("p0@example.com", "delivered", 5), ("p1@example.com", "delivered", 5),
                     ("p2@example.com", "delivered", 5)]
    assert Subscriber.objects.get(email="gone@example.com").status == "bounced"


def test_the_products_sandbox_emits_and_a_bare_one_does_not():
    from messaging.esp.registry import default_adapter

    assert default_adapter().emit_events is True
    assert SandboxAdapter().emit_events is False
