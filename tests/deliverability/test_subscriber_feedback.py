"""The real feedback wiring: webhook events change subscribers and suppression lists."""

import pytest

from audiences.models import Subscriber, SuppressionEntry
from deliverability import services

from . import payloads as p
from .test_webhooks import SANDBOX

pytestmark = pytest.mark.django_db


def test_events_suppress_and_unsubscribe_real_subscribers_and_delete_nothing(client):
    for email in ("hard@example.com", "spam@example.com", "bye@example.com",
                  "soft@example.com", "was-spam@example.com"):
        Subscriber.objects.create(email=email.upper() if email.startswith("h") else email,
                                  status="complained" if email.startswith("was") else "active")
    response = p.post_json(client, SANDBOX, [
        p.sandbox_event("bounced_hard", event_id="w1", recipient="hard@example.com"),
        p.sandbox_event("bounced_soft", event_id="w2", recipient="soft@example.com"),
        p.sandbox_event("complained", event_id="w3", recipient="spam@example.com"),
        p.sandbox_event("unsubscribed", event_id="w4", recipient="bye@example.com"),
        p.sandbox_event("unsubscribed", event_id="w5", recipient="was-spam@example.com"),
        p.sandbox_event("complained", event_id="w6", recipient="stranger@example.com"),
    ])
    assert response.status_code == 200
    services.delivery_events_normalise()
    services.delivery_events_dispatch()

    status = dict(Subscriber.objects.values_list("email", "status"))
    assert status == {"HARD@EXAMPLE.COM": "bounced", "spam@example.com": "complained",
                      "bye@example.com": "unsubscribed", "soft@example.com": "active",
                      "was-spam@example.com": "complained"}  # never downgraded
    entries = sorted(SuppressionEntry.objects.values_list("suppression_list__name", "email"))
    assert entries == [("Hard bounces", "hard@example.com"),
                       ("Spam complaints", "spam@example.com"),
                       ("Spam complaints", "stranger@example.com")]
    assert Subscriber.objects.count() == 5

    # A replayed batch changes nothing.
    p.post_json(client, SANDBOX, [
        p.sandbox_event("complained", event_id="w3", recipient="spam@example.com")])
    services.delivery_events_normalise()
    services.delivery_events_dispatch()
    assert SuppressionEntry.objects.count() == 3


def test_normalised_events_are_linked_to_known_subscribers(client):
    known = Subscriber.objects.create(email="Known@Example.com")
    p.post_json(client, SANDBOX, [
        p.sandbox_event("delivered", event_id="l1", recipient="known@example.com"),
        p.sandbox_event("delivered", event_id="l2", recipient="nobody@example.com"),
    ])
    services.delivery_events_normalise()
    from deliverability.models import DeliveryEvent

    links = dict(DeliveryEvent.objects.values_list("recipient", "subscriber"))
    assert links == {"known@example.com": known.pk, "nobody@example.com": None}


@pytest.mark.parametrize("bounce_type", ["BadEmailAddress", "ManuallyDeactivated"])
def test_postmark_dead_addresses_suppress_as_hard_bounces(client, bounce_type):
    from .test_webhooks import POSTMARK

    Subscriber.objects.create(email="dead@example.com")
    response = p.post_json(client, POSTMARK, p.postmark_bounce(bounce_type,
                                                               email="dead@example.com"))
    assert response.status_code == 200
    services.delivery_events_normalise()
    services.delivery_events_dispatch()
    from deliverability.models import DeliveryEvent

    assert DeliveryEvent.objects.get().kind == "bounced_hard"
    assert Subscriber.objects.get().status == "bounced"
    assert list(SuppressionEntry.objects.values_list("suppression_list__name", "email")) == [
        ("Hard bounces", "dead@example.com")]
