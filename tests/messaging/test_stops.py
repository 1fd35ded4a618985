"""Stopping one campaign at its ESP: accounts from the environment, the service against
loopback ESPs, retries, and the task."""

import logging
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from messaging.esp.accounts import account_key, esp_accounts_from_env
from messaging.esp.base import EspTemporaryError
from messaging.esp.brevo import BrevoAdapter
from messaging.esp.mailchimp import MailchimpAdapter
from messaging.esp.sandbox import SandboxAdapter
from messaging.models import Campaign, CampaignStatus, CampaignStop, EspAccount, StopOutcome
from messaging.signals import campaign_stop_settled
from messaging.stops import campaign_stop_execute, esp_adapter_for
from messaging.tasks import _countdown, campaign_stop_run

# --- Accounts from the environment -------------------------------------------------------

def test_account_key_is_the_label_in_capitals():
    assert account_key("Mailchimp EU") == "MAILCHIMP_EU"
    assert account_key("  sendgrid / marketing-2 ") == "SENDGRID_MARKETING_2"


def test_accounts_come_from_json_or_one_variable_per_option(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file-us21\n")
    env = {
        "AMENDS_ESP_ACCOUNTS": '{"Mailchimp EU": {"api_key": "k-us21"}, '
                               '"Brevo": {"api_key": "b"}}',
        "AMENDS_ESP_ACCOUNT_MAILCHIMP_EU_BASE_URL": "http://127.0.0.1:9",
        "AMENDS_ESP_ACCOUNT_POSTMARK_TX_SERVER_TOKEN": "pm",
        "AMENDS_ESP_ACCOUNT_OTHER_API_KEY_FILE": str(key_file),
        "AMENDS_ESP_MAX_ATTEMPTS": "3",  # adapter-wide setting, not an account
    }
    assert esp_accounts_from_env(env) == {
        "MAILCHIMP_EU": {"api_key": "k-us21", "base_url": "http://127.0.0.1:9"},
        "BREVO": {"api_key": "b"},
        "POSTMARK_TX": {"server_token": "pm"},
        "OTHER": {"api_key": "from-a-file-us21"},
    }
    assert esp_accounts_from_env({}) == {}


@pytest.mark.parametrize(("env", "message"), [
    ({"AMENDS_ESP_ACCOUNTS": "{nope"}, "AMENDS_ESP_ACCOUNTS is not valid JSON"),
    ({"AMENDS_ESP_ACCOUNTS": "[]"}, "must be a JSON object"),
    ({"AMENDS_ESP_ACCOUNTS": '{"x": "key"}'}, r"AMENDS_ESP_ACCOUNTS\['x'\]"),
    ({"AMENDS_ESP_ACCOUNT_X_PASSWORD": "p"}, "AMENDS_ESP_ACCOUNT_X_PASSWORD: expected"),
    ({"AMENDS_ESP_ACCOUNT_X_BASE_URL": "ftp://x"}, "ESP account X: base_url must start"),
    ({"AMENDS_ESP_ACCOUNT_X_API_KEY_FILE": "/nonexistent/key"},
     "AMENDS_ESP_ACCOUNT_X_API_KEY_FILE: cannot read"),
])
def test_a_malformed_account_variable_is_named(env, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        esp_accounts_from_env(env)


@pytest.mark.django_db
def test_adapter_for_an_account_uses_its_settings(settings, mailchimp_esp):
    settings.AMENDS_ESP_ACCOUNTS = {"MAILCHIMP_EU": {"api_key": mailchimp_esp.api_key,
                                                     "base_url": mailchimp_esp.url}}
    adapter = esp_adapter_for(EspAccount(label="Mailchimp EU", provider="mailchimp"))
    assert isinstance(adapter, MailchimpAdapter)
    assert adapter.client.base_url == mailchimp_esp.url


@pytest.mark.django_db
def test_the_sandbox_needs_no_credentials_and_a_real_esp_does(settings):
    settings.AMENDS_ESP_ACCOUNTS = {}
    assert isinstance(esp_adapter_for(EspAccount(label="Demo", provider="sandbox")),
                      SandboxAdapter)
    with pytest.raises(ValueError, match="AMENDS_ESP_ACCOUNT_BREVO_MAIN_API_KEY"):
        esp_adapter_for(EspAccount(label="Brevo main", provider="brevo"))


# --- One stop, against loopback ESPs -------------------------------------------------------

@pytest.fixture
def fast_retries(settings):
    settings.AMENDS_ESP = {**settings.AMENDS_ESP, "MAX_ATTEMPTS": 2, "BACKOFF_BASE": 0.0,
                           "BACKOFF_MAX": 0.0}


def make_stop(provider: str, label: str, ref: str, *, status=CampaignStatus.SENDING,
              **campaign) -> CampaignStop:
    account, _ = EspAccount.objects.get_or_create(label=label, defaults={"provider": provider})
    camp = Campaign.objects.create(esp_account=account, esp_campaign_id=ref, name=f"C {ref}",
                                   status=status, **campaign)
    return CampaignStop.objects.create(campaign=camp)


@pytest.fixture
def mailchimp(settings, mailchimp_esp, fast_retries):
    settings.AMENDS_ESP_ACCOUNTS = {"MAILCHIMP": {"api_key": mailchimp_esp.api_key,
                                                  "base_url": mailchimp_esp.url}}
    return mailchimp_esp


@pytest.fixture
def sendgrid(settings, sendgrid_esp, fast_retries):
    settings.AMENDS_ESP_ACCOUNTS = {"SENDGRID": {"api_key": sendgrid_esp.api_key,
                                                 "base_url": sendgrid_esp.url}}
    return sendgrid_esp


@pytest.fixture
def brevo(settings, brevo_esp, fast_retries):
    settings.AMENDS_ESP_ACCOUNTS = {"BREVO": {"api_key": brevo_esp.api_key,
                                              "base_url": brevo_esp.url}}
    return brevo_esp




@pytest.mark.django_db
def test_mailchimp_cancels_a_sending_campaign_and_records_what_went_out(mailchimp):
    mailchimp.add_campaign("mc1", status="sending", emails_sent=812)
    stop = make_stop("mailchimp", "Mailchimp", "mc1")
    seen = []
    campaign_stop_settled.connect(lambda sender, **kw: seen.append(kw), weak=False,
                                  dispatch_uid="test-seen")
    try:
        stop = campaign_stop_execute(stop_id=stop.pk)
    finally:
        campaign_stop_settled.disconnect(dispatch_uid="test-seen")
    assert stop.outcome == StopOutcome.STOPPED and stop.action == "cancel"
    assert stop.recipients_sent_before_stop == 812 and stop.http_status == 204
    assert "cancelled the send" in stop.detail and stop.attempts == 1
    assert stop.finished_at is not None
    assert Campaign.objects.get(pk=stop.campaign_id).status == CampaignStatus.CANCELLED
    assert mailchimp.campaigns["mc1"]["status"] == "canceled"
    assert len(mailchimp.calls_to("POST", r"/3\.0/campaigns/mc1/actions/cancel-send")) == 1
    assert [kw["stop"].pk for kw in seen] == [stop.pk]


@pytest.mark.django_db
def test_mailchimp_unschedules_a_scheduled_campaign(mailchimp):
    mailchimp.add_campaign("mc2", status="schedule")
    stop = make_stop("mailchimp", "Mailchimp", "mc2", status=CampaignStatus.SCHEDULED,
                     scheduled_at=timezone.now() + timedelta(hours=2))
    stop = campaign_stop_execute(stop_id=stop.pk)
    assert stop.outcome == StopOutcome.STOPPED and stop.recipients_sent_before_stop == 0
    assert "unscheduled" in stop.detail
    assert mailchimp.calls_to("POST", r"/3\.0/campaigns/mc2/actions/unschedule")
    assert mailchimp.campaigns["mc2"]["status"] == "save"


@pytest.mark.django_db
def test_sendgrid_cannot_stop_a_live_send_and_says_why_without_asking(sendgrid):
    stop = make_stop("sendgrid", "SendGrid", "batch-live",
                     started_at=timezone.now() - timedelta(minutes=3))
    stop = campaign_stop_execute(stop_id=stop.pk)
    assert stop.outcome == StopOutcome.NOT_POSSIBLE and stop.action == "none"
    assert "a send already running cannot be stopped" in stop.detail
    assert Campaign.objects.get(pk=stop.campaign_id).status == CampaignStatus.SENDING
    assert sendgrid.calls == []


@pytest.mark.django_db
def test_sendgrid_pauses_a_scheduled_batch(sendgrid):
    send_at = timezone.now() + timedelta(hours=1)
    sendgrid.add_batch("batch-later", send_at=send_at)
    stop = make_stop("sendgrid", "SendGrid", "batch-later", status=CampaignStatus.SCHEDULED,
                     scheduled_at=send_at)
    stop = campaign_stop_execute(stop_id=stop.pk)
    assert stop.outcome == StopOutcome.STOPPED and stop.action == "pause"
    assert stop.http_status == 201 and stop.recipients_sent_before_stop == 0
    assert sendgrid.scheduled_sends == {"batch-later": "pause"}
    assert Campaign.objects.get(pk=stop.campaign_id).status == CampaignStatus.PAUSED


@pytest.mark.django_db
def test_sendgrid_too_close_to_send_at_is_not_possible(sendgrid):
    send_at = timezone.now() + timedelta(minutes=4)
    sendgrid.add_batch("batch-soon", send_at=send_at)
    stop = make_stop("sendgrid", "SendGrid", "batch-soon", status=CampaignStatus.SCHEDULED,
                     scheduled_at=send_at)
    stop = campaign_stop_execute(stop_id=stop.pk)
    assert stop.outcome == StopOutcome.NOT_POSSIBLE
    assert "10 minutes" in stop.detail and sendgrid.calls == []


@pytest.mark.django_db
def test_brevo_suspends_a_sending_campaign(brevo):
    brevo.add_campaign(31, status="in_process")
    stop = campaign_stop_execute(stop_id=make_stop("brevo", "Brevo", "31").pk)
    assert stop.outcome == StopOutcome.STOPPED and stop.action == "pause"
    assert brevo.campaigns["31"] == "suspended" and stop.http_status == 204
    assert stop.recipients_sent_before_stop is None  # Brevo does not say


@pytest.mark.django_db
def test_an_esp_refusal_is_recorded_as_failed_with_its_words(brevo):
    stop = campaign_stop_execute(stop_id=make_stop("brevo", "Brevo", "404404").pk)
    assert stop.outcome == StopOutcome.FAILED and stop.http_status == 404
    assert "Campaign ID does not exist" in stop.detail
    assert Campaign.objects.get(pk=stop.campaign_id).status == CampaignStatus.SENDING


@pytest.mark.django_db
def test_missing_credentials_fail_the_stop_with_the_variable_to_set(settings):
    settings.AMENDS_ESP_ACCOUNTS = {}
    stop = campaign_stop_execute(stop_id=make_stop("brevo", "Brevo prod", "7").pk)
    assert stop.outcome == StopOutcome.FAILED
    assert "AMENDS_ESP_ACCOUNT_BREVO_PROD_API_KEY" in stop.detail


@pytest.mark.django_db
def test_the_sandbox_pauses_our_mirror_of_the_campaign(settings):
    ref = f"sbx-{uuid.uuid4().hex[:10]}"
    stop = campaign_stop_execute(stop_id=make_stop("sandbox", "Sandbox", ref).pk)
    assert stop.outcome == StopOutcome.STOPPED and stop.action == "pause"
    assert stop.recipients_sent_before_stop == 0  # our log of it has nobody yet
    assert esp_adapter_for(stop.campaign.esp_account).store.get_campaign(ref)["status"] \
        == "paused"


@pytest.mark.django_db
def test_a_claimed_stop_is_not_run_twice(brevo):
    brevo.add_campaign(5)
    stop = make_stop("brevo", "Brevo", "5")
    assert campaign_stop_execute(stop_id=stop.pk).outcome == StopOutcome.STOPPED
    assert campaign_stop_execute(stop_id=stop.pk) is None  # settled: nothing to do
    other = make_stop("brevo", "Brevo", "6")
    CampaignStop.objects.filter(pk=other.pk).update(outcome=StopOutcome.RUNNING,
                                                    claimed_at=timezone.now())
    assert campaign_stop_execute(stop_id=other.pk) is None  # another worker has it
    assert len(brevo.calls) == 1


@pytest.mark.django_db
def test_a_stop_held_by_a_dead_worker_is_claimed_again_after_the_lease(brevo):
    brevo.add_campaign(8)
    stop = make_stop("brevo", "Brevo", "8")
    CampaignStop.objects.filter(pk=stop.pk).update(
        outcome=StopOutcome.RUNNING, claimed_at=timezone.now() - timedelta(hours=1),
        attempts=1)
    stop = campaign_stop_execute(stop_id=stop.pk)
    assert stop.outcome == StopOutcome.STOPPED and stop.attempts == 2


# --- Temporary ESP trouble: retried in the client, then by the task ------------------------

@pytest.mark.django_db
def test_429_then_success_is_retried_within_one_attempt(brevo):
    brevo.add_campaign(11)
    brevo.fail_next(429, retry_after="0")
    stop = campaign_stop_execute(stop_id=make_stop("brevo", "Brevo", "11").pk)
    assert stop.outcome == StopOutcome.STOPPED and stop.attempts == 1
    assert [c.status for c in brevo.calls] == [429, 204]


@pytest.mark.django_db
def test_5xx_beyond_the_client_retries_goes_back_to_pending_for_the_task(brevo):
    brevo.add_campaign(12)
    brevo.fail_next(503, times=2)  # MAX_ATTEMPTS is 2 here
    stop = make_stop("brevo", "Brevo", "12")
    with pytest.raises(EspTemporaryError):
        campaign_stop_execute(stop_id=stop.pk, final_attempt=False)
    stop.refresh_from_db()
    assert stop.outcome == StopOutcome.PENDING and stop.http_status == 503
    assert "503" in stop.detail and stop.attempts == 1
    stop = campaign_stop_execute(stop_id=stop.pk, final_attempt=False)
    assert stop.outcome == StopOutcome.STOPPED and stop.attempts == 2


@pytest.mark.django_db
def test_the_last_attempt_records_the_failure(brevo):
    brevo.add_campaign(13)
    brevo.fail_next(500, times=2)
    stop = campaign_stop_execute(stop_id=make_stop("brevo", "Brevo", "13").pk,
                                 final_attempt=True)
    assert stop.outcome == StopOutcome.FAILED and stop.http_status == 500
    assert stop.detail.startswith("Gave up after 1 tries")


@pytest.mark.django_db
def test_the_task_retries_through_429s_and_5xx_until_the_esp_answers(mailchimp):
    """Eager run: each self.retry runs at once; the ESP fails 3 task attempts, then works."""
    mailchimp.add_campaign("mc9", status="sending", emails_sent=40)
    mailchimp.fail_next(429, times=2, retry_after="0")
    mailchimp.fail_next(503, times=2)
    mailchimp.fail_next(500, times=2)
    stop = make_stop("mailchimp", "Mailchimp", "mc9")
    campaign_stop_run.apply(args=[stop.pk])
    stop.refresh_from_db()
    assert stop.outcome == StopOutcome.STOPPED and stop.attempts == 4
    assert stop.recipients_sent_before_stop == 40
    assert [c.status for c in mailchimp.calls if c.fault] == [429, 429, 503, 503, 500, 500]


@pytest.mark.django_db
def test_the_task_gives_up_after_its_retries_and_records_it(brevo, monkeypatch):
    monkeypatch.setattr(campaign_stop_run, "max_retries", 1)
    brevo.add_campaign(14)
    brevo.set_faults(1.0, statuses=(503,))
    stop = make_stop("brevo", "Brevo", "14")
    campaign_stop_run.apply(args=[stop.pk])
    stop.refresh_from_db()
    assert stop.outcome == StopOutcome.FAILED and stop.attempts == 2
    assert "Gave up after 2 tries" in stop.detail


def test_the_task_waits_as_long_as_the_esp_asks():
    assert _countdown(EspTemporaryError("x", retry_after=90.0), 0) == 90.0
    assert _countdown(EspTemporaryError("x"), 0) == 5.0
    assert _countdown(EspTemporaryError("x"), 3) == 40.0
    assert _countdown(EspTemporaryError("x"), 20) == 300.0


@pytest.mark.django_db
def test_the_task_ignores_a_stop_that_is_gone(caplog):
    with caplog.at_level(logging.INFO, logger="messaging.tasks"):
        # throw=True: an exception inside the task fails this test instead of being kept
        # quietly in the eager result.
        result = campaign_stop_run.apply(args=[999_999], throw=True)
    assert result.successful() and result.result is None
    assert "campaign stop 999999: nothing to do" in caplog.text


def test_brevo_adapter_is_what_brevo_accounts_get(settings):
    settings.AMENDS_ESP_ACCOUNTS = {"BREVO": {"api_key": "k", "base_url": "http://127.0.0.1:1"}}
    assert isinstance(esp_adapter_for(EspAccount(label="Brevo", provider="brevo")),
                      BrevoAdapter)


@pytest.mark.django_db
def test_sparkpost_deletes_a_scheduled_campaigns_mail(settings, sparkpost_esp, fast_retries):
    settings.AMENDS_ESP_ACCOUNTS = {"SPARKPOST": {"api_key": sparkpost_esp.api_key,
                                                  "base_url": sparkpost_esp.url}}
    sparkpost_esp.add_scheduled("spring", count=3)
    stop = make_stop("sparkpost", "SparkPost", "spring", status=CampaignStatus.SCHEDULED,
                     scheduled_at=timezone.now() + timedelta(hours=1))
    stop = campaign_stop_execute(stop_id=stop.pk)
    assert stop.outcome == StopOutcome.STOPPED and stop.action == "cancel"
    assert sparkpost_esp.deleted == {"spring": 3}
    assert Campaign.objects.get(pk=stop.campaign_id).status == CampaignStatus.CANCELLED
