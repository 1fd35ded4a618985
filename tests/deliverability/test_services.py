"""Normalisation: kinds per ESP, metadata, deduplication, replay, feedback listeners."""

import random

import pytest
from django.db.models import Count

from deliverability import feedback, services
from deliverability.models import DeliveryEvent, RawDeliveryEvent

from . import payloads as p
from .test_webhooks import BREVO, MAILGUN, POSTMARK, SANDBOX, SENDGRID, SES

pytestmark = pytest.mark.django_db


def _post(client, url, body, **headers):
    response = p.post_json(client, url, body, **headers)
    assert response.status_code == 200, response.content
    return response


def _normalised() -> list[tuple[str, str, str]]:
    services.delivery_events_normalise()
    return sorted(DeliveryEvent.objects.values_list("esp", "recipient", "kind"))


def test_sendgrid_kinds(client):
    _post(client, SENDGRID, [
        p.sendgrid_event("delivered", email="a@example.com", sg_event_id="1"),
        p.sendgrid_event("bounce", email="b@example.com", sg_event_id="2"),
        p.sendgrid_event("bounce", email="c@example.com", sg_event_id="3", type="blocked"),
        p.sendgrid_event("deferred", email="d@example.com", sg_event_id="4"),
        p.sendgrid_event("dropped", email="e@example.com", sg_event_id="5",
                         reason="Bounced Address"),
        p.sendgrid_event("spamreport", email="f@example.com", sg_event_id="6"),
        p.sendgrid_event("unsubscribe", email="g@example.com", sg_event_id="7"),
        p.sendgrid_event("open", email="h@example.com", sg_event_id="8"),
        p.sendgrid_event("processed", email="i@example.com", sg_event_id="9"),
    ])
    assert _normalised() == [
        ("sendgrid", "a@example.com", "delivered"), ("sendgrid", "b@example.com", "bounced_hard"),
        ("sendgrid", "c@example.com", "bounced_soft"), ("sendgrid", "d@example.com", "deferred"),
        ("sendgrid", "e@example.com", "rejected"), ("sendgrid", "f@example.com", "complained"),
        ("sendgrid", "g@example.com", "unsubscribed"), ("sendgrid", "h@example.com", "opened"),
        ("sendgrid", "i@example.com", "other"),
    ]


def test_ses_tells_permanent_from_transient_bounces(client):
    body, headers = p.sns_notification(
        p.ses_bounce_message("Permanent", recipients=("a@example.com", "b@example.com")),
        message_id="sns-1")
    _post(client, SES, body, **headers)
    body, headers = p.sns_notification(
        p.ses_bounce_message("Transient", recipients=("c@example.com",)), message_id="sns-2")
    _post(client, SES, body, **headers)
    body, headers = p.sns_notification(p.ses_complaint_message(email="d@example.com"),
                                       message_id="sns-3")
    _post(client, SES, body, **headers)
    # One SNS notification listing two recipients is two events, not one.
    assert _normalised() == [
        ("amazon_ses", "a@example.com", "bounced_hard"),
        ("amazon_ses", "b@example.com", "bounced_hard"),
        ("amazon_ses", "c@example.com", "bounced_soft"),
        ("amazon_ses", "d@example.com", "complained"),
    ]


def test_mailgun_permanent_failure_is_hard_and_temporary_is_deferred(client, mailgun_signing_key):
    _post(client, MAILGUN, p.mailgun_event(recipient="a@example.com", token="t1"))
    _post(client, MAILGUN, p.mailgun_event(severity="temporary", recipient="b@example.com",
                                           token="t2"))
    _post(client, MAILGUN, p.mailgun_event(event="complained", recipient="c@example.com",
                                           token="t3"))
    assert _normalised() == [("mailgun", "a@example.com", "bounced_hard"),
                             ("mailgun", "b@example.com", "deferred"),
                             ("mailgun", "c@example.com", "complained")]


