"""Authentication and bad input at the webhook door: refused requests store nothing."""

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.urls import reverse

from deliverability.models import RawDeliveryEvent

from . import payloads as p

pytestmark = pytest.mark.django_db

SENDGRID = "/webhooks/sendgrid/tracking/"
MAILGUN = "/webhooks/mailgun/tracking/"
POSTMARK = "/webhooks/postmark/tracking/"
SES = "/webhooks/amazon_ses/tracking/"
BREVO = "/webhooks/brevo/tracking/"
SANDBOX = "/webhooks/sandbox/tracking/"


def test_anymail_url_names_resolve_under_webhooks():
    assert reverse("anymail:sendgrid_tracking_webhook") == SENDGRID
    assert reverse("anymail:amazon_ses_tracking_webhook") == SES
    assert reverse("anymail:mandrill_webhook") == "/webhooks/mandrill/"
    assert reverse("deliverability:sandbox-tracking") == SANDBOX


def _valid(url: str) -> tuple[object, dict]:
    if url == SENDGRID:
        return [p.sendgrid_event()], {}
    if url == POSTMARK:
        return p.postmark_delivery(), {}
    if url == SES:
        return p.sns_notification(p.ses_bounce_message())
    if url == BREVO:
        return p.brevo_event(), {}
    if url == MAILGUN:
        return p.mailgun_event(), {}
    return [p.sandbox_event()], {}


@pytest.mark.parametrize("url", [SENDGRID, POSTMARK, SES, BREVO, MAILGUN, SANDBOX])
def test_valid_post_is_stored(client, mailgun_signing_key, url):
    body, headers = _valid(url)
    response = p.post_json(client, url, body, **headers)
    assert response.status_code == 200, response.content
    assert RawDeliveryEvent.objects.count() == 1


@pytest.mark.parametrize("url", [SENDGRID, POSTMARK, SES, BREVO, MAILGUN, SANDBOX])
def test_missing_authentication_is_401_and_stores_nothing(client, mailgun_signing_key, url):
    body, headers = _valid(url)
    response = p.post_json(client, url, body, auth=False, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not RawDeliveryEvent.objects.exists()


@pytest.mark.parametrize("url", [SENDGRID, POSTMARK, SES, BREVO, MAILGUN, SANDBOX])
def test_wrong_secret_is_403_and_stores_nothing(client, mailgun_signing_key, url):
    body, headers = _valid(url)
    response = client.post(url, data=json.dumps(body), content_type="application/json",
                           **p.basic_auth(password="guessed"), **headers)
    assert response.status_code == 403
    assert not RawDeliveryEvent.objects.exists()


def test_forged_mailgun_signature_is_403(client, mailgun_signing_key):
    forged = p.mailgun_event(key="not-the-real-key")
    response = p.post_json(client, MAILGUN, forged)
    assert response.status_code == 403
    assert not RawDeliveryEvent.objects.exists()


def test_mailgun_without_signing_key_refuses_rather_than_trusting(client):
    response = p.post_json(client, MAILGUN, p.mailgun_event())
    assert response.status_code == 403
    assert not RawDeliveryEvent.objects.exists()


def test_no_webhook_secret_configured_refuses_everything(client, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": []}
    response = p.post_json(client, SENDGRID, [p.sendgrid_event()])
    assert response.status_code == 403
    assert not RawDeliveryEvent.objects.exists()


@pytest.fixture
def sendgrid_key(settings):
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    settings.ANYMAIL = {**settings.ANYMAIL, "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY":
                        base64.b64encode(der).decode()}
    return private


def _sendgrid_signed(private, body: bytes, timestamp: str = "1763632800") -> dict:
    signature = private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": base64.b64encode(signature).decode(),
            "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": timestamp}


def test_sendgrid_signed_event_webhook_accepts_a_good_signature(client, sendgrid_key):
    body = json.dumps([p.sendgrid_event()]).encode()
    response = p.post_json(client, SENDGRID, body, **_sendgrid_signed(sendgrid_key, body))
    assert response.status_code == 200
    assert RawDeliveryEvent.objects.count() == 1


def test_sendgrid_signed_event_webhook_refuses_a_tampered_body(client, sendgrid_key):
    body = json.dumps([p.sendgrid_event()]).encode()
    headers = _sendgrid_signed(sendgrid_key, body)
    tampered = json.dumps([p.sendgrid_event("spamreport")]).encode()
    response = p.post_json(client, SENDGRID, tampered, **headers)
    assert response.status_code == 403
    assert not RawDeliveryEvent.objects.exists()


def test_sendgrid_signed_event_webhook_refuses_a_missing_signature(client, sendgrid_key):
    response = p.post_json(client, SENDGRID, [p.sendgrid_event()])
    assert response.status_code == 403
    assert not RawDeliveryEvent.objects.exists()


def test_ses_header_that_contradicts_the_body_is_refused(client):
    body, headers = p.sns_notification(p.ses_bounce_message())
    headers["HTTP_X_AMZ_SNS_MESSAGE_ID"] = "someone-else"
    response = p.post_json(client, SES, body, **headers)
    assert response.status_code == 403
    assert not RawDeliveryEvent.objects.exists()


@pytest.mark.parametrize("url", [SENDGRID, POSTMARK, SES, BREVO, SANDBOX])
@pytest.mark.parametrize("body", ['[{"event": "delivered", ', "not json at all", "\xff\xfe"])
def test_malformed_json_is_400_and_stores_nothing(client, url, body):
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
               "HTTP_X_AMZ_SNS_MESSAGE_ID": "x"} if url == SES else {}
    response = p.post_json(client, url, body.encode("latin-1"), **headers)
    assert response.status_code == 400
    assert not RawDeliveryEvent.objects.exists()


