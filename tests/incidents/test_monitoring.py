"""Step 6: baseline vs post-incident window, threshold alerts, the war-room panel."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import EventKind, Incident, StakeholderRole
from incidents.monitoring import services as monitoring
from tests.deliverability.helpers import add_events
from tests.factories import declare

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(marketer):
    return declare(marketer)


def _bad_week(incident, *, complaints: int = 12) -> None:
    """A calm baseline, then a post-incident window with complaints and bounces."""
    before = incident.declared_at - timedelta(days=3)
    add_events("delivered", 3000, before)
    add_events("complained", 1, before)
    add_events("bounced_hard", 15, before)
    after = incident.declared_at  # the window starts at the declaration, inclusive
    add_events("delivered", 2000, after)
    add_events("complained", complaints, after)
    add_events("bounced_hard", 10, after)


def _alerts(incident):
    return list(incident.events.filter(kind=EventKind.ALERT, data__has_key="deliverability_alert"))


def test_crossing_thresholds_raises_one_alert_per_threshold_per_window(
        incident, django_capture_on_commit_callbacks):
    _bad_week(incident)  # 12 / 2000 = 0.6 % complaints; bounces 10 / 2010 = 0.5 %
    now = incident.declared_at + timedelta(hours=2)
    with django_capture_on_commit_callbacks() as callbacks:
        raised = monitoring.deliverability_check(incident=incident, now=now)
    assert sorted(e.data["deliverability_alert"].split("@")[0] for e in raised) == [
        "complaint_rate:critical", "complaint_rate:warning"]
    assert "0.60 %" in raised[0].message and "baseline 0.03 %" in raised[0].message
    # Each alert queues the generic stakeholder email and the deliverability owner's.
    assert len(callbacks) == 4
    # The same crossing later in the same window raises nothing new.
    add_events("complained", 5, incident.declared_at + timedelta(hours=1))
    assert monitoring.deliverability_check(incident=incident, now=now + timedelta(hours=1)) == []
    assert len(_alerts(incident)) == 2


def test_a_new_threshold_later_in_the_window_still_alerts(incident):
    _bad_week(incident, complaints=0)
    now = incident.declared_at + timedelta(hours=2)
    assert monitoring.deliverability_check(incident=incident, now=now) == []
    add_events("bounced_hard", 100, incident.declared_at + timedelta(hours=3))
    raised = monitoring.deliverability_check(incident=incident, now=now + timedelta(hours=2))
    assert [e.data["metric"] for e in raised] == ["bounce_rate", "bounce_rate"]


def test_events_before_the_incident_do_not_alert(incident):
    add_events("delivered", 1000, incident.declared_at - timedelta(days=1))
    add_events("complained", 50, incident.declared_at - timedelta(days=1))
    assert monitoring.deliverability_check(incident=incident) == []


def test_periodic_check_covers_open_incidents_in_their_window(incident, marketer):
    _bad_week(incident)
    closed = declare(marketer, title="Already closed")
    # (test setup: skip working six steps just to reach "closed")
    Incident.objects.filter(pk=closed.pk).update(closed_at=timezone.now())
    assert monitoring.deliverability_check_open_incidents(
        now=incident.declared_at + timedelta(hours=1)) == 2
    assert len(_alerts(incident)) == 2
    assert _alerts(closed) == []
    late = incident.declared_at + timedelta(days=60)
    assert monitoring.deliverability_check_open_incidents(now=late) == 0


def test_deliverability_owner_is_emailed(incident, marketer, deliverability_lead, manager,
                                         mailoutbox):
    step6 = incident.steps.get(number=6)
    services.step_assign_owner(step=step6, actor=marketer, owner=deliverability_lead)
    services.stakeholder_add(incident=incident, actor=marketer, user=manager,
                             role=StakeholderRole.DELIVERABILITY)
    _bad_week(incident)
    event = monitoring.deliverability_check(
        incident=incident, now=incident.declared_at + timedelta(hours=1))[0]
    assert monitoring.deliverability_alert_notify(event=event) == 2
    (mail,) = mailoutbox
    assert sorted(mail.to) == ["dana@example.test", "max@example.test"]
    assert "threshold was crossed" in mail.subject
    assert "Deliverability alert" in mail.body and "#step-6" in mail.body


def test_no_owner_no_email(incident, mailoutbox):
    _bad_week(incident)
    event = monitoring.deliverability_check(
        incident=incident, now=incident.declared_at + timedelta(hours=1))[0]
    assert monitoring.deliverability_alert_notify(event=event) == 0
    assert mailoutbox == []


# --- The panel -------------------------------------------------------------------------------

def test_panel_empty_state(client, incident, marketer):
    client.force_login(marketer)
    response = client.get(reverse("incidents:incident-detail", args=[incident.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Deliverability after the incident" in body
    assert "No delivery events yet" in body
    assert "Cautious-resume plan" in body
    assert body.count("<svg") == 0
    # Once, in step 6's card only.
    assert body.count("Deliverability after the incident") == 1


def test_panel_shows_rates_charts_window_and_plan(client, incident, manager):
    _bad_week(incident)
    client.force_login(manager)  # read-only roles see it too
    response = client.get(reverse("incidents:incident-detail", args=[incident.pk]))
    body = response.content.decode()
    assert body.count("<svg") == 3
    assert "<script type=\"text/javascript\">" not in body
    assert "over threshold" in body
    assert "0.60 %" in body  # complaint rate since the incident
    end = incident.declared_at + timedelta(days=14)
    assert "Monitoring window" in body and str(end.year) in body
    # Normal daily volume = 3015 sent in the baseline / 30 days -> about 101 a day; day 1 is 10 %.
    assert "about 10 messages" in body


def test_panel_in_step_fragment_for_htmx(client, incident, marketer):
    _bad_week(incident)
    client.force_login(marketer)
    url = reverse("incidents:step-status", args=[incident.pk, 6])
    response = client.post(url, {"status": "in_progress"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Deliverability after the incident" in response.content.decode()


def test_panel_queries_do_not_grow_with_events(client, incident, marketer,
                                               django_assert_max_num_queries):
    client.force_login(marketer)
    url = reverse("incidents:incident-detail", args=[incident.pk])
    _bad_week(incident)
    client.get(url)  # warm caches (session, permissions)
    with django_assert_max_num_queries(40) as ctx:
        client.get(url)
    few = len(ctx.captured_queries)
    add_events("delivered", 500, timezone.now() - timedelta(minutes=1))
    with django_assert_max_num_queries(few):
        client.get(url)


def test_war_room_shows_a_deliverability_alert_on_the_timeline(client, incident, marketer):
    _bad_week(incident)
    monitoring.deliverability_check(incident=incident,
                                    now=incident.declared_at + timedelta(hours=1))
    client.force_login(marketer)
    response = client.get(reverse("incidents:incident-detail", args=[incident.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Deliverability alert" in body and "· Amends" in body


# --- The incident's own mail beside the account's ---------------------------------------------

def _own_mail(incident):
    """The incident's faulty campaign (in its affected audience) and its apology broadcast."""
    from incidents.models import AffectedAudience
    from messaging.models import Broadcast, Campaign, EspAccount

    account = EspAccount.objects.create(provider="sandbox", label="Main")
    campaign = Campaign.objects.create(
        esp_account=account, esp_campaign_id="spring-vip", name="Spring VIP",
        started_at=incident.declared_at - timedelta(hours=1))
    AffectedAudience.objects.create(incident=incident).campaigns.add(campaign)
    apology = Broadcast.objects.create(
        source_ref=f"incident:{incident.pk}", subject="We made a mistake",
        from_email="hello@brand.example", default_locale="en", provider="sandbox")
    return campaign, apology