def test_postmark_kinds(client):
    _post(client, POSTMARK, p.postmark_bounce("HardBounce", bounce_id=1, email="a@example.com"))
    _post(client, POSTMARK, p.postmark_bounce("SoftBounce", bounce_id=2, email="b@example.com"))
    _post(client, POSTMARK, p.postmark_bounce("Transient", bounce_id=3, email="c@example.com"))
    _post(client, POSTMARK, p.postmark_spam_complaint(email="d@example.com"))
    _post(client, POSTMARK, p.postmark_delivery(email="e@example.com"))
    assert _normalised() == [("postmark", "a@example.com", "bounced_hard"),
                             ("postmark", "b@example.com", "bounced_soft"),
                             ("postmark", "c@example.com", "deferred"),
                             ("postmark", "d@example.com", "complained"),
                             ("postmark", "e@example.com", "delivered")]


def test_brevo_soft_and_hard_bounces_without_event_ids(client):
    _post(client, BREVO, p.brevo_event("hard_bounce", email="a@example.com"))
    _post(client, BREVO, p.brevo_event("soft_bounce", email="b@example.com"))
    _post(client, BREVO, p.brevo_event("hard_bounce", email="a@example.com"))  # redelivered
    assert _normalised() == [("brevo", "a@example.com", "bounced_hard"),
                             ("brevo", "b@example.com", "bounced_soft")]
    assert DeliveryEvent.objects.get(recipient="a@example.com").broadcast_id == 9


def test_our_metadata_is_kept_on_the_event(client, storage_path):
    _post(client, SENDGRID, [p.sendgrid_event("bounce", broadcast_id="17", recipient_id="4711",
                                              campaign_id="spring-sale", esp_account="sg-eu")])
    _post(client, SANDBOX, [
        p.sandbox_event(event_id="m1", metadata={"broadcast_id": " 42 ", "recipient_id": "4x",
                                                 "campaign_id": 12}),
        p.sandbox_event(event_id="m2", metadata={"broadcast_id": True, "campaign_id": ["x"],
                                                 "recipient_id": 99999999999999999999}),
    ])
    services.delivery_events_normalise()
    m1 = DeliveryEvent.objects.get(event_id="m1")
    assert (m1.broadcast_id, m1.recipient_id, m1.campaign_key) == (42, None, "12")
    m2 = DeliveryEvent.objects.get(event_id="m2")
    assert (m2.broadcast_id, m2.recipient_id, m2.campaign_key) == (None, None, "")
    body, headers = p.sns_notification(p.ses_bounce_message(
        metadata={"broadcast_id": 18, "recipient_id": "not-a-number"}))
    _post(client, SES, body, **headers)
    services.delivery_events_normalise()
    sg = DeliveryEvent.objects.get(esp="sendgrid")
    assert (sg.broadcast_id, sg.recipient_id, sg.campaign_key, sg.esp_account) == (
        17, 4711, "spring-sale", "sg-eu")
    assert sg.message_id == "a6c8d5e2-0b1c-4c07-a1f3-2f9a61e0b001"
    ses = DeliveryEvent.objects.get(esp="amazon_ses")
    assert (ses.broadcast_id, ses.recipient_id, ses.esp_account) == (18, None, "amazon_ses")
    assert ses.message_id == "0100017f2e1f-ses-message-id-000000"


def test_raw_row_keeps_the_esp_payload_and_anymail_fields(client, storage_path):
    _post(client, SENDGRID, [p.sendgrid_event("bounce", sg_event_id="raw-1")])
    raw = RawDeliveryEvent.objects.get()
    assert raw.esp_event["sg_event_id"] == "raw-1"
    assert (raw.event_type, raw.kind, raw.event_id) == ("bounced", "bounced_hard", "raw-1")
    assert raw.mta_response == "550 5.1.1 unknown user"
    assert raw.batch.event_count == 1 and raw.batch.processed_at is None
    services.delivery_events_normalise()
    raw.batch.refresh_from_db()
    assert raw.batch.processed_at is not None


def test_a_replayed_batch_changes_nothing(client, storage_path):
    batch = [p.sendgrid_event(kind, email=f"r{i}@example.com", sg_event_id=f"replay-{i}")
             for i, kind in enumerate(["delivered", "bounce", "spamreport", "unsubscribe"])]
    _post(client, SENDGRID, batch)
    services.delivery_events_normalise()
    before = list(DeliveryEvent.objects.order_by("id").values())
    _post(client, SENDGRID, batch)
    _post(client, SENDGRID, batch)
    result = services.delivery_events_normalise()
    assert result.processed == 8 and result.created == 0
    assert list(DeliveryEvent.objects.order_by("id").values()) == before


