from datetime import UTC, datetime, timedelta

import pytest

from messaging.esp.base import ControlAction, EspNotSupported, EspTemporaryError, StopAction
from messaging.esp.sendgrid import SendGridAdapter

from .helpers import quick

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def adapter(sendgrid_esp):
    sendgrid_esp.now = lambda: NOW
    _sleep, opts = quick(now=lambda: NOW)
    return SendGridAdapter(api_key=sendgrid_esp.api_key, base_url=sendgrid_esp.url, **opts)


def test_pause_posts_a_scheduled_send_with_bearer_auth(adapter, sendgrid_esp):
    sendgrid_esp.add_batch("b1", send_at=NOW + timedelta(hours=1))
    result = adapter.pause_campaign("b1", send_at=NOW + timedelta(hours=1))
    assert result.ok and result.action == ControlAction.PAUSE and result.http_status == 201
    post = sendgrid_esp.calls_to("POST", "/v3/user/scheduled_sends")[0]
    assert post.json == {"batch_id": "b1", "status": "pause"}
    assert post.header("Authorization") == f"Bearer {sendgrid_esp.api_key}"
    assert sendgrid_esp.scheduled_sends == {"b1": "pause"}


def test_cancel_after_pause_patches_the_existing_status(adapter, sendgrid_esp):
    sendgrid_esp.add_batch("b1")
    adapter.pause_campaign("b1")
    result = adapter.cancel_campaign("b1")
    assert result.ok and result.http_status == 204
    patch = sendgrid_esp.calls_to("PATCH", "/v3/user/scheduled_sends/b1")[0]
    assert patch.json == {"status": "cancel"}
    assert sendgrid_esp.scheduled_sends == {"b1": "cancel"}


def test_resume_deletes_the_pause(adapter, sendgrid_esp):
    sendgrid_esp.add_batch("b1")
    adapter.pause_campaign("b1")
    assert adapter.resume_campaign("b1").ok
    assert sendgrid_esp.calls_to("DELETE", "/v3/user/scheduled_sends/b1")
    assert sendgrid_esp.scheduled_sends == {}


def test_pausing_twice_is_harmless(adapter, sendgrid_esp):
    sendgrid_esp.add_batch("b1")
    adapter.pause_campaign("b1")
    result = adapter.pause_campaign("b1")
    assert result.ok and "already" in result.detail
    assert len(sendgrid_esp.calls_to("POST", "/v3/user/scheduled_sends")) == 1


def test_a_live_send_cannot_be_stopped(adapter, sendgrid_esp):
    with pytest.raises(EspNotSupported, match="10 minutes"):
        adapter.pause_campaign("b1", send_at=NOW + timedelta(minutes=9))
    with pytest.raises(EspNotSupported, match="already running"):
        adapter.stop_campaign("b1", send_at=NOW - timedelta(minutes=1))
    assert sendgrid_esp.calls == []


def test_sendgrid_refusal_is_recorded_with_its_words(adapter, sendgrid_esp):
    # send_at unknown to us, but SendGrid knows it is too late
    sendgrid_esp.add_batch("b2", send_at=NOW + timedelta(minutes=5))
    result = adapter.pause_campaign("b2")
    assert not result.ok and result.http_status == 400
    assert "batch_id: cannot pause or cancel a batch later than 10 minutes" in result.detail


def test_unknown_batch_id(adapter, sendgrid_esp):
    result = adapter.cancel_campaign("nope")
    assert not result.ok and "invalid batch id" in result.detail


def test_retries_then_gives_up(adapter, sendgrid_esp):
    sendgrid_esp.add_batch("b1")
    sendgrid_esp.fail_next(429, retry_after="0", paths="scheduled_sends$")
    assert adapter.pause_campaign("b1").ok
    sendgrid_esp.fail_next(500, times=5)
    with pytest.raises(EspTemporaryError):
        adapter.cancel_campaign("b1")


def test_capabilities(adapter):
    caps = adapter.capabilities
    assert not caps.can_stop_live_send and caps.can_pause_scheduled and caps.can_resume
    assert caps.stop_action == StopAction.PAUSE
    assert str(caps.explanation) == (
        "SendGrid can pause or cancel only a scheduled send, up to 10 minutes before it "
        "starts; a send already running cannot be stopped through its API.")
