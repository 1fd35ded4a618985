"""The lean Postmark sender used by broadcasts, against the loopback Postmark: merge tags
filled per recipient, and the same failure contract as the anymail path."""

import json
from email.utils import formataddr

import pytest

from messaging.esp.base import EspTemporaryError, OutgoingMessage, RecipientStatus
from messaging.esp.httpclient import RetryPolicy
from messaging.esp.postmark import PostmarkAdapter

from .helpers import quick

HTML = '<p>Dear {{ first_name }},</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'


def msg(n: int, **extra) -> OutgoingMessage:
    values = {"to": f"p{n}@example.test", "to_name": f"Person {n}",
              "subject": "Sorry, {{ first_name }}", "from_email": "Shop <care@shop.test>",
              "html": HTML, "text": "Dear {{ first_name }}, sorry. {{ unknown }}",
              "merge_data": {"first_name": f"P{n}", "unsubscribe_url": f"https://u.test/{n}?a=1&b=2"},
              "metadata": {"broadcast_id": 9, "recipient_id": n}}
    values.update(extra)
    return OutgoingMessage(**values)


@pytest.fixture
def adapter(postmark_esp):
    _sleep, options = quick()
    esp = PostmarkAdapter(server_token=postmark_esp.server_token, base_url=postmark_esp.url,
                          json_batch=True, retry=RetryPolicy(max_attempts=3), **options)
    return esp


def test_each_message_is_filled_for_its_recipient(adapter, postmark_esp):
    results = adapter.send_batch([msg(1), msg(2, merge_data={"first_name": "<b>Eve</b>"})])
    assert [r.status for r in results] == [RecipientStatus.ACCEPTED] * 2
    assert all(r.message_id for r in results)
    sent = postmark_esp.calls_to("POST", "/email/batch")[0].json
    first, second = sent
    assert first["To"] == "Person 1 <p1@example.test>" and first["Subject"] == "Sorry, P1"
    assert "Dear P1," in first["HtmlBody"]
    assert 'href="https://u.test/1?a=1&amp;b=2"' in first["HtmlBody"]  # escaped in HTML
    assert first["TextBody"] == "Dear P1, sorry. {{ unknown }}"  # unknown tags stay
    assert first["Metadata"] == {"broadcast_id": "9", "recipient_id": "1"}
    assert "&lt;b&gt;Eve&lt;/b&gt;" in second["HtmlBody"] and "<b>Eve</b>" in second["TextBody"]
    assert adapter.merges_client_side


def test_the_json_is_what_json_dumps_would_write(adapter):
    sender = adapter.sender
    message = msg(3, to_name='Zoë "Z" Ünal', reply_to=("help@shop.test",),
                  headers={"X-Tag": "apology"})
    entry = json.loads(sender.encode_one(message))
    assert entry["To"] == formataddr(('Zoë "Z" Ünal', "p3@example.test"))
    assert entry["ReplyTo"] == "help@shop.test"
    assert entry["Headers"][0] == {"Name": "X-Tag", "Value": "apology"}
    # and the recipient's own unsubscribe link (tests/messaging/test_unsubscribe.py)
    assert entry["Headers"][1]["Name"] == "List-Unsubscribe"


def test_inactive_recipients_are_rejected_the_rest_accepted(adapter, postmark_esp):
    postmark_esp.inactive.add("p2@example.test")
    results = adapter.send_batch([msg(1), msg(2)])
    assert [r.status for r in results] == [RecipientStatus.ACCEPTED, RecipientStatus.REJECTED]
    assert "inactive" in results[1].error


def test_5xx_leaves_the_batch_in_doubt_and_is_not_retried(adapter, postmark_esp):
    postmark_esp.fail_next(503)
    results = adapter.send_batch([msg(1), msg(2)])
    assert {r.status for r in results} == {RecipientStatus.UNKNOWN}
    assert len(postmark_esp.calls_to("POST", "/email/batch")) == 1


def test_429_is_retried_then_raised_when_it_persists(adapter, postmark_esp):
    postmark_esp.fail_next(429, retry_after="1")
    assert adapter.send_batch([msg(1)])[0].status == RecipientStatus.ACCEPTED
    assert adapter.sender.sleep.delays == [1.0]
    postmark_esp.fail_next(429, times=3)
    with pytest.raises(EspTemporaryError, match="nothing was sent"):
        adapter.send_batch([msg(2)])


def test_a_refused_call_fails_every_message(adapter, postmark_esp):
    postmark_esp.fail_next(422)
    results = adapter.send_batch([msg(1)])
    assert results[0].status == RecipientStatus.FAILED and "422" in results[0].error


def test_a_timeout_after_sending_is_in_doubt(postmark_esp):
    esp = PostmarkAdapter(server_token=postmark_esp.server_token, base_url=postmark_esp.url,
                          json_batch=True, timeout=(1, 0.2))
    postmark_esp.delay_next(0.6)
    results = esp.send_batch([msg(1)])
    assert results[0].status == RecipientStatus.UNKNOWN
    assert postmark_esp.recipient_counts()["p1@example.test"] == 1  # the ESP did take it
