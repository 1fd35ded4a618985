import base64

import pytest

from messaging.esp.base import ControlAction, EspNotSupported, EspTemporaryError, StopAction
from messaging.esp.mailchimp import MailchimpAdapter, base_url_for_key

from .helpers import quick


@pytest.fixture
def adapter(mailchimp_esp):
    _sleep, opts = quick()
    return MailchimpAdapter(api_key=mailchimp_esp.api_key, base_url=mailchimp_esp.url, **opts)


def test_datacenter_comes_from_the_key_suffix():
    assert base_url_for_key("abc123-us21") == "https://us21.api.mailchimp.com"
    with pytest.raises(ValueError, match="data centre"):
        base_url_for_key("no-datacentre-")


def test_cancel_stops_a_sending_campaign_and_reports_what_was_sent(adapter, mailchimp_esp):
    mailchimp_esp.add_campaign("c1", status="sending", emails_sent=1234)
    result = adapter.cancel_campaign("c1")
    assert result.ok and result.action == ControlAction.CANCEL
    assert result.recipients_sent_before_stop == 1234 and result.esp_status == "sending"
    assert "cancelled the send" in result.detail
    methods_paths = [(c.method, c.path) for c in mailchimp_esp.calls]
    assert methods_paths == [("GET", "/3.0/campaigns/c1"),
                             ("POST", "/3.0/campaigns/c1/actions/cancel-send"),
                             ("GET", "/3.0/campaigns/c1")]
    auth = mailchimp_esp.calls[1].header("Authorization")
    assert base64.b64decode(auth.removeprefix("Basic ")).decode().endswith(
        ":" + mailchimp_esp.api_key)
    assert mailchimp_esp.campaigns["c1"]["status"] == "canceled"


def test_stop_on_mailchimp_cancels(adapter, mailchimp_esp):
    assert adapter.capabilities.stop_action == StopAction.CANCEL
    mailchimp_esp.add_campaign("c1", status="sending")
    assert adapter.stop_campaign("c1").action == ControlAction.CANCEL


def test_a_scheduled_campaign_is_unscheduled(adapter, mailchimp_esp):
    mailchimp_esp.add_campaign("c2", status="schedule")
    result = adapter.pause_campaign("c2")
    assert result.ok and result.recipients_sent_before_stop == 0
    assert mailchimp_esp.calls_to("POST", "/3.0/campaigns/c2/actions/unschedule")
    assert mailchimp_esp.campaigns["c2"]["status"] == "save"


def test_pausing_a_regular_sending_campaign_is_not_possible(adapter, mailchimp_esp):
    mailchimp_esp.add_campaign("c3", status="sending")
    with pytest.raises(EspNotSupported, match="only cancel"):
        adapter.pause_campaign("c3")
    assert not mailchimp_esp.calls_to("POST", ".*")


def test_rss_campaigns_pause_and_resume(adapter, mailchimp_esp):
    mailchimp_esp.add_campaign("rss1", status="sending", type="rss")
    assert adapter.pause_campaign("rss1").ok
    assert mailchimp_esp.campaigns["rss1"]["status"] == "paused"
    assert adapter.resume_campaign("rss1").ok
    assert mailchimp_esp.campaigns["rss1"]["status"] == "sending"


def test_resume_of_a_regular_campaign_says_what_to_do(adapter, mailchimp_esp):
    mailchimp_esp.add_campaign("c4", status="save")
    with pytest.raises(EspNotSupported, match="schedule this campaign again"):
        adapter.resume_campaign("c4")


def test_mailchimp_400_comes_back_as_a_recorded_failure(adapter, mailchimp_esp):
    # Mailchimp reads "sending" but the campaign finished meanwhile: the API answers 400.
    mailchimp_esp.add_campaign("c5", status="sending", type="variate")
    result = adapter.cancel_campaign("c5")
    assert not result.ok and result.http_status == 400
    assert "Mailchimp refused (400): Bad Request — This campaign cannot be canceled" \
        in result.detail


def test_already_sent_campaign_has_nothing_to_stop(adapter, mailchimp_esp):
    mailchimp_esp.add_campaign("c6", status="sent", emails_sent=50)
    result = adapter.cancel_campaign("c6")
    assert not result.ok and "no send left to stop" in result.detail
    assert result.recipients_sent_before_stop == 50


def test_already_stopped_campaign_is_fine(adapter, mailchimp_esp):
    mailchimp_esp.add_campaign("c7", status="canceled")
    result = adapter.cancel_campaign("c7")
    assert result.ok and "Nothing to do" in result.detail


def test_wrong_key_is_a_clear_error(mailchimp_esp):
    _sleep, opts = quick()
    adapter = MailchimpAdapter(api_key="wrong-us21", base_url=mailchimp_esp.url, **opts)
    mailchimp_esp.add_campaign("c1")
    result = adapter.cancel_campaign("c1")
    assert not result.ok and result.http_status == 401
    assert "API Key Invalid" in result.detail


def test_unknown_campaign_is_a_recorded_failure(adapter):
    result = adapter.pause_campaign("nope")
    assert not result.ok and result.http_status == 404
    assert result.detail == ("Mailchimp refused to show campaign nope (404): Resource Not "
                             "Found — The requested resource could not be found.")


def test_429_and_5xx_are_retried(adapter, mailchimp_esp):
    mailchimp_esp.add_campaign("c1", status="sending")
    mailchimp_esp.fail_next(429, retry_after="1", paths="cancel-send")
    mailchimp_esp.fail_next(502)
    assert adapter.cancel_campaign("c1").ok
    assert [c.status for c in mailchimp_esp.calls] == [502, 200, 429, 204, 200]


def test_gives_up_with_temporary_error(adapter, mailchimp_esp):
    mailchimp_esp.add_campaign("c1", status="sending")
    mailchimp_esp.fail_next(503, times=5)
    with pytest.raises(EspTemporaryError, match="still failing after 5 attempts"):
        adapter.cancel_campaign("c1")


def test_capabilities_say_it_in_words(adapter):
    caps = adapter.capabilities
    assert caps.can_stop_live_send and not caps.can_resume
    assert "Only RSS campaigns can be paused" in str(caps.explanation)