def test_the_incidents_own_mail_alerts_although_the_account_stays_calm(incident):
    campaign, apology = _own_mail(incident)
    # Whole account: 5,000 delivered and 4 complaints (0.08 %), under every threshold.
    add_events("delivered", 4800, incident.declared_at + timedelta(hours=1))
    # The faulty campaign went out before the declaration; its complaints came after.
    add_events("delivered", 150, incident.declared_at - timedelta(minutes=30),
               campaign_key="spring-vip")
    add_events("complained", 3, incident.declared_at + timedelta(minutes=10),
               campaign_key="spring-vip")
    add_events("delivered", 50, incident.declared_at + timedelta(hours=2),
               broadcast_id=apology.pk)
    add_events("complained", 1, incident.declared_at + timedelta(hours=2),
               broadcast_id=apology.pk)
    now = incident.declared_at + timedelta(hours=3)

    raised = monitoring.deliverability_check(incident=incident, now=now)
    # Own mail: 4 complaints / 200 delivered = 2 %, over warning and critical.
    assert sorted((e.data["scope"], e.data["level"]) for e in raised) == [
        ("own", "critical"), ("own", "warning")]
    assert all("own mail" in e.message and "2.00 %" in e.message for e in raised)
    assert monitoring.deliverability_check(incident=incident, now=now) == []

    panel = monitoring.DeliverabilityPanel(incident, now=now)
    assert panel.own.start == campaign.started_at
    complaints = next(r for r in panel.rows if r.metric == "complaint_rate")
    assert complaints.own == pytest.approx(0.02) and complaints.own_crossed
    assert not complaints.crossed  # the account as a whole is fine


def test_the_panel_shows_the_incidents_mail_beside_the_account(client, incident, marketer):
    _bad_week(incident)
    _own_mail(incident)
    add_events("delivered", 100, incident.declared_at + timedelta(hours=1),
               campaign_key="spring-vip")
    client.force_login(marketer)
    body = client.get(reverse("incidents:incident-detail", args=[incident.pk])
                      ).content.decode()
    assert "This incident&#x27;s mail" in body or "This incident's mail" in body
    assert "whole account" in body
    assert "100.00 %" in body  # its delivered rate


def test_an_incident_without_mail_of_its_own_shows_no_rates_for_it(incident):
    _bad_week(incident)
    panel = monitoring.DeliverabilityPanel(incident,
                                           now=incident.declared_at + timedelta(hours=2))
    assert {row.own for row in panel.rows} == {None}
    assert {row.window is not None for row in panel.rows} == {True}
