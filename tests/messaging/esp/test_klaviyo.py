import pytest

from messaging.esp.base import ControlAction, EspNotSupported, EspTemporaryError, StopAction
from messaging.esp.klaviyo import KlaviyoAdapter

from .helpers import quick


@pytest.fixture
def adapter(klaviyo_esp):
    _sleep, opts = quick()
    return KlaviyoAdapter(api_key=klaviyo_esp.api_key, base_url=klaviyo_esp.url, **opts)


def test_stop_cancels_a_running_send_with_a_json_api_body(adapter, klaviyo_esp):
    klaviyo_esp.add_campaign("01J")
    result = adapter.stop_campaign("01J")
    assert result.ok and result.action == ControlAction.CANCEL and result.esp_status == "CANCELED"
    call = klaviyo_esp.calls[0]
    assert (call.method, call.path) == ("PATCH", "/api/campaign-send-jobs/01J")
    assert call.json == {"data": {"type": "campaign-send-job", "id": "01J",
                                  "attributes": {"action": "cancel"}}}
    assert call.header("Authorization") == f"Klaviyo-API-Key {klaviyo_esp.api_key}"
    assert call.header("revision") and call.header("Content-Type") == "application/vnd.api+json"


def test_pause_reverts_to_draft(adapter, klaviyo_esp):
    klaviyo_esp.add_campaign("01J")
    assert adapter.pause_campaign("01J").ok and klaviyo_esp.campaigns["01J"] == "Draft"


def test_a_campaign_that_is_not_sending_is_a_recorded_failure(adapter, klaviyo_esp):
    klaviyo_esp.add_campaign("01J", status="Sent")
    result = adapter.cancel_campaign("01J")
    assert not result.ok and result.http_status == 400
    assert result.detail == "Klaviyo refused (400): Invalid input: The campaign is not sending."


def test_retry_after_is_honoured(klaviyo_esp):
    sleep, opts = quick()
    adapter = KlaviyoAdapter(api_key=klaviyo_esp.api_key, base_url=klaviyo_esp.url, **opts)
    klaviyo_esp.add_campaign("01J")
    klaviyo_esp.fail_next(429, retry_after="4")
    assert adapter.cancel_campaign("01J").ok and sleep.delays == [4.0]
    klaviyo_esp.add_campaign("02K")
    klaviyo_esp.fail_next(503, times=5)
    with pytest.raises(EspTemporaryError):
        adapter.cancel_campaign("02K")


def test_capabilities_and_no_resume(adapter):
    assert adapter.capabilities.can_stop_live_send
    assert adapter.capabilities.stop_action == StopAction.CANCEL
    with pytest.raises(EspNotSupported):
        adapter.resume_campaign("x")
