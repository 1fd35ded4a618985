"""Mailgun signatures have an age limit and a token is good for one body."""

import json
import time

import pytest

from deliverability.models import RawDeliveryEvent

from . import payloads as p
from .test_webhooks import MAILGUN

pytestmark = pytest.mark.django_db


def test_a_signature_block_replayed_on_a_different_body_is_refused(client,
                                                                   mailgun_signing_key):
    real = p.mailgun_event(event="delivered", recipient="ann@example.com", token="tok-1")
    assert p.post_json(client, MAILGUN, real).status_code == 200
    forged = p.mailgun_event(event="complained", recipient="ann@example.com", token="other")
    forged["signature"] = real["signature"]  # copied from the real request
    response = p.post_json(client, MAILGUN, forged)
    assert response.status_code == 403
    assert list(RawDeliveryEvent.objects.values_list("event_type", flat=True)) == ["delivered"]


def test_the_same_request_again_is_accepted_as_a_retry(client, mailgun_signing_key):
    body = json.dumps(p.mailgun_event(token="tok-retry"))
    assert p.post_json(client, MAILGUN, body).status_code == 200
    assert p.post_json(client, MAILGUN, body).status_code == 200
    assert RawDeliveryEvent.objects.count() == 2  # deduplicated on normalisation


@pytest.mark.parametrize("age", [301, -301, 86400 * 400])
def test_a_signature_outside_the_tolerance_is_refused(client, mailgun_signing_key, age):
    stale = p.mailgun_event(signed_at=int(time.time()) - age)
    response = p.post_json(client, MAILGUN, stale)
    assert response.status_code == 403
    assert not RawDeliveryEvent.objects.exists()


def test_the_tolerance_is_a_setting(client, mailgun_signing_key, settings):
    settings.MAILGUN_WEBHOOK_TOLERANCE_SECONDS = 3600
    ten_minutes_old = p.mailgun_event(signed_at=int(time.time()) - 600)
    assert p.post_json(client, MAILGUN, ten_minutes_old).status_code == 200


def test_a_forged_signature_does_not_use_up_the_token(client, mailgun_signing_key):
    forged = p.mailgun_event(token="tok-x", key="guessed")
    assert p.post_json(client, MAILGUN, forged).status_code == 403
    real = p.mailgun_event(token="tok-x")
    assert p.post_json(client, MAILGUN, real).status_code == 200