def test_sandbox_duplicates_without_event_id_collapse_on_their_facts(client):
    same = p.sandbox_event("bounced_soft", event_id="")
    _post(client, SANDBOX, [same, same, p.sandbox_event("bounced_soft", event_id="",
                                                         recipient="other@example.com")])
    assert _normalised() == [("sandbox", "ann@example.com", "bounced_soft"),
                             ("sandbox", "other@example.com", "bounced_soft")]


def test_ten_thousand_events_with_twenty_percent_duplicates_count_exactly(client):
    rng = random.Random(6)
    kinds = ["delivered"] * 90 + ["bounce"] * 4 + ["deferred"] * 3 + ["spamreport"] * 1 + \
        ["unsubscribe"] * 2
    unique = [p.sendgrid_event(rng.choice(kinds), email=f"user{i}@example.com",
                               sg_event_id=f"bulk-{i}") for i in range(8000)]
    duplicates = rng.sample(unique, 2000)
    events = unique + duplicates
    rng.shuffle(events)
    for start in range(0, len(events), 1000):
        _post(client, SENDGRID, events[start:start + 1000])
    assert RawDeliveryEvent.objects.count() == 10_000
    result = services.delivery_events_normalise(batch_size=3000)
    assert result.processed == 10_000
    assert result.created == 8000
    assert DeliveryEvent.objects.count() == 8000
    expected = {}
    kind_of = {"delivered": "delivered", "bounce": "bounced_hard", "deferred": "deferred",
               "spamreport": "complained", "unsubscribe": "unsubscribed"}
    for event in unique:
        expected[kind_of[event["event"]]] = expected.get(kind_of[event["event"]], 0) + 1
    counted = dict(DeliveryEvent.objects.values_list("kind").annotate(n=Count("id")))
    assert counted == expected


# --- Feedback: the listener registry and the subscriber port --------------------------------

