"""The pause flag is read again before the last byte of each ESP request
(broadcasts.PauseAwareSession): a pause committed while a call's body was on its way stops
that call whole, against a real loopback HTTP server."""

import json

import pytest
from django.db import connection

from messaging import broadcasts
from messaging.models import Broadcast, BroadcastStatus
from tests.loopback.esps import PostmarkLoopback

pytestmark = pytest.mark.django_db

STATUS_LOOK = f"SELECT status FROM {broadcasts.B} WHERE id"


def broadcast() -> Broadcast:
    return Broadcast.objects.create(subject="s", from_email="care@example.test",
                                    default_locale="en", provider="postmark",
                                    status=BroadcastStatus.SENDING)


def post(session, esp, body: bytes):
    return session.post(f"{esp.url}/email/batch", data=body, headers={
        "X-Postmark-Server-Token": esp.server_token, "Content-Type": "application/json"})


def paused_at_look(number: int):
    """A query wrapper that pauses the broadcast (committed for this session) just before
    the `number`th look at its status: the moment a person clicks Pause."""
    looks = []

    def wrapper(execute, sql, params, many, context):
        if sql.startswith(STATUS_LOOK):
            looks.append(sql)
            if len(looks) == number:
                Broadcast.objects.filter(pk=params[0]).update(status=BroadcastStatus.PAUSED)
        return execute(sql, params, many, context)

    return wrapper, looks


@pytest.fixture
def sending():
    b = broadcast()
    token = broadcasts._sending.set(b.pk)
    yield b
    broadcasts._sending.reset(token)


def message_body() -> bytes:
    return json.dumps([{"From": "care@example.test", "To": "p@example.test",
                        "Subject": "Sorry", "TextBody": "x" * 5000}]).encode()


def test_a_pause_during_the_body_stops_the_call_before_its_last_byte(sending):
    with PostmarkLoopback() as esp:
        wrapper, looks = paused_at_look(2)  # after the look before sending: mid-body
        with connection.execute_wrapper(wrapper), pytest.raises(broadcasts.BroadcastHalted):
            post(broadcasts.PauseAwareSession(), esp, message_body())
        assert len(looks) == 2
        assert esp.deliveries == [] and esp.calls_to("POST", "/email/batch") == []


def test_a_call_with_no_pause_goes_out_whole(sending):
    with PostmarkLoopback() as esp:
        wrapper, looks = paused_at_look(99)
        with connection.execute_wrapper(wrapper):
            response = post(broadcasts.PauseAwareSession(), esp, message_body())
        assert response.status_code == 200 and len(looks) == 2  # before, and before the end
        assert [d.recipient for d in esp.deliveries] == ["p@example.test"]
