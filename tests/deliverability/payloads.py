"""Webhook payloads written by us in each ESP's documented format, and how to post them.

Shapes follow the ESPs' public docs: SendGrid's Event Webhook (a JSON list), Mailgun's
"webhooks 2.0" (signature block + event-data), Postmark's bounce/delivery/spam webhooks,
Amazon SES event publishing through an SNS HTTP(S) subscription, Brevo's transactional
webhook, and our sandbox ESP (docs/deliverability.md).
"""

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

WEBHOOK_USER = "amends"
WEBHOOK_PASSWORD = "embedded-webhook-secret"  # the TESTING default in config/settings.py
MAILGUN_KEY = "key-mailgun-test-signing"

WHEN = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
EPOCH = int(WHEN.timestamp())


def basic_auth(user: str = WEBHOOK_USER, password: str = WEBHOOK_PASSWORD) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


# --- SendGrid ---------------------------------------------------------------------------

def sendgrid_event(event: str = "delivered", *, email: str = "ann@example.com",
                   sg_event_id: str = "sg-evt-1", timestamp: int = EPOCH, **extra) -> dict:
    payload = {
        "email": email,
        "timestamp": timestamp,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": ["apology"],
        "sg_event_id": sg_event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "anymail_id": "a6c8d5e2-0b1c-4c07-a1f3-2f9a61e0b001",
    }
    if event == "delivered":
        payload["response"] = "250 OK"
    if event == "bounce":
        payload.update(reason="550 5.1.1 unknown user", status="5.1.1", type="bounce")
    payload.update(extra)
    return payload


# --- Mailgun ----------------------------------------------------------------------------

def mailgun_event(*, event: str = "failed", severity: str = "permanent",
                  recipient: str = "ann@example.com", token: str = "a8ce0edb2dd8301dee6c24",
                  key: str = MAILGUN_KEY, user_variables: dict | None = None,
                  signed_at: int | None = None) -> dict:
    # Mailgun signs each post when it sends it: the signature block's timestamp is "now"
    # (Amends refuses signatures outside MAILGUN_WEBHOOK_TOLERANCE_SECONDS).
    timestamp = str(int(time.time()) if signed_at is None else signed_at)
    signature = hmac.new(key.encode(), (timestamp + token).encode(),
                         hashlib.sha256).hexdigest()
    data = {
        "event": event,
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": EPOCH + 0.5,
        "recipient": recipient,
        "message": {"headers": {"message-id": "20261120100000.1.ABC@mg.example.com",
                                "to": recipient, "subject": "We made a mistake"}},
        "user-variables": user_variables or {},
        "tags": [],
    }
    if event == "failed":
        data.update(severity=severity, reason="generic", **{"delivery-status": {
            "code": 550 if severity == "permanent" else 452,
            "message": "5.1.1 The email account does not exist",
            "description": "", "attempt-no": 1}})
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": data}


# --- Postmark ---------------------------------------------------------------------------

def postmark_bounce(bounce_type: str = "HardBounce", *, bounce_id: int = 4323372036854775807,
                    email: str = "ann@example.com", metadata: dict | None = None) -> dict:
    return {
        "RecordType": "Bounce", "ID": bounce_id, "Type": bounce_type, "TypeCode": 1,
        "Name": "Hard bounce", "Tag": "apology",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": metadata or {}, "ServerID": 23, "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 user unknown", "Email": email,
        "From": "hello@brand.example", "BouncedAt": "2026-11-20T10:00:00.000Z",
        "DumpAvailable": False, "Inactive": True, "CanActivate": True,
        "Subject": "We made a mistake",
    }


def postmark_delivery(*, email: str = "ann@example.com") -> dict:
    return {
        "RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Recipient": email,
        "Tag": "apology", "DeliveredAt": "2026-11-20T10:00:00.000Z",
        "Details": "smtp;250 2.0.0 OK", "Metadata": {},
    }


def postmark_spam_complaint(*, email: str = "ann@example.com") -> dict:
    return {
        "RecordType": "SpamComplaint", "ID": 42, "Type": "SpamComplaint", "TypeCode": 512,
        "Name": "Spam complaint", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23, "MessageStream": "outbound", "Description": "", "Details": "",
        "Email": email, "From": "hello@brand.example",
        "BouncedAt": "2026-11-20T10:00:00.000Z", "Subject": "We made a mistake",
        "Metadata": {},
    }


# --- Amazon SES through SNS ----------------------------------------------------------------

def ses_bounce_message(bounce_type: str = "Permanent", *,
                       recipients: tuple[str, ...] = ("ann@example.com",),
                       metadata: dict | None = None) -> dict:
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General" if bounce_type == "Permanent" else "MailboxFull",
            "bouncedRecipients": [{"emailAddress": r, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
                                  for r in recipients],
            "timestamp": "2026-11-20T10:00:00.000Z", "feedbackId": "0100017f-feedback",
            "reportingMTA": "dsn; a8-30.smtp-out.amazonses.com",
        },
        "mail": {
            "timestamp": "2026-11-20T09:59:58.000Z", "source": "hello@brand.example",
            "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/brand.example",
            "sendingAccountId": "123456789012",
            "messageId": "0100017f2e1f-ses-message-id-000000",
            "destination": list(recipients),
            "headersTruncated": False,
            "headers": [{"name": "X-Metadata", "value": json.dumps(metadata or {})}],
            "commonHeaders": {"subject": "We made a mistake"},
        },
    }


