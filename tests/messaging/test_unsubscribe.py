"""Unsubscribing (issue 12): the page every apology links to, RFC 8058 one-click, and the
List-Unsubscribe headers on every send path (sandbox, Postmark JSON, anymail)."""

import re

import pytest
from django.test import Client

from audiences.models import Subscriber, SubscriberStatus
from deliverability.models import DeliveryEvent, DeliveryKind
from deliverability.subscriber_feedback import AudiencesPort
from incidents.apology.send import apology_send_start
from messaging import broadcasts
from messaging.esp.anymail_sender import AnymailSender, group_for_batches
from messaging.esp.base import OutgoingMessage
from messaging.esp.postmark import PostmarkAdapter
from messaging.esp.sandbox import SandboxAdapter
from messaging.rendering import message_headers, unsubscribe_headers
from tests.messaging.esp.helpers import quick
from tests.messaging.send_world import sendable_incident

pytestmark = pytest.mark.django_db

BASE = "https://amends.example.com"


@pytest.fixture(autouse=True)
def _https_base(settings):
    settings.AMENDS_BASE_URL = BASE
    settings.AMENDS_UNSUBSCRIBE_MAILTO = ""


def person(**kw) -> Subscriber:
    return Subscriber.objects.create(**{"email": "ana@example.test", "name": "Ana",
                                        "locale": "en", **kw})


def link(subscriber: Subscriber) -> str:
    return f"/unsubscribe/{broadcasts.unsubscribe_token(subscriber.pk)}/"


# --- The page ----------------------------------------------------------------------------------

def test_get_asks_and_changes_nothing_so_link_scanners_cannot_unsubscribe(client):
    ana = person()
    response = client.get(link(ana))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="unsubscribe-confirm"' in html and "a•••@example.test" in html
    assert "ana@example.test" not in html  # the address is masked
    assert response["X-Robots-Tag"].startswith("noindex")
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    ana.refresh_from_db()
    assert ana.status == SubscriberStatus.ACTIVE and ana.unsubscribed_at is None


def test_the_button_unsubscribes_without_login_and_the_page_then_says_so():
    ana = person()
    client = Client(enforce_csrf_checks=True)  # as a mailbox user's browser: no session
    response = client.post(link(ana))
    assert response.status_code == 302 and response["Location"] == link(ana)
    ana.refresh_from_db()
    assert ana.status == SubscriberStatus.UNSUBSCRIBED
    assert ana.unsubscribed_at is not None and ana.unsubscribe_source == "unsubscribe page"
    page = client.get(link(ana)).content.decode()
    assert 'id="unsubscribe-done"' in page and 'id="unsubscribe-confirm"' not in page


