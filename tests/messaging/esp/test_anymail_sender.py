"""Real anymail (Postmark backend) against a loopback Postmark speaking /email/batch."""

import pytest

from messaging.esp.anymail_sender import AnymailSender, group_for_batches
from messaging.esp.base import EspTemporaryError, OutgoingMessage, RecipientStatus
from messaging.esp.postmark import PostmarkAdapter

from .helpers import quick


def msg(n: int, **kw) -> OutgoingMessage:
    return OutgoingMessage(**{
        "to": f"person{n}@example.test", "subject": "We are sorry", "from_email":
        "Care <care@shop.test>", "html": "<p>Hello {{first_name}}</p>",
        "text": "Hello {{first_name}}", "merge_data": {"first_name": f"P{n}"},
        "metadata": {"broadcast_id": 7, "recipient_id": n}, **kw})


@pytest.fixture
def postmark(postmark_esp):
    sleep, opts = quick()
    adapter = PostmarkAdapter(server_token=postmark_esp.server_token, base_url=postmark_esp.url,
                              **opts)
    adapter.fake_sleep = sleep
    return adapter


def test_batch_send_gives_each_recipient_a_message_id_and_our_metadata(postmark, postmark_esp):
    results = postmark.send_batch([msg(n) for n in range(3)])
    assert [r.recipient for r in results] == [f"person{n}@example.test" for n in range(3)]
    assert all(r.status == RecipientStatus.ACCEPTED and r.sent for r in results)
    assert len({r.message_id for r in results}) == 3

    (call,) = postmark_esp.calls_to("POST", "/email/batch")
    assert call.header("X-Postmark-Server-Token") == postmark_esp.server_token
    sent = call.json
    assert len(sent) == 3 and [m["To"] for m in sent] == [r.recipient for r in results]
    assert sent[1]["Metadata"] == {"broadcast_id": "7", "recipient_id": "1"}
    assert sent[1]["TemplateModel"] == {"first_name": "P1"}
    assert sent[1]["From"] == "Care <care@shop.test>" and sent[1]["Subject"] == "We are sorry"
    assert sent[1]["HtmlBody"] == "<p>Hello {{first_name}}</p>"
    by_id = {d.message_id: d for d in postmark_esp.deliveries}
    assert by_id[results[2].message_id].metadata["recipient_id"] == "2"


def test_refused_recipients_are_reported_per_recipient(postmark, postmark_esp):
    postmark_esp.inactive.add("person1@example.test")
    results = postmark.send_batch([msg(0), msg(1), msg(2)])
    assert [r.status for r in results] == [RecipientStatus.ACCEPTED, RecipientStatus.REJECTED,
                                           RecipientStatus.ACCEPTED]
    assert results[1].message_id is None and "rejected" in results[1].error
    assert postmark_esp.recipient_counts()["person1@example.test"] == 0


def test_different_content_goes_in_separate_calls_and_keeps_order(postmark, postmark_esp):
    messages = [msg(0), msg(1, subject="Other"), msg(2)]
    results = postmark.send_batch(messages)
    assert [r.recipient for r in results] == [m.to for m in messages]
    assert len(postmark_esp.calls_to("POST", "/email/batch")) == 2


def test_groups_respect_max_per_call_and_never_repeat_a_recipient():
    messages = [msg(n % 3) for n in range(7)]
    groups = group_for_batches(messages, max_per_call=2)
    assert all(len(g) <= 2 for g in groups)
    for g in groups:
        assert len({messages[i].to for i in g}) == len(g)
    assert sorted(i for g in groups for i in g) == list(range(7))


def test_429_is_retried_with_backoff_and_sends_once(postmark, postmark_esp):
    postmark_esp.fail_next(429, retry_after="2")
    results = postmark.send_batch([msg(0), msg(1)])
    assert all(r.sent for r in results)
    assert postmark.fake_sleep.delays == [2.0]
    assert postmark_esp.recipient_counts() == {"person0@example.test": 1,
                                               "person1@example.test": 1}


