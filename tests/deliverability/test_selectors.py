"""Rates per hour and day, per account / campaign / broadcast, computed in SQL."""

from datetime import UTC, datetime, timedelta

import pytest

from deliverability import selectors, thresholds
from deliverability.selectors import EventFilters

from .helpers import add_events

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_totals_and_rates_for_a_window():
    add_events("delivered", 970, T0)
    add_events("bounced_hard", 20, T0)
    add_events("bounced_soft", 10, T0)
    add_events("complained", 4, T0)
    add_events("unsubscribed", 3, T0)
    add_events("deferred", 50, T0)
    add_events("rejected", 7, T0)
    add_events("opened", 300, T0)
    add_events("delivered", 500, T0 - timedelta(days=2))  # outside the window
    totals = selectors.delivery_totals(start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1))
    assert (totals["sent"], totals["delivered"], totals["deferred"], totals["rejected"]) == (
        1000, 970, 50, 7)
    assert totals["bounce_rate"] == pytest.approx(0.03)
    assert totals["hard_bounce_rate"] == pytest.approx(0.02)
    assert totals["complaint_rate"] == pytest.approx(4 / 970)
    assert totals["unsubscribe_rate"] == pytest.approx(3 / 970)
    assert totals["delivered_rate"] == pytest.approx(0.97)


def test_empty_window_has_no_rates_rather_than_zero():
    totals = selectors.delivery_totals(start=T0, end=T0 + timedelta(days=1))
    assert totals["sent"] == 0 and totals["bounce_rate"] is None


def test_hourly_series_per_esp_account_in_one_query(django_assert_num_queries):
    add_events("delivered", 99, T0, esp_account="eu")
    add_events("complained", 1, T0 + timedelta(minutes=30), esp_account="eu")
    add_events("delivered", 10, T0 + timedelta(hours=1), esp_account="us")
    add_events("bounced_hard", 10, T0 + timedelta(hours=1, minutes=5), esp_account="us")
    with django_assert_num_queries(1):
        rows = selectors.delivery_series(start=T0, end=T0 + timedelta(hours=3), bucket="hour",
                                         group_by=("esp_account",))
    assert [(r["bucket"], r["esp_account"], r["sent"]) for r in rows] == [
        (T0, "eu", 99), (T0 + timedelta(hours=1), "us", 20)]
    assert rows[0]["complaint_rate"] == pytest.approx(1 / 99)
    assert rows[1]["bounce_rate"] == pytest.approx(0.5)


def test_daily_series_filtered_by_broadcast_and_campaign():
    add_events("delivered", 10, T0, broadcast_id=7, campaign_key="spring")
    add_events("bounced_hard", 10, T0, broadcast_id=8, campaign_key="spring")
    add_events("delivered", 5, T0 + timedelta(days=1), broadcast_id=7, campaign_key="autumn")
    rows = selectors.delivery_series(start=T0 - timedelta(days=1), end=T0 + timedelta(days=3),
                                     bucket="day", filters=EventFilters(broadcast_ids=(7,)))
    assert [(r["bucket"].day, r["delivered"]) for r in rows] == [(20, 10), (21, 5)]
    rows = selectors.delivery_series(start=T0 - timedelta(days=1), end=T0 + timedelta(days=3),
                                     bucket="day", filters=EventFilters(campaign_keys=("spring",)),
                                     group_by=("broadcast",))
    assert [(r["broadcast_id"], r["sent"]) for r in rows] == [(7, 10), (8, 10)]


def test_thresholds_cross_only_with_enough_volume():
    preset = thresholds.preset("mailbox_providers")
    quiet = {"complaint_rate": 0.5, "delivered": 2, "sent": 2, "bounce_rate": 0.0}
    assert thresholds.crossed(preset, quiet) == []
    loud = {"complaint_rate": 0.0035, "delivered": 2000, "sent": 2100, "bounce_rate": 0.021}
    assert {t.key for t in thresholds.crossed(preset, loud)} == {
        "complaint_rate:warning", "complaint_rate:critical", "bounce_rate:warning"}


def test_every_preset_names_known_metrics_and_a_source():
    for name, preset in thresholds.PRESETS.items():
        for t in preset:
            assert t.metric in selectors.RATES, name
            assert t.source, name
            assert 0 < t.limit < 1
    with pytest.raises(ValueError, match="unknown threshold preset 'nope'"):
        thresholds.preset("nope")


def _mail_world():
    from audiences.models import Subscriber
    from messaging.models import Broadcast, Campaign, CampaignRecipient, EspAccount

    account = EspAccount.objects.create(provider="sandbox", label="Main")
    faulty = Campaign.objects.create(esp_account=account, esp_campaign_id="spring-vip",
                                     name="Spring VIP")
    other = Campaign.objects.create(esp_account=account, esp_campaign_id="newsletter",
                                    name="Newsletter")
    ann = Subscriber.objects.create(email="ann@example.com")
    CampaignRecipient.objects.create(campaign=faulty, subscriber=ann, sent_at=T0,
                                     esp_message_id="<msg-ann@esp>")
    apology = Broadcast.objects.create(source_ref="incident:1", subject="Sorry",
                                       from_email="hello@brand.example", default_locale="en",
                                       provider="sandbox")
    return faulty, other, apology


def test_mail_of_matches_broadcasts_campaign_keys_and_send_log_message_ids():
    from deliverability.selectors import MailOf

    faulty, other, apology = _mail_world()
    at = T0 + timedelta(hours=1)
    add_events("complained", 1, at, message_id="<msg-ann@esp>")  # found by the send log
    add_events("delivered", 2, at, campaign_key="spring-vip")  # our metadata
    add_events("bounced_hard", 3, at, broadcast_id=apology.pk)  # the apology
    add_events("delivered", 50, at, campaign_key="newsletter")  # someone else's mail
    add_events("complained", 7, at)  # unattributed account traffic
    window = {"start": T0, "end": T0 + timedelta(days=1)}

    own = selectors.delivery_totals(**window, filters=EventFilters(mail_of=MailOf(
        campaign_ids=(faulty.pk,), broadcast_ids=(apology.pk,))))
    assert (own["complained"], own["delivered"], own["bounced_hard"]) == (1, 2, 3)
    campaign_only = selectors.delivery_totals(**window, filters=EventFilters(
        mail_of=MailOf(campaign_ids=(faulty.pk,))))
    assert (campaign_only["complained"], campaign_only["delivered"],
            campaign_only["bounced_hard"]) == (1, 2, 0)
    nothing = selectors.delivery_totals(**window, filters=EventFilters(mail_of=MailOf()))
    assert nothing["sent"] == 0 and nothing["complaint_rate"] is None
    everything = selectors.delivery_totals(**window)
    assert everything["delivered"] == 52 and everything["complained"] == 8


def test_percent_is_rounded_not_truncated():
    from deliverability.charts import _percent
    from deliverability.templatetags.deliverability import percent

    assert percent(0.004565) == "0.46 %"
    assert percent(0.00125) == "0.13 %"
    assert percent(0.0042) == "0.42 %"
    assert percent(0.5, 0) == "50 %"
    assert percent(None) == "—"
    assert _percent(0.004565) == "0.46 %"