def test_one_click_post_from_the_mailbox_provider_unsubscribes_at_once():
    ana = person()
    client = Client(enforce_csrf_checks=True)
    response = client.post(link(ana), data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    ana.refresh_from_db()
    assert ana.status == SubscriberStatus.UNSUBSCRIBED and ana.unsubscribe_source == "one-click"
    first = ana.unsubscribed_at
    # Posting again (a provider's retry) changes nothing and still answers 200.
    assert client.post(link(ana), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    ana.refresh_from_db()
    assert ana.unsubscribed_at == first


@pytest.mark.parametrize("token", [
    "{pk}-000000000000000000000000",  # right id, wrong MAC
    "{other}-{mac}",  # another person's id with this person's MAC
    "{pk}",  # no MAC
    "{pk}-{mac}x",  # a MAC with something added
    "-{mac}",
    "abc-{mac}",
    "99999999999999999999999999-{mac}",
])
def test_a_wrong_or_changed_link_is_404_and_unsubscribes_nobody(client, token):
    ana, bo = person(), person(email="bo@example.test")
    mac = broadcasts.unsubscribe_token(ana.pk).partition("-")[2]
    url = "/unsubscribe/" + token.format(pk=ana.pk, other=bo.pk, mac=mac) + "/"
    for response in (client.get(url), client.post(url, {"List-Unsubscribe": "One-Click"})):
        assert response.status_code == 404
        assert "This link does not work" in response.content.decode()
    assert set(Subscriber.objects.values_list("status", flat=True)) == {"active"}


def test_a_link_for_someone_since_deleted_is_404(client):
    ana = person()
    url = link(ana)
    ana.delete()
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(("locale", "lang", "direction", "words"), [
    ("nl-NL", "nl", "ltr", "Afmelden"),
    ("pl", "pl", "ltr", "Wypisz"),
    ("ar", "ar", "rtl", "إلغاء الاشتراك"),
    ("he_IL", "he", "rtl", "ביטול"),
    ("id", "id", "ltr", "Berhenti berlangganan"),
    ("xx", "en", "ltr", "Unsubscribe"),
    ("", "en", "ltr", "Unsubscribe"),
])
def test_the_page_speaks_the_subscribers_language(client, locale, lang, direction, words):
    ana = person(locale=locale)
    html = client.get(link(ana), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'<html lang="{lang}" dir="{direction}">' in html
    assert words in html


def test_unsubscribing_never_lowers_a_complaint(client):
    ana = person(status=SubscriberStatus.COMPLAINED)
    client.post(link(ana), {"List-Unsubscribe": "One-Click"})
    ana.refresh_from_db()
    assert ana.status == SubscriberStatus.COMPLAINED and ana.unsubscribed_at is not None


def test_an_esp_unsubscribe_event_takes_the_same_path(client):
    ana = person(email="Ana@Example.test")
    event = DeliveryEvent(esp="postmark", kind=DeliveryKind.UNSUBSCRIBED,
                          recipient="ana@example.test")
    AudiencesPort().unsubscribe(email=event.recipient, event=event)
    ana.refresh_from_db()
    assert ana.status == SubscriberStatus.UNSUBSCRIBED
    assert ana.unsubscribe_source == "esp:postmark" and ana.unsubscribed_at is not None


# --- The headers -------------------------------------------------------------------------------

def apology_messages(marketer, n: int = 3, *, sender_merges: bool = False
                     ) -> tuple[list[OutgoingMessage], list]:
    world = sendable_incident(marketer, n, excluded=0)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    rows = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="t").rows
    return broadcasts.build_messages(broadcast, rows, sender_merges=sender_merges), rows


def test_the_headers_name_the_recipients_own_link_and_offer_one_click(settings):
    settings.AMENDS_UNSUBSCRIBE_MAILTO = "unsubscribe@northwind.test"
    message = OutgoingMessage(to="a@example.test", subject="Sorry", from_email="c@shop.test",
                              text="Sorry", metadata={"broadcast_id": 1, "recipient_id": 42})
    headers = unsubscribe_headers(message)
    token = broadcasts.unsubscribe_token(42)
    assert headers["List-Unsubscribe"] == (
        f"<{BASE}/unsubscribe/{token}/>, "
        f"<mailto:unsubscribe@northwind.test?subject=unsubscribe%20{token}>")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_one_click_is_only_announced_for_an_https_link(settings):
    settings.AMENDS_BASE_URL = "http://127.0.0.1:8000"
    message = OutgoingMessage(to="a@example.test", subject="Sorry", from_email="c@shop.test",
                              text="Sorry", metadata={"recipient_id": 42})
    assert set(unsubscribe_headers(message)) == {"List-Unsubscribe"}


def test_a_message_that_is_not_ours_gets_no_unsubscribe_headers():
    message = OutgoingMessage(to="a@example.test", subject="Hi", from_email="c@shop.test",
                              text="Hi", headers={"X-Tag": "t"})
    assert message_headers(message) == {"X-Tag": "t"}


def test_the_sandbox_receives_the_headers_on_every_apology(marketer):
    messages, rows = apology_messages(marketer)
    esp = SandboxAdapter(outcomes={}, seed=3)
    esp.send_batch(messages)
    by_to = {m.recipient: m for m in esp.store.all_messages()}
    for row in rows:
        headers = by_to[row.email].headers
        assert headers["List-Unsubscribe"] == (
            f"<{BASE}/unsubscribe/{broadcasts.unsubscribe_token(row.subscriber_id)}/>")
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def address(entry: dict) -> str:
    return re.search(r"[^<\s]+@[^>\s]+", entry["To"]).group(0)


def test_postmark_json_sends_each_person_their_own_headers(marketer, postmark_esp):
    messages, rows = apology_messages(marketer)
    _sleep, options = quick()
    esp = PostmarkAdapter(server_token=postmark_esp.server_token, base_url=postmark_esp.url,
                          json_batch=True, **options)
    esp.send_batch(messages)
    (call,) = postmark_esp.calls_to("POST", "/email/batch")
    tokens = {r.email: broadcasts.unsubscribe_token(r.subscriber_id) for r in rows}
    for entry in call.json:
        headers = {h["Name"]: h["Value"] for h in entry["Headers"]}
        assert headers["List-Unsubscribe"] == f"<{BASE}/unsubscribe/{tokens[address(entry)]}/>"
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_anymail_sends_per_person_headers_in_one_batch_call(marketer, postmark_esp):
    # Shared bodies with merge data (what an ESP that fills merge tags gets): the per-person
    # header must not split the batch.
    messages, rows = apology_messages(marketer, n=6, sender_merges=True)
    _sleep, options = quick()
    esp = PostmarkAdapter(server_token=postmark_esp.server_token, base_url=postmark_esp.url,
                          **options)  # the anymail path
    esp.send_batch(messages)
    calls = postmark_esp.calls_to("POST", "/email/batch")
    sent = [entry for call in calls for entry in call.json]
    assert len(sent) == 6
    assert len(calls) == 2  # English and Dutch bodies; never one call per person
    tokens = {r.email: broadcasts.unsubscribe_token(r.subscriber_id) for r in rows}
    for entry in sent:
        headers = {h["Name"]: h["Value"] for h in entry["Headers"]}
        assert headers["List-Unsubscribe"] == f"<{BASE}/unsubscribe/{tokens[address(entry)]}/>"
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_anymail_without_merge_headers_sends_each_person_alone_with_their_headers():
    messages = [OutgoingMessage(to=f"p{n}@example.test", subject="Sorry",
                                from_email="c@shop.test", text="Sorry",
                                metadata={"recipient_id": n}) for n in range(3)]
    assert group_for_batches(messages, 500) == [[0, 1, 2]]
    assert group_for_batches(messages, 500, per_recipient_headers=False) == [[0], [1], [2]]
    sender = AnymailSender(backend="anymail.backends.mandrill.EmailBackend")
    assert not sender.merges_headers


# --- Line breaks in merge values never reach a header ----------------------------------------

HOSTILE = "Eve\r\nBcc: everyone@example.test\nX-Evil: 1"


def test_a_name_with_line_breaks_cannot_break_the_subject(marketer, postmark_esp):
    messages, rows = apology_messages(marketer, n=2)
    Subscriber.objects.filter(pk=rows[0].subscriber_id).update(name=HOSTILE)
    world_rows = [r if r is not rows[0] else broadcasts.ClaimedRow(
        id=r.id, subscriber_id=r.subscriber_id, email=r.email, name=HOSTILE, locale=r.locale)
        for r in rows]
    broadcast = broadcasts.Broadcast.objects.get()
    broadcast.bodies = {k: {**v, "subject": "Sorry, {{ first_name }} {{ last_name }}"}
                        for k, v in broadcast.bodies.items()}
    broadcast.content_version += 1
    for sender_merges in (False, True):
        for message in broadcasts.build_messages(broadcast, world_rows,
                                                 sender_merges=sender_merges):
            assert "\r" not in message.subject and "\n" not in message.subject
            assert all("\n" not in str(v) and "\r" not in str(v)
                       for v in message.merge_data.values())
    hostile = broadcasts.build_messages(broadcast, world_rows)[0]
    assert hostile.subject == "Sorry, Eve Bcc: everyone@example.test X-Evil: 1"
    # And on the wire (Postmark JSON fills merge tags itself).
    _sleep, options = quick()
    esp = PostmarkAdapter(server_token=postmark_esp.server_token, base_url=postmark_esp.url,
                          json_batch=True, **options)
    esp.send_batch([OutgoingMessage(to="e@example.test", subject="Sorry, {{ first_name }}",
                                    from_email="c@shop.test", text="Hi {{ first_name }}",
                                    merge_data={"first_name": HOSTILE},
                                    metadata={"recipient_id": 1})])
    (entry,) = postmark_esp.calls_to("POST", "/email/batch")[0].json
    assert entry["Subject"] == "Sorry, Eve Bcc: everyone@example.test X-Evil: 1"
    assert all("\n" not in h["Value"] for h in entry["Headers"])


def test_a_subject_with_a_line_break_is_made_one_line():
    message = OutgoingMessage(to="a@example.test", subject="We are sorry\r\n  about that",
                              from_email="c@shop.test", text="x")
    assert message.subject == "We are sorry about that"
