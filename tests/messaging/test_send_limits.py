"""Send rate and batch size come from the ESP account (issue 13): each ESP's documented
per-call maximum and default rate, the account's own limits (admin-editable, validated),
the send form that may lower them but never exceed them, and the confirmation's estimate."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from incidents.apology.send import apology_send_limits, apology_send_start
from messaging.esp.registry import send_limits
from messaging.models import Broadcast, EspAccount
from messaging.selectors import (
    account_send_limits,
    send_duration,
    send_estimate,
    send_settings_within,
)
from tests.messaging.send_world import sendable_incident

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("provider", "per_call"), [
    ("sandbox", 1000), ("postmark", 500), ("sendgrid", 1000), ("mailgun", 1000),
    ("sparkpost", 1000), ("ses", 50), ("brevo", 1000), ("mailjet", 50), ("mandrill", 1000)])
def test_every_sending_esp_declares_its_per_call_maximum_and_a_rate(provider, per_call):
    limits = send_limits(provider)
    assert limits.max_per_call == per_call
    assert limits.default_rate >= 14  # SES's documented starting quota is the lowest


def test_control_only_esps_have_no_sending_limits():
    assert send_limits("mailchimp") is None
    assert send_limits("klaviyo") is None


def test_the_sandbox_default_is_not_a_200_a_second_constant():
    limits = account_send_limits(None)
    assert (limits.rate_per_second, limits.batch_size) == (5000, 1000)


def test_an_account_stores_its_real_limits_within_what_the_esp_takes():
    account = EspAccount(label="SES EU", provider="ses", rate_per_second=200, batch_size=50)
    account.full_clean()
    limits = account_send_limits(account)
    assert (limits.rate_per_second, limits.batch_size) == (200, 50)
    account.batch_size = 51
    with pytest.raises(ValidationError) as caught:
        account.full_clean()
    assert caught.value.message_dict["batch_size"] == [
        "Amazon SES takes at most 50 messages in one call; 51 is more."]


def test_an_account_without_limits_uses_the_esps_defaults():
    limits = account_send_limits(EspAccount(label="PM", provider="postmark"))
    assert (limits.rate_per_second, limits.batch_size) == (5000, 500)


def test_limits_on_an_esp_amends_does_not_send_through_are_refused():
    account = EspAccount(label="MC", provider="mailchimp", rate_per_second=10)
    with pytest.raises(ValidationError, match="does not send mail through Mailchimp"):
        account.full_clean()
    with pytest.raises(ValidationError, match="is not an ESP Amends knows"):
        EspAccount(label="X", provider="sendmail").full_clean()


def test_a_send_may_lower_the_limits_never_exceed_them():
    limits = account_send_limits(EspAccount(label="SG", provider="sendgrid",
                                            rate_per_second=3000))
    assert send_settings_within(limits=limits) == (3000, 1000)
    assert send_settings_within(limits=limits, rate_per_second=100, batch_size=10) == (100, 10)
    with pytest.raises(ValidationError) as caught:
        send_settings_within(limits=limits, rate_per_second=3001, batch_size=1001)
    assert caught.value.message_dict == {
        "rate_per_second": ["The rate must be between 1 and 3,000 messages a second, the "
                            "limit of SG."],
        "batch_size": ["The batch size must be between 1 and 1,000 messages a call, the "
                       "limit of SG."]}


def test_the_estimate_reads_like_the_confirmation():
    limits = account_send_limits(None)
    assert send_estimate(1_000_000, limits) == "1,000,000 people at 5,000/s: about 3 min 20 s"
    assert send_duration(10, 200) == "about 1 s"
    assert send_duration(100_000_000, 14) == "about 1984 h 7 min"


def test_the_apology_uses_the_incident_accounts_limits(marketer):
    world = sendable_incident(marketer, 6)
    EspAccount.objects.filter(label="Sandbox").update(rate_per_second=1200, batch_size=400)
    assert apology_send_limits(incident=world.incident).rate_per_second == 1200
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    assert (broadcast.rate_per_second, broadcast.batch_size) == (1200, 400)


def test_the_send_form_refuses_more_than_the_account_allows(client, marketer):
    world = sendable_incident(marketer, 6)
    EspAccount.objects.filter(label="Sandbox").update(rate_per_second=1200)
    client.force_login(marketer)
    page = client.get(reverse("incidents:incident-detail", args=[world.incident.pk]))
    html = page.content.decode()
    assert "6 people at 1,200/s: about 1 s" in html
    assert 'name="rate_per_second" min="1" max="1200" value="1200"' in html
    response = client.post(reverse("incidents:apology-send", args=[world.incident.pk]),
                           {"confirm": "on", "expected_count": 6, "rate_per_second": 5000},
                           follow=True)
    assert "The rate must be between 1 and 1,200 messages a second, the limit of Sandbox." \
        in response.content.decode()
    assert not Broadcast.objects.exists()
    client.post(reverse("incidents:apology-send", args=[world.incident.pk]),
                {"confirm": "on", "expected_count": 6, "rate_per_second": 300,
                 "batch_size": 2})
    broadcast = Broadcast.objects.get()
    assert (broadcast.rate_per_second, broadcast.batch_size) == (300, 2)


def test_an_admin_edits_the_limits_and_is_told_the_esps_maximum(client, admin_user):
    account = EspAccount.objects.create(label="Mailjet", provider="mailjet")
    client.force_login(admin_user)
    change = reverse("admin:messaging_espaccount_change", args=[account.pk])
    page = client.get(change).content.decode()
    assert "At most 50 messages a call" in page
    response = client.post(change, {"label": "Mailjet", "provider": "mailjet",
                                    "rate_per_second": "800", "batch_size": "60"})
    assert "Mailjet takes at most 50 messages in one call; 60 is more." \
        in response.content.decode()
    client.post(change, {"label": "Mailjet", "provider": "mailjet", "rate_per_second": "800",
                         "batch_size": "50"})
    account.refresh_from_db()
    assert (account.rate_per_second, account.batch_size) == (800, 50)
