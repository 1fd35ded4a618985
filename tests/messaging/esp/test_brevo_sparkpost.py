import pytest

from messaging.esp.base import ControlAction, EspNotSupported, EspTemporaryError, StopAction
from messaging.esp.brevo import BrevoAdapter
from messaging.esp.sparkpost import SparkPostAdapter

from .helpers import quick


@pytest.fixture
def brevo(brevo_esp):
    _sleep, opts = quick()
    return BrevoAdapter(api_key=brevo_esp.api_key, base_url=brevo_esp.url, **opts)


@pytest.fixture
def sparkpost(sparkpost_esp):
    _sleep, opts = quick()
    return SparkPostAdapter(api_key=sparkpost_esp.api_key, base_url=sparkpost_esp.url, **opts)


def test_brevo_pause_suspends_with_api_key_header(brevo, brevo_esp):
    brevo_esp.add_campaign(42)
    result = brevo.stop_campaign("42")
    assert result.ok and result.action == ControlAction.PAUSE and result.http_status == 204
    call = brevo_esp.calls[0]
    assert (call.method, call.path, call.json) == ("PUT", "/v3/emailCampaigns/42/status",
                                                   {"status": "suspended"})
    assert call.header("api-key") == brevo_esp.api_key
    assert brevo_esp.campaigns["42"] == "suspended"


def test_brevo_cancel(brevo, brevo_esp):
    brevo_esp.add_campaign(42)
    assert brevo.cancel_campaign("42").ok and brevo_esp.campaigns["42"] == "cancel"


def test_brevo_unknown_campaign_is_a_recorded_failure(brevo, brevo_esp):
    result = brevo.pause_campaign("7")
    assert not result.ok and result.http_status == 404
    assert result.detail == "Brevo refused (404): document_not_found: Campaign ID does not exist"


def test_brevo_cannot_resume(brevo):
    with pytest.raises(EspNotSupported, match="schedule it again in Brevo"):
        brevo.resume_campaign("42")


def test_brevo_rejects_non_numeric_ids(brevo):
    with pytest.raises(ValueError, match="numbers"):
        brevo.pause_campaign("abc")


def test_brevo_retries_429(brevo, brevo_esp):
    brevo_esp.add_campaign(42)
    brevo_esp.fail_next(429, retry_after="0", times=2)
    assert brevo.pause_campaign("42").ok
    assert [c.status for c in brevo_esp.calls] == [429, 429, 204]


def test_sparkpost_cancel_deletes_scheduled_transmissions_by_campaign(sparkpost, sparkpost_esp):
    sparkpost_esp.add_scheduled("spring-sale", 3)
    result = sparkpost.stop_campaign("spring-sale")
    assert result.ok and result.action == ControlAction.CANCEL and result.http_status == 204
    call = sparkpost_esp.calls[0]
    assert (call.method, call.path, call.query) == ("DELETE", "/api/v1/transmissions",
                                                    {"campaign_id": ["spring-sale"]})
    assert call.header("Authorization") == sparkpost_esp.api_key
    assert sparkpost_esp.deleted["spring-sale"] == 3


def test_sparkpost_has_no_pause(sparkpost):
    assert sparkpost.capabilities.stop_action == StopAction.CANCEL
    with pytest.raises(EspNotSupported, match="cannot pause or resume"):
        sparkpost.pause_campaign("x")


def test_sparkpost_gives_up_after_5xx(sparkpost, sparkpost_esp):
    sparkpost_esp.fail_next(500, times=5)
    with pytest.raises(EspTemporaryError) as info:
        sparkpost.cancel_campaign("x")
    assert info.value.attempts == 5


def test_sparkpost_wrong_key(sparkpost_esp):
    _sleep, opts = quick()
    adapter = SparkPostAdapter(api_key="bad", base_url=sparkpost_esp.url, **opts)
    result = adapter.cancel_campaign("x")
    assert not result.ok and result.detail == "SparkPost refused (401): Unauthorized."