class RecordingPort:
    """A test double of the port audiences will provide."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def suppress(self, *, email, reason, list_name, event) -> None:
        self.calls.append(("suppress", email, reason, list_name))

    def unsubscribe(self, *, email, event) -> None:
        self.calls.append(("unsubscribe", email))


def test_hard_bounce_and_complaint_suppress_and_unsubscribe_unsubscribes(client, no_listeners):
    port = RecordingPort()
    feedback.delivery_listener_register(feedback.SubscriberFeedback(port))
    _post(client, SANDBOX, [
        p.sandbox_event("bounced_hard", event_id="f1", recipient="hard@example.com"),
        p.sandbox_event("bounced_soft", event_id="f2", recipient="soft@example.com"),
        p.sandbox_event("complained", event_id="f3", recipient="spam@example.com"),
        p.sandbox_event("unsubscribed", event_id="f4", recipient="bye@example.com"),
        p.sandbox_event("delivered", event_id="f5", recipient="fine@example.com"),
    ])
    services.delivery_events_normalise()
    assert services.delivery_events_dispatch() == 5
    assert sorted(port.calls) == [
        ("suppress", "hard@example.com", "bounced_hard", "Hard bounces"),
        ("suppress", "spam@example.com", "complained", "Spam complaints"),
        ("unsubscribe", "bye@example.com"),
    ]
    assert not DeliveryEvent.objects.filter(dispatched_at__isnull=True).exists()


def test_replayed_events_are_not_dispatched_twice(client, no_listeners):
    seen: list[int] = []
    feedback.delivery_listener_register(lambda event: seen.append(event.pk))
    batch = [p.sandbox_event("complained", event_id="once")]
    _post(client, SANDBOX, batch)
    services.delivery_events_normalise()
    services.delivery_events_dispatch()
    _post(client, SANDBOX, batch)
    services.delivery_events_normalise()
    services.delivery_events_dispatch()
    assert len(seen) == 1


def test_a_failing_listener_leaves_its_event_pending_for_the_next_run(client, no_listeners):
    attempts: list[str] = []

    def flaky(event):
        attempts.append(event.recipient)
        if len(attempts) == 1:
            raise RuntimeError("audiences is down")

    feedback.delivery_listener_register(flaky)
    _post(client, SANDBOX, [p.sandbox_event("bounced_hard", event_id="flaky")])
    services.delivery_events_normalise()
    assert services.delivery_events_dispatch() == 0
    assert DeliveryEvent.objects.filter(dispatched_at__isnull=True).count() == 1
    assert services.delivery_events_dispatch() == 1
    assert attempts == ["ann@example.com", "ann@example.com"]


def test_without_listeners_events_are_stored_as_dispatched(client, no_listeners):
    _post(client, SANDBOX, [p.sandbox_event(event_id=f"n{i}") for i in range(30)])
    services.delivery_events_normalise()
    assert not DeliveryEvent.objects.filter(dispatched_at__isnull=True).exists()
    assert services.delivery_events_dispatch() == 0


def test_kinds_nobody_listens_to_are_stored_as_already_dispatched(client, no_listeners,
                                                                  storage_path):
    port = RecordingPort()
    feedback.delivery_listener_register(feedback.SubscriberFeedback(port),
                                        kinds=feedback.SubscriberFeedback.KINDS)
    _post(client, SANDBOX, [p.sandbox_event("opened", event_id="k1"),
                            p.sandbox_event("delivered", event_id="k2"),
                            p.sandbox_event("complained", event_id="k3")])
    services.delivery_events_normalise()
    pending = DeliveryEvent.objects.filter(dispatched_at__isnull=True)
    assert list(pending.values_list("kind", flat=True)) == ["complained"]
    assert services.delivery_events_dispatch() == 1
    assert port.calls == [("suppress", "ann@example.com", "complained", "Spam complaints")]


def test_sparkpost_bounce_classes(client):
    _post(client, "/webhooks/sparkpost/tracking/", [
        p.sparkpost_event(bounce_class="10", email="a@example.com", event_id="s1"),
        p.sparkpost_event(bounce_class="21", email="b@example.com", event_id="s2"),
        p.sparkpost_event("spam_complaint", bounce_class=None, email="c@example.com",
                          event_id="s3"),
        p.sparkpost_event("delivery", bounce_class=None, email="d@example.com", event_id="s4",
                          rcpt_meta={"broadcast_id": "3"}),
        {"msys": {}},  # SparkPost's "ping": no event
    ])
    assert _normalised() == [("sparkpost", "a@example.com", "bounced_hard"),
                             ("sparkpost", "b@example.com", "bounced_soft"),
                             ("sparkpost", "c@example.com", "complained"),
                             ("sparkpost", "d@example.com", "delivered")]
    assert DeliveryEvent.objects.get(recipient="d@example.com").broadcast_id == 3


@pytest.fixture
def mandrill_key(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "MANDRILL_WEBHOOK_KEY": p.MANDRILL_KEY,
                        "MANDRILL_WEBHOOK_URL": p.MANDRILL_URL}


def test_mandrill_signed_soft_and_hard_bounces(client, mandrill_key):
    data, headers = p.mandrill_post([
        p.mandrill_event("hard_bounce", email="a@example.com", event_id="m1"),
        p.mandrill_event("soft_bounce", email="b@example.com", event_id="m2"),
        p.mandrill_event("spam", email="c@example.com", event_id="m3"),
    ])
    response = client.post("/webhooks/mandrill/", data, **p.basic_auth(), **headers)
    assert response.status_code == 200, response.content
    assert _normalised() == [("mandrill", "a@example.com", "bounced_hard"),
                             ("mandrill", "b@example.com", "bounced_soft"),
                             ("mandrill", "c@example.com", "complained")]


def test_mandrill_forged_signature_is_refused(client, mandrill_key):
    data, headers = p.mandrill_post([p.mandrill_event()], key="guessed")
    response = client.post("/webhooks/mandrill/", data, **p.basic_auth(), **headers)
    assert response.status_code == 403
    assert not RawDeliveryEvent.objects.exists()


def test_payload_values_jsonb_cannot_hold_are_stored_safely(client):
    body = ('[{"event_id": "odd", "type": "delivered", "recipient": "ann@example.com", '
            '"timestamp": 1763632800, "metadata": {"score": NaN, '
            '"huge": 123456789012345678901234567890}}]')
    _post(client, SANDBOX, body)
    raw = RawDeliveryEvent.objects.get()
    assert raw.metadata == {"score": None, "huge": 123456789012345678901234567890}
    assert _normalised() == [("sandbox", "ann@example.com", "delivered")]