def ses_complaint_message(*, email: str = "ann@example.com") -> dict:
    return {
        "eventType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": email}],
                      "timestamp": "2026-11-20T10:00:00.000Z",
                      "feedbackId": "0100017f-complaint", "complaintFeedbackType": "abuse",
                      "userAgent": "Yahoo!-Mail-Feedback/2.0"},
        "mail": {"timestamp": "2026-11-20T09:59:58.000Z", "source": "hello@brand.example",
                 "messageId": "0100017f2e1f-ses-message-id-000001", "destination": [email],
                 "headers": []},
    }


class _Signer:
    """Set per test by the `sns` fixture (tests/deliverability/conftest.py)."""

    loopback = None


SNS = _Signer()


def sns_notification(message: dict, *, message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                     version: str = "1") -> tuple[dict, dict]:
    """(body, extra request headers) as SNS posts an SES event to an HTTPS subscription,
    signed with the test's certificate."""
    body = {
        "Type": "Notification", "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
        "Message": json.dumps(message), "Timestamp": "2026-11-20T10:00:01.000Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&x=y",
    }
    return SNS.loopback.sign(body, version=version), _sns_headers(body)


def sns_subscription_confirmation(*, message_id: str = "165545c9-2a5c-472c-8df2-7ff2be2b3b1b"
                                  ) -> tuple[dict, dict]:
    body = {
        "Type": "SubscriptionConfirmation", "MessageId": message_id,
        "Token": "2336412f37fb687f5d51e6e2425f004aed8b6a0f",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
        "Message": "You have chosen to subscribe to the topic "
                   "arn:aws:sns:us-east-1:123456789012:ses-events.",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
                        "&TopicArn=arn:aws:sns:us-east-1:123456789012:ses-events&Token=2336",
        "Timestamp": "2026-11-20T10:00:00.000Z",
    }
    return SNS.loopback.sign(body), _sns_headers(body)


def _sns_headers(body: dict) -> dict:
    return {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": body["Type"],
            "HTTP_X_AMZ_SNS_MESSAGE_ID": body["MessageId"],
            "HTTP_X_AMZ_SNS_TOPIC_ARN": body["TopicArn"]}


# --- Brevo ----------------------------------------------------------------------------------

def brevo_event(event: str = "hard_bounce", *, email: str = "ann@example.com",
                ts_epoch: int = EPOCH * 1000) -> dict:
    return {
        "event": event, "email": email, "id": 123456, "date": "2026-11-20 11:00:00",
        "ts": EPOCH, "message-id": "<202611201000.12345@smtp-relay.mailin.fr>",
        "ts_event": EPOCH, "subject": "We made a mistake", "tag": "apology",
        "sending_ip": "185.41.28.109", "ts_epoch": ts_epoch, "reason": "550 unknown user",
        "X-Mailin-custom": json.dumps({"broadcast_id": 9}),
    }


# --- Sandbox ---------------------------------------------------------------------------------

def sandbox_event(kind: str = "delivered", *, event_id: str = "sbx-1",
                  recipient: str = "ann@example.com", **extra) -> dict:
    return {"event_id": event_id, "type": kind, "recipient": recipient,
            "message_id": "sbx-msg-1", "timestamp": WHEN.isoformat(), **extra}


def post_json(client, url: str, payload, *, auth: bool = True, **headers):
    extra = {**(basic_auth() if auth else {}), **headers}
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post(url, data=body, content_type="application/json", **extra)


# --- SparkPost ----------------------------------------------------------------------------

def sparkpost_event(event_type: str = "bounce", *, bounce_class: str | None = "10",
                    email: str = "ann@example.com", event_id: str = "92356927693813856",
                    rcpt_meta: dict | None = None) -> dict:
    event = {
        "type": event_type, "event_id": event_id, "timestamp": str(EPOCH),
        "transmission_id": "65832150921904138", "message_id": "0e0d94b7-9085-4e3c-ab30",
        "raw_rcpt_to": email, "rcpt_to": email.lower(), "campaign_id": "apology",
        "rcpt_meta": rcpt_meta or {}, "raw_reason": "550 5.1.1 <ann@example.com>: unknown",
        "reason": "550 5.1.1 ...@... unknown", "num_retries": "0",
    }
    if bounce_class is not None:
        event["bounce_class"] = bounce_class
    return {"msys": {"message_event": event}}


# --- Mandrill -------------------------------------------------------------------------------

MANDRILL_KEY = "mandrill-test-webhook-key"
MANDRILL_URL = "https://amends.example/webhooks/mandrill/"


def mandrill_post(events: list[dict], *, key: str = MANDRILL_KEY) -> tuple[dict, dict]:
    """(form data, headers): Mandrill posts `mandrill_events` form-encoded and signs the
    webhook URL followed by each POST key and value, HMAC-SHA1, base64."""
    data = {"mandrill_events": json.dumps(events)}
    signed = MANDRILL_URL + "".join(k + data[k] for k in sorted(data))
    signature = base64.b64encode(hmac.new(key.encode(), signed.encode(),
                                          hashlib.sha1).digest()).decode()
    return data, {"HTTP_X_MANDRILL_SIGNATURE": signature}


def mandrill_event(event: str = "hard_bounce", *, email: str = "ann@example.com",
                   event_id: str = "mandrill-1") -> dict:
    return {"event": event, "_id": event_id, "ts": EPOCH,
            "msg": {"_id": "abc123abc123abc123abc123abc123", "email": email,
                    "state": "bounced" if "bounce" in event else "sent",
                    "bounce_description": "bad_mailbox", "diag": "smtp;550 5.1.1",
                    "metadata": {"broadcast_id": "5"}, "tags": ["apology"], "ts": EPOCH}}
