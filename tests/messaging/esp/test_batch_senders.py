"""Every ESP's batch path against a loopback speaking its documented request and answer:
per-recipient merge values and metadata, per-recipient or per-call outcomes, partial
failures, retries, in-doubt answers, the per-call maximum, and the ledger's settle rule."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from messaging import broadcasts
from messaging.esp.base import EspTemporaryError, OutgoingMessage, RecipientStatus
from messaging.esp.batch import PER_CALL_NOTE
from messaging.esp.brevo_batch import BrevoBatchSender
from messaging.esp.httpclient import RetryPolicy
from messaging.esp.mailgun_batch import MailgunBatchSender
from messaging.esp.mailjet_batch import MailjetBatchSender
from messaging.esp.mandrill_batch import MandrillBatchSender
from messaging.esp.postmark_json import PostmarkJsonSender
from messaging.esp.sendgrid_batch import SendGridBatchSender
from messaging.esp.ses_batch import SesBatchSender
from messaging.esp.sparkpost_batch import SparkPostBatchSender
from messaging.rendering import message_headers
from tests.loopback import batch_esps

from .helpers import quick


@dataclass(frozen=True)
class Esp:
    name: str
    loopback: Any
    sender: Any  # (server, **options) -> sender
    per_recipient: bool
    # What one refused address does to a call: "recipient" (only that one fails),
    # "call" (the ESP refuses the whole call), "counts" (per-call counts: in doubt).
    refusal: str
    max_per_call: int
    # Per-person headers (each person's List-Unsubscribe) cannot share a call: Mandrill.
    call_per_person: bool = False


ESPS = [
    Esp("postmark", batch_esps.PostmarkBatchLoopback,
        lambda s, **o: PostmarkJsonSender(server_token=s.server_token, base_url=s.url, **o),
        True, "recipient", 500),
    Esp("sendgrid", batch_esps.SendGridBatchLoopback,
        lambda s, **o: SendGridBatchSender(api_key=s.api_key, base_url=s.url, **o),
        False, "call", 1000),
    Esp("mailgun", batch_esps.MailgunLoopback,
        lambda s, **o: MailgunBatchSender(api_key=s.api_key, domain=s.domain,
                                          base_url=s.url, **o),
        False, "call", 1000),
    Esp("sparkpost", batch_esps.SparkPostBatchLoopback,
        lambda s, **o: SparkPostBatchSender(api_key=s.api_key, base_url=s.url, **o),
        False, "counts", 1000),
    Esp("ses", batch_esps.SesLoopback,
        lambda s, **o: SesBatchSender(access_key=s.access_key, secret_key=s.secret_key,
                                      region="eu-west-1", base_url=s.url, **o),
        True, "recipient", 50),
    Esp("brevo", batch_esps.BrevoBatchLoopback,
        lambda s, **o: BrevoBatchSender(api_key=s.api_key, base_url=s.url, **o),
        True, "call", 1000),
    Esp("mailjet", batch_esps.MailjetLoopback,
        lambda s, **o: MailjetBatchSender(api_key=s.api_key, secret_key=s.secret_key,
                                          base_url=s.url, **o),
        True, "recipient", 50),
    Esp("mandrill", batch_esps.MandrillLoopback,
        lambda s, **o: MandrillBatchSender(api_key=s.api_key, base_url=s.url, **o),
        True, "recipient", 1000, call_per_person=True),
]

HTML = '<p>Dear {{ first_name }},</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'


def msg(n: int, **extra) -> OutgoingMessage:
    values = {"to": f"p{n}@example.test", "to_name": f"Person {n}",
              "subject": "Sorry, {{ first_name }}", "from_email": "Shop <care@shop.test>",
              "html": HTML, "text": "Dear {{ first_name }}, sorry.",
              "merge_data": {"first_name": f"P{n}",
                             "unsubscribe_url": f"https://u.test/{n}?a=1&b=2"},
              "metadata": {"broadcast_id": 9, "recipient_id": n}}
    values.update(extra)
    return OutgoingMessage(**values)


@pytest.fixture(params=ESPS, ids=[e.name for e in ESPS])
def esp(request):
    spec: Esp = request.param
    with spec.loopback() as server:
        sleep, options = quick(retry=RetryPolicy(max_attempts=3))
        yield spec, server, spec.sender(server, **options), sleep


def test_documented_limits(esp):
    spec, _server, sender, _sleep = esp
    assert sender.limits.max_per_call == spec.max_per_call
    assert sender.limits.per_recipient_outcome == spec.per_recipient
    assert sender.merges_client_side


def test_each_recipient_gets_their_own_values_and_our_metadata(esp):
    spec, server, sender, _sleep = esp
    results = sender.send_batch([msg(1), msg(2, merge_data={"first_name": "<b>Eve & co</b>",
                                                            "unsubscribe_url": "https://u/2"})])
    assert [r.status for r in results] == [RecipientStatus.ACCEPTED] * 2
    assert all(r.message_id for r in results)
    assert len(server.calls) == (2 if spec.call_per_person else 1)  # one call for both
    first, second = server.delivered_to("p1@example.test"), \
        server.delivered_to("p2@example.test")
    assert first["subject"] == "Sorry, P1"
    assert "Dear P1," in first["text"]
    assert 'href="https://u.test/1?a=1&amp;b=2"' in first["html"]
    assert "Dear &lt;b&gt;Eve &amp; co&lt;/b&gt;," in second["html"]  # escaped once, in HTML
    assert second["subject"] == "Sorry, <b>Eve & co</b>"  # as is elsewhere
    if spec.name != "brevo":  # Brevo: the recipient is matched by its message id
        assert first["metadata"] == {"broadcast_id": "9", "recipient_id": "1"}
        assert second["metadata"]["recipient_id"] == "2"
    assert server.duplicates() == {}
    notes = {r.error for r in results}
    assert notes == ({""} if spec.per_recipient else {PER_CALL_NOTE.format(
        esp=sender.esp_name)})


def test_one_refused_recipient(esp):
    spec, server, sender, _sleep = esp
    server.refuse.add("p2@example.test")
    results = sender.send_batch([msg(1), msg(2), msg(3)])
    got = [r.status for r in results]
    if spec.refusal == "recipient":
        assert got == [RecipientStatus.ACCEPTED, RecipientStatus.REJECTED,
                       RecipientStatus.ACCEPTED]
        assert results[1].error
        assert set(server.recipient_counts()) == {"p1@example.test", "p3@example.test"}
    elif spec.refusal == "call":
        assert got == [RecipientStatus.FAILED] * 3
        assert "refused the call (400)" in results[0].error
        assert not server.deliveries
    else:  # counts only: who got it is for the tracking events to say
        assert got == [RecipientStatus.UNKNOWN] * 3
        assert "accepted 2 and rejected 1 of 3" in results[0].error


def test_429_is_retried_after_the_esps_wait_and_nothing_is_sent_twice(esp):
    _spec, server, sender, sleep = esp
    server.fail_next(429, retry_after="2")
    results = sender.send_batch([msg(1), msg(2)])
    assert all(r.sent for r in results)
    assert sleep.delays == [2.0]
    assert server.recipient_counts() == Counter({"p1@example.test": 1, "p2@example.test": 1})


def test_429_to_the_end_raises_and_nothing_was_sent(esp):
    _spec, server, sender, _sleep = esp
    server.fail_next(429, times=3, retry_after="0")
    with pytest.raises(EspTemporaryError) as caught:
        sender.send_batch([msg(1)])
    assert caught.value.attempts == 3
    assert not server.deliveries


def test_5xx_and_lost_answers_are_in_doubt_never_retried(esp):
    _spec, server, sender, _sleep = esp
    server.fail_next(503)
    assert [r.status for r in sender.send_batch([msg(1)])] == [RecipientStatus.UNKNOWN]
    sender.timeout = (1.0, 0.2)
    server.delay_next(0.6)
    results = sender.send_batch([msg(2)])
    assert results[0].status == RecipientStatus.UNKNOWN
    assert "in doubt" in results[0].error
    assert len(server.calls) == 2  # never retried


def test_the_per_call_maximum_splits_calls(esp):
    spec, server, _sender, _sleep = esp
    _sleep2, options = quick(retry=RetryPolicy(max_attempts=1), max_per_call=3)
    sender = spec.sender(server, **options)
    server.fail_next(429, retry_after="0")  # the first call: the whole batch goes back
    with pytest.raises(EspTemporaryError):
        sender.send_batch([msg(i) for i in range(7)])
    assert not server.deliveries
    server.reset_calls()
    results = sender.send_batch([msg(i) for i in range(7)])
    assert len(server.calls) == (7 if spec.call_per_person else 3)
    assert all(r.sent for r in results)
    assert server.duplicates() == {}


def test_different_bodies_go_in_separate_calls(esp):
    spec, server, sender, _sleep = esp
    sender.send_batch([msg(1), msg(2, html="<p>Beste {{ first_name }}</p>"), msg(3)])
    if sender.shared_content:
        assert len(server.calls) == (3 if spec.call_per_person else 2)
    assert server.delivered_to("p2@example.test")["html"] == "<p>Beste P2</p>"


BASE = "https://amends.example.com"


@pytest.mark.parametrize("mailto", ["", "unsubscribe@shop.test"])
def test_each_recipient_gets_their_own_list_unsubscribe_headers(esp, settings, mailto):
    """RFC 8058 on the batch path: every person's request carries their own link (and the
    mailto when one is set) and the one-click header, beside the message's own headers;
    one call for all of them where the ESP takes per-person headers."""
    settings.AMENDS_BASE_URL = BASE
    settings.AMENDS_UNSUBSCRIBE_MAILTO = mailto
    spec, server, sender, _sleep = esp
    messages = [msg(n, headers={"X-Campaign": "apology-9"}) for n in (1, 2, 3)]
    results = sender.send_batch(messages)
    assert all(r.sent for r in results)
    # Mandrill has no per-person headers and no merge tags in headers: one call a person.
    assert len(server.calls) == (3 if spec.call_per_person else 1)
    links = set()
    for message in messages:
        got = server.delivered_to(message.to)["headers"]
        token = broadcasts.unsubscribe_token(int(message.metadata["recipient_id"]))
        expected = f"<{BASE}/unsubscribe/{token}/>"
        if mailto:
            expected += f", <mailto:unsubscribe@shop.test?subject=unsubscribe%20{token}>"
        assert got["List-Unsubscribe"] == expected == message_headers(message)[
            "List-Unsubscribe"]
        assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert got["X-Campaign"] == "apology-9"
        links.add(got["List-Unsubscribe"])
    assert len(links) == 3
    assert server.duplicates() == {}


def test_a_line_break_in_a_merge_value_never_breaks_the_subject(esp, settings):
    settings.AMENDS_BASE_URL = BASE
    _spec, server, sender, _sleep = esp
    hostile = "Eve\r\nBcc: everyone@example.test\nX-Evil: 1"
    results = sender.send_batch([msg(1), msg(2, merge_data={"first_name": hostile,
                                                            "unsubscribe_url": "https://u/2"})])
    assert all(r.sent for r in results)
    subject = server.delivered_to("p2@example.test")["subject"]
    assert subject == "Sorry, Eve Bcc: everyone@example.test X-Evil: 1"
    assert server.delivered_to("p1@example.test")["subject"] == "Sorry, P1"
    headers = server.delivered_to("p2@example.test")["headers"]
    assert "Bcc" not in headers and "X-Evil" not in headers
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_ses_reports_throttled_entries_as_failed_not_sent():
    with batch_esps.SesLoopback() as server:
        server.throttle.add("p1@example.test")
        _sleep, options = quick()
        sender = ESPS[4].sender(server, **options)
        results = sender.send_batch([msg(1), msg(2)])
    assert results[0].status == RecipientStatus.FAILED
    assert "ACCOUNT_THROTTLED" in results[0].error
    assert results[1].status == RecipientStatus.ACCEPTED


def test_mandrill_invalid_key_fails_the_call_and_general_errors_are_in_doubt():
    with batch_esps.MandrillLoopback() as server:
        _sleep, options = quick()
        wrong = MandrillBatchSender(api_key="nope", base_url=server.url, **options)
        assert [r.status for r in wrong.send_batch([msg(1)])] == [RecipientStatus.FAILED]
        server.fail_next(500)  # GeneralError body
        right = ESPS[7].sender(server, **options)
        assert [r.status for r in right.send_batch([msg(1)])] == [RecipientStatus.UNKNOWN]


# --- the ledger: claim before, settle after -------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("spec", [e for e in ESPS if e.name in ("sendgrid", "ses", "mailjet")],
                         ids=lambda e: e.name)
def test_a_broadcast_settles_each_row_from_the_batch_answer(spec, marketer):
    from incidents.apology.send import apology_send_start
    from messaging.models import Delivery, DeliveryState
    from tests.messaging.send_world import sendable_incident

    world = sendable_incident(marketer, 12, excluded=0)
    broadcast = apology_send_start(incident=world.incident, actor=marketer,
                                   batch_size=5)
    with spec.loopback() as server:
        refused = sorted(world.included)[3]
        server.refuse.add(refused)
        _sleep, options = quick()
        sender = spec.sender(server, **options)
        for _ in range(10):
            outcome = broadcasts.broadcast_run_batch(broadcast_id=broadcast.pk,
                                                     adapter=sender)
            if outcome.next_in is None:
                break
        rows = {d.email: d for d in Delivery.objects.filter(broadcast=broadcast)}
        assert server.duplicates() == {}
    assert set(rows) == world.included
    if spec.refusal == "recipient":
        assert rows[refused].state == DeliveryState.FAILED
        assert Counter(d.state for d in rows.values())[DeliveryState.SENT] == 11
        assert all(d.esp_message_id for d in rows.values() if d.state == DeliveryState.SENT)
    else:  # SendGrid refuses the call holding the bad address: that call fails, the rest go
        failed = [d for d in rows.values() if d.state == DeliveryState.FAILED]
        assert refused in {d.email for d in failed} and len(failed) <= 5
        assert all("refused the call (400)" in d.reason for d in failed)
        sent = [d for d in rows.values() if d.state == DeliveryState.SENT]
        assert sent and all("for the whole call" in d.reason for d in sent)


@pytest.mark.django_db
@pytest.mark.parametrize("spec", [e for e in ESPS if e.name != "postmark"], ids=lambda e: e.name)
def test_a_broadcast_through_each_batch_esp_gives_every_person_their_own_unsubscribe(
        spec, marketer, settings):
    """The ledger's path end to end: an apology sent through the batch sender reaches each
    person with the List-Unsubscribe link for their own subscriber row and one-click."""
    from incidents.apology.send import apology_send_start
    from messaging.models import Delivery
    from tests.messaging.send_world import sendable_incident

    settings.AMENDS_BASE_URL = BASE
    world = sendable_incident(marketer, 8, excluded=0)
    broadcast = apology_send_start(incident=world.incident, actor=marketer, batch_size=5)
    with spec.loopback() as server:
        _sleep, options = quick()
        sender = spec.sender(server, **options)
        for _ in range(20):
            if broadcasts.broadcast_run_batch(broadcast_id=broadcast.pk,
                                              adapter=sender).next_in is None:
                break
        rows = list(Delivery.objects.filter(broadcast=broadcast))
        assert len(rows) == 8 and server.duplicates() == {}
        for row in rows:
            headers = server.delivered_to(row.email)["headers"]
            token = broadcasts.unsubscribe_token(row.subscriber_id)
            assert headers["List-Unsubscribe"] == f"<{BASE}/unsubscribe/{token}/>"
            assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize("spec", [e for e in ESPS if e.name in ("mailgun", "sparkpost")],
                         ids=lambda e: e.name)
def test_substituted_headers_never_mix_messages_with_different_header_names(spec, settings):
    """Mailgun and SparkPost put one header value with a per-person variable in the call:
    a message without our unsubscribe pair (no recipient id) goes in a call of its own, so
    nobody gets an unfilled variable or an empty header."""
    settings.AMENDS_BASE_URL = BASE
    with spec.loopback() as server:
        _sleep, options = quick()
        sender = spec.sender(server, **options)
        outsider = msg(3, metadata={"broadcast_id": 9})
        results = sender.send_batch([msg(1), outsider, msg(2)])
        assert all(r.sent for r in results)
        assert len(server.calls) == 2
        assert "List-Unsubscribe" not in server.delivered_to(outsider.to)["headers"]
        for n in (1, 2):
            headers = server.delivered_to(f"p{n}@example.test")["headers"]
            assert broadcasts.unsubscribe_token(n) in headers["List-Unsubscribe"]
        assert all("%recipient." not in v and "{{" not in v
                   for d in server.deliveries for v in d["headers"].values())