def test_429_until_the_end_raises_temporary_error_and_nothing_was_sent(postmark, postmark_esp):
    postmark_esp.fail_next(429, times=10)
    with pytest.raises(EspTemporaryError, match="nothing was sent"):
        postmark.send_batch([msg(0)])
    assert len(postmark_esp.calls) == 5 and postmark_esp.deliveries == []


def test_5xx_leaves_recipients_in_doubt_and_is_not_retried(postmark, postmark_esp):
    postmark_esp.fail_next(500)
    results = postmark.send_batch([msg(0), msg(1)])
    assert {r.status for r in results} == {RecipientStatus.UNKNOWN}
    assert results[0].error.startswith("in doubt: Postmark answered 500")
    assert len(postmark_esp.calls) == 1


def test_a_refused_call_fails_every_recipient_with_the_esps_words(postmark_esp):
    _sleep, opts = quick()
    adapter = PostmarkAdapter(server_token="wrong", base_url=postmark_esp.url, **opts)
    results = adapter.send_batch([msg(0)])
    assert results[0].status == RecipientStatus.FAILED
    assert "Postmark refused the call (401)" in results[0].error
    assert "X-Postmark-Server-Token" in results[0].error


def test_unreachable_esp_is_a_temporary_error():
    sleep, opts = quick()
    adapter = PostmarkAdapter(server_token="t", base_url="http://127.0.0.1:9", **opts)
    with pytest.raises(EspTemporaryError, match="connection failed"):
        adapter.send_batch([msg(0)])
    assert len(sleep.delays) == 4


def test_lookup_finds_accepted_messages_by_our_metadata(postmark, postmark_esp):
    postmark.send_batch([msg(n) for n in range(3)])
    postmark.send_batch([msg(9, metadata={"broadcast_id": 8, "recipient_id": 9})])
    found = postmark.lookup_messages({"broadcast_id": "7", "recipient_id": "2"})
    assert [(m.recipient, m.metadata["recipient_id"]) for m in found] == [
        ("person2@example.test", "2")]
    assert len(postmark.lookup_messages({"broadcast_id": "7"})) == 3
    call = postmark_esp.calls_to("GET", "/messages/outbound")[0]
    assert call.query["metadata_broadcast_id"] == ["7"] and call.query["count"] == ["500"]


def test_postmark_has_no_campaign_pause(postmark):
    from messaging.esp.base import EspNotSupported
    with pytest.raises(EspNotSupported, match="Postmark has no pause"):
        postmark.stop_campaign("x")


def test_sender_needs_a_sane_batch_size():
    with pytest.raises(ValueError, match="max_per_call"):
        AnymailSender(backend="anymail.backends.postmark.EmailBackend", max_per_call=0)


def test_a_timeout_after_the_esp_took_the_batch_is_in_doubt_and_reconcilable(postmark_esp):
    sleep, opts = quick()
    adapter = PostmarkAdapter(server_token=postmark_esp.server_token, base_url=postmark_esp.url,
                              **opts)
    adapter.sender.backend_options["requests_timeout"] = 0.3
    postmark_esp.delay_next(1.0)
    results = adapter.send_batch([msg(0), msg(1)])
    assert {r.status for r in results} == {RecipientStatus.UNKNOWN}
    assert results[0].error.startswith("in doubt: the connection failed after sending")
    assert len(postmark_esp.calls_to("POST", "/email/batch")) == 1  # not resent
    # the ESP did take them: reconciliation by our metadata finds both
    found = adapter.lookup_messages({"broadcast_id": "7"})
    assert sorted(m.recipient for m in found) == ["person0@example.test",
                                                  "person1@example.test"]


def test_a_5xx_batch_that_never_arrived_is_found_missing_by_lookup(postmark, postmark_esp):
    postmark_esp.fail_next(503, paths="/email/batch")
    results = postmark.send_batch([msg(0)])
    assert results[0].status == RecipientStatus.UNKNOWN
    assert postmark.lookup_messages({"broadcast_id": "7", "recipient_id": "0"}) == []
