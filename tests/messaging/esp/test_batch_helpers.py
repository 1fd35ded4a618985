"""The small pieces a fan-out runs once per person: each must give what the slower,
general form gives (they were made lean for bench/apology_fanout.py and
bench/esp_send_overhead.py, not different)."""

import json

import pytest

from messaging import broadcasts
from messaging.esp.base import OutgoingMessage
from messaging.esp.batch import (
    JsonTemplate,
    json_object,
    merge_values,
    subject_safe_strings,
    subject_safe_values,
)
from messaging.esp.postmark_json import PostmarkJsonSender, postmark_message
from messaging.rendering import fill_merge_tags

pytestmark = pytest.mark.django_db


def first_message(**extra) -> OutgoingMessage:
    values = {"to": "ann@example.test", "to_name": "Ann Lee", "subject": "Sorry",
              "from_email": "Shop <care@shop.test>", "html": "<p>Hi {{ first_name }}</p>",
              "text": "Hi {{ first_name }}", "reply_to": "help@shop.test",
              "merge_data": {"first_name": "Ann"},
              "metadata": {"broadcast_id": 4, "recipient_id": 1}}
    values.update(extra)
    return OutgoingMessage(**values)


def test_a_message_for_another_person_shares_the_checked_parts_and_checks_its_own():
    first = first_message()
    other = first.for_person(to="bob@example.test", to_name="Bob", merge_data={"first_name": "Bob"},
                             metadata={"broadcast_id": 4, "recipient_id": 2})
    assert (other.to, other.to_name, other.merge_data) == ("bob@example.test", "Bob",
                                                           {"first_name": "Bob"})
    assert other.metadata == {"broadcast_id": "4", "recipient_id": "2"}  # strings, as ESPs take
    assert (other.subject, other.html, other.text, other.from_email, other.reply_to) == (
        first.subject, first.html, first.text, first.from_email, ("help@shop.test",))
    assert first.to == "ann@example.test" and first.metadata["recipient_id"] == "1"
    with pytest.raises(ValueError, match="not an email address"):
        first.for_person(to="nobody", to_name="", merge_data={}, metadata={})


@pytest.mark.parametrize("with_html", [False, True])
def test_subject_safe_strings_give_what_the_two_passes_give(with_html):
    message = first_message(merge_data={"first_name": "Ann\r\nBcc: x@evil.test", "n": 3,
                                        "missing": None, "url": "https://u.test/?a=1&b=<2>"})
    assert subject_safe_strings(message, with_html=with_html) == merge_values(
        subject_safe_values(message), with_html=with_html)
    assert subject_safe_strings(message)["first_name"] == "Ann Bcc: x@evil.test"


@pytest.mark.parametrize("text", ["", "no tags at all", "{{ a }}", "x {{ a }} y {{b}} z {{ a }}",
                                  'quote " and \\ and ü {{ a }}'])
def test_a_json_template_fills_as_the_renderer_would_and_encodes_as_json(text):
    data = {"a": "<A&B>", "b": 'say "hi"'}
    for html in (False, True):
        encoded = JsonTemplate(text, html=html).encode(data)
        assert json.loads(encoded) == fill_merge_tags(text, data, html=html)


def test_json_object_is_compact_json():
    values = {"broadcast_id": "7", "recipient_id": "12", "note": 'é "q"'}
    assert json_object(values) == json.dumps(values, separators=(",", ":"))


def test_a_postmark_batch_body_is_the_array_postmark_message_describes():
    sender = PostmarkJsonSender(server_token="t", base_url="http://127.0.0.1:9")
    first = first_message(html="<p>Hi {{ first_name }}</p>", text="")
    batch = [first, first.for_person(to="bob@example.test", to_name="Bob Ray",
                                     merge_data={"first_name": "Bob"},
                                     metadata={"broadcast_id": 4, "recipient_id": 2})]
    body, content_type = sender.encode(batch)
    assert isinstance(body, bytes) and content_type == "application/json"
    entries = json.loads(body)
    assert [e["HtmlBody"] for e in entries] == ["<p>Hi Ann</p>", "<p>Hi Bob</p>"]
    expected = postmark_message(batch[1])
    assert {k: v for k, v in entries[1].items() if k != "HtmlBody"} == {
        k: v for k, v in expected.items() if k != "HtmlBody"}
    assert sender.encode([]) == (b"[]", "application/json")


def test_the_unsubscribe_link_follows_the_base_url_setting(settings):
    settings.AMENDS_BASE_URL = "https://one.example/"
    first = broadcasts.unsubscribe_url(41)
    settings.AMENDS_BASE_URL = "https://two.example"
    second = broadcasts.unsubscribe_url(41)
    token = broadcasts.unsubscribe_token(41)
    assert (first, second) == (f"https://one.example/unsubscribe/{token}/",
                               f"https://two.example/unsubscribe/{token}/")