def test_a_bad_event_in_a_batch_rejects_the_whole_batch(client):
    batch = [p.sendgrid_event(sg_event_id="ok-1"), {"email": "x@example.com"},
             p.sendgrid_event(sg_event_id="ok-2")]
    response = p.post_json(client, SENDGRID, batch)
    assert response.status_code == 400
    assert not RawDeliveryEvent.objects.exists()


def test_sandbox_names_the_bad_field_and_where(client):
    batch = [p.sandbox_event(), p.sandbox_event("exploded", event_id="sbx-2")]
    response = p.post_json(client, SANDBOX, batch)
    assert response.status_code == 400
    assert b"events[1].type" in response.content
    assert not RawDeliveryEvent.objects.exists()


def test_sandbox_accepts_an_hmac_signature_instead_of_basic_auth(client, settings):
    import hashlib
    import hmac

    settings.ANYMAIL = {**settings.ANYMAIL, "SANDBOX_WEBHOOK_SIGNING_KEY": "sbx-key"}
    body = json.dumps([p.sandbox_event("complained")]).encode()
    good = "sha256=" + hmac.new(b"sbx-key", body, hashlib.sha256).hexdigest()
    response = p.post_json(client, SANDBOX, body, auth=False, HTTP_X_AMENDS_SIGNATURE=good)
    assert response.status_code == 200
    bad = p.post_json(client, SANDBOX, body, auth=False,
                      HTTP_X_AMENDS_SIGNATURE="sha256=" + "0" * 64)
    assert bad.status_code in (401, 403)
    assert RawDeliveryEvent.objects.count() == 1


def test_get_is_not_allowed(client):
    assert client.get(SENDGRID, **p.basic_auth()).status_code == 405
    assert client.get(SANDBOX, **p.basic_auth()).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_after_commit_still_answers_200(client, monkeypatch):
    from deliverability import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(tasks.normalise_delivery_events, "apply_async", broker_down)
    from django.core.cache import cache

    from deliverability.services import NORMALISE_QUEUED_KEY

    cache.delete(NORMALISE_QUEUED_KEY)
    response = p.post_json(client, SENDGRID, [p.sendgrid_event()])
    assert response.status_code == 200
    assert RawDeliveryEvent.objects.count() == 1
    cache.delete(NORMALISE_QUEUED_KEY)
