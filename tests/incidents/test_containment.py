"""Step 2: one request stops every sending or scheduled campaign of the incident; each
ESP's answer lands on the timeline and in the step-2 panel."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from incidents.containment import services as containment
from incidents.containment.services import ContainmentPanel, incident_campaigns_stop
from incidents.models import AffectedAudience, EventKind, Kind, StakeholderRole
from incidents.services import stakeholder_add
from messaging.models import Campaign, CampaignStatus, CampaignStop, EspAccount, StopOutcome
from messaging.stops import campaign_stop_execute
from tests.factories import declare

pytestmark = pytest.mark.django_db


class Enqueued:
    """Stands in for the task: records the ids `delay` was called with."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def delay(self, stop_id: int) -> None:
        self.ids.append(stop_id)


@pytest.fixture
def enqueued(monkeypatch):
    fake = Enqueued()
    monkeypatch.setattr(containment, "campaign_stop_run", fake)
    return fake


def make_campaign(name: str, status=CampaignStatus.SENDING, *, label="Sandbox",
                  provider="sandbox", ref: str | None = None) -> Campaign:
    account, _ = EspAccount.objects.get_or_create(label=label, defaults={"provider": provider})
    return Campaign.objects.create(
        esp_account=account, esp_campaign_id=ref or f"t-{uuid.uuid4().hex[:12]}", name=name,
        status=status, started_at=timezone.now() - timedelta(minutes=10))


def link(incident, *campaigns):
    audience, _ = AffectedAudience.objects.get_or_create(incident=incident)
    audience.campaigns.add(*campaigns)


@pytest.fixture
def scene(marketer):
    incident = declare(marketer, title="Spring sale to everyone")
    sending = make_campaign("Spring sale")
    scheduled = make_campaign("Spring sale, reminder", CampaignStatus.SCHEDULED)
    finished = make_campaign("Newsletter", CampaignStatus.SENT)
    link(incident, sending, scheduled, finished)
    return {"incident": incident, "sending": sending, "scheduled": scheduled,
            "finished": finished}


# --- The service -----------------------------------------------------------------------

def test_one_stop_and_one_task_per_running_or_scheduled_campaign(
        scene, marketer, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        stops = incident_campaigns_stop(incident=scene["incident"], actor=marketer)
    assert {s.campaign for s in stops} == {scene["sending"], scene["scheduled"]}
    assert sorted(enqueued.ids) == sorted(s.pk for s in stops)
    for stop in CampaignStop.objects.all():
        assert stop.requested_for == scene["incident"] and stop.requested_by == marketer
        assert stop.outcome == StopOutcome.PENDING
    event = scene["incident"].events.filter(data__has_key="containment").get()
    assert event.actor == marketer and event.kind == EventKind.STEP
    assert "stop 2 campaigns" in event.message and "“Spring sale” (Sandbox)" in event.message


def test_the_task_is_enqueued_only_after_commit(scene, marketer, enqueued,
                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        incident_campaigns_stop(incident=scene["incident"], actor=marketer)
    assert enqueued.ids == [] and len(callbacks) == 2


def test_a_second_click_while_pending_asks_nobody_twice(scene, marketer, enqueued,
                                                        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = incident_campaigns_stop(incident=scene["incident"], actor=marketer)
        again = incident_campaigns_stop(incident=scene["incident"], actor=marketer)
    assert len(first) == 2 and again == []
    assert len(enqueued.ids) == 2 and CampaignStop.objects.count() == 2
    assert scene["incident"].events.filter(data__has_key="containment").count() == 1


def test_the_database_refuses_a_second_open_stop(scene):
    CampaignStop.objects.create(campaign=scene["sending"])
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignStop.objects.create(campaign=scene["sending"], outcome=StopOutcome.RUNNING)


def test_without_linked_campaigns_the_request_says_where_to_link_them(marketer, enqueued):
    incident = declare(marketer)
    with pytest.raises(ValidationError, match="compute the affected audience in step 3"):
        incident_campaigns_stop(incident=incident, actor=marketer)


def test_a_closed_incident_pauses_nothing(scene, marketer, enqueued):
    # Closing needs every step resolved; only the closed state matters here.
    type(scene["incident"]).objects.filter(pk=scene["incident"].pk).update(
        closed_at=timezone.now())
    scene["incident"].refresh_from_db()
    with pytest.raises(ValidationError, match="closed"):
        incident_campaigns_stop(incident=scene["incident"], actor=marketer)


def test_each_outcome_lands_on_the_timeline_with_the_esps_answer(
        scene, marketer, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        incident_campaigns_stop(incident=scene["incident"], actor=marketer)
    for stop_id in enqueued.ids:
        assert campaign_stop_execute(stop_id=stop_id).outcome == StopOutcome.STOPPED
    outcomes = list(scene["incident"].events.filter(data__containment__has_key="outcome"))
    assert len(outcomes) == 2 and all(e.actor is None for e in outcomes)
    message = next(e.message for e in outcomes if "“Spring sale”" in e.message)
    assert message.startswith("Campaign “Spring sale” stopped at Sandbox: Sandbox: campaign "
                              "paused.")
    assert "0 recipients had it before the stop." in message
    assert {Campaign.objects.get(pk=c.pk).status for c in (scene["sending"],
                                                           scene["scheduled"])} \
        == {CampaignStatus.PAUSED}
    # Every campaign is stopped now: a new click has nothing to do.
    assert incident_campaigns_stop(incident=scene["incident"], actor=marketer) == []


def test_a_stop_nobody_asked_for_from_an_incident_writes_no_timeline(scene):
    stop = CampaignStop.objects.create(campaign=scene["sending"])
    before = scene["incident"].events.count()
    campaign_stop_execute(stop_id=stop.pk)
    assert scene["incident"].events.count() == before


def test_not_possible_and_failed_outcomes_are_alerts(marketer, settings, enqueued,
                                                     django_capture_on_commit_callbacks):
    settings.AMENDS_ESP_ACCOUNTS = {}
    incident = declare(marketer)
    link(incident, make_campaign("Live at SendGrid", label="SendGrid", provider="sendgrid"),
         make_campaign("No key at Brevo", label="Brevo", provider="brevo", ref="17"))
    settings.AMENDS_ESP_ACCOUNTS = {"SENDGRID": {"api_key": "k",
                                                 "base_url": "http://127.0.0.1:9"}}
    with django_capture_on_commit_callbacks(execute=True):
        incident_campaigns_stop(incident=incident, actor=marketer)
    for stop_id in enqueued.ids:
        campaign_stop_execute(stop_id=stop_id)
    alerts = {e.message for e in incident.events.filter(kind=EventKind.ALERT)}
    assert any(m.startswith("Campaign “Live at SendGrid” cannot be stopped at SendGrid: "
                            "SendGrid can pause or cancel only a scheduled send") for m in alerts)
    assert any(m.startswith("Stopping campaign “No key at Brevo” at Brevo failed: ESP account")
               for m in alerts)


# --- The panel ---------------------------------------------------------------------------

def test_panel_rows_carry_the_latest_stop_and_what_the_esp_can_do(scene, marketer, enqueued,
                                                                  django_assert_num_queries):
    stop = CampaignStop.objects.create(campaign=scene["sending"],
                                       requested_for=scene["incident"])
    panel = ContainmentPanel(scene["incident"])
    with django_assert_num_queries(2):  # campaigns, stops (content types are cached)
        rows = panel.rows
    by_name = {r.campaign.name: r for r in rows}
    assert by_name["Spring sale"].stop == stop and by_name["Newsletter"].stop is None
    assert "Nothing leaves this machine" in str(by_name["Spring sale"].capabilities.explanation)
    assert panel.pending and panel.stoppable  # the scheduled one is still free


# --- Views -------------------------------------------------------------------------------

def login(client, user):
    client.force_login(user)
    return client


def url(name, incident):
    return reverse(f"incidents:{name}", args=[incident.pk])


def test_war_room_step_2_lists_the_campaigns_and_the_pause_button(client, marketer, scene):
    body = login(client, marketer).get(url("incident-detail", scene["incident"])).content.decode()
    assert 'id="containment"' in body and "Pause all sending campaigns" in body
    assert "hx-confirm=" in body and f'action="{url("campaigns-stop", scene["incident"])}"' in body
    assert "Spring sale, reminder" in body and "Nothing leaves this machine" in body
    assert 'hx-trigger="every 2s"' not in body  # nothing pending: no polling


def test_war_room_without_campaigns_offers_the_recent_ones_in_step_2(client, marketer):
    incident = declare(marketer)
    make_campaign("Spring sale")
    old = make_campaign("Old newsletter", CampaignStatus.SENT)
    long_ago = timezone.now() - timedelta(days=60)
    Campaign.objects.filter(pk=old.pk).update(started_at=long_ago, created_at=long_ago)
    body = login(client, marketer).get(url("incident-detail", incident)).content.decode()
    step2 = body.split('id="containment"', 1)[1].split("</section>", 1)[0]
    assert 'id="containment-empty"' in step2 and "Mark as faulty" in step2
    assert "Spring sale" in step2 and "Old newsletter" not in step2
    assert "Pause all sending campaigns" not in step2


def test_marking_a_campaign_faulty_in_step_2_lets_it_be_paused_without_step_3(
        client, marketer, enqueued):
    incident = declare(marketer)
    sending = make_campaign("Spring sale")
    response = login(client, marketer).post(url("campaigns-link", incident),
                                            {"campaigns": [sending.pk]}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Pause all sending campaigns" in response.content.decode()
    assert list(containment.incident_campaigns(incident=incident)) == [sending]
    event = incident.events.get(kind=EventKind.UPDATED)
    assert "marked campaign “Spring sale” as faulty" in event.message
    assert event.actor == marketer
    stops = incident_campaigns_stop(incident=incident, actor=marketer)
    assert [s.campaign for s in stops] == [sending]
    assert AffectedAudience.objects.get(incident=incident).computed_at is None  # no step 3


def test_marking_nothing_says_what_is_missing(client, marketer):
    incident = declare(marketer)
    response = login(client, marketer).post(url("campaigns-link", incident), {},
                                            HTTP_HX_REQUEST="true")
    assert "Choose at least one campaign." in response.content.decode()
    assert not AffectedAudience.objects.filter(incident=incident).exists()


def test_campaigns_named_at_declaration_are_ready_to_pause(client, marketer):
    sending = make_campaign("Spring sale")
    login(client, marketer)
    response = client.post(reverse("incidents:incident-declare"), {
        "title": "Spring sale to everyone", "kind": Kind.WRONG_SEGMENT, "severity": 2,
        "campaigns": [sending.pk]})
    assert response.status_code == 302
    incident = AffectedAudience.objects.get().incident
    assert list(containment.incident_campaigns(incident=incident)) == [sending]
    assert incident.events.filter(kind=EventKind.UPDATED,
                                  message__contains="as faulty").exists()


def test_linking_after_the_audience_was_computed_says_to_recompute(marketer):
    incident = declare(marketer)
    first, second = make_campaign("Spring sale"), make_campaign("Reminder")
    link(incident, first)
    AffectedAudience.objects.filter(incident=incident).update(computed_at=timezone.now())
    assert containment.incident_campaigns_link(incident=incident, actor=marketer,
                                               campaigns=[first, second]) == [second]
    assert "compute it again in step 3" in incident.events.latest("pk").message
    assert containment.incident_campaigns_link(incident=incident, actor=marketer,
                                               campaigns=[first]) == []


def test_marketer_pauses_with_a_plain_form_post(client, marketer, scene, enqueued):
    response = login(client, marketer).post(url("campaigns-stop", scene["incident"]))
    assert response.status_code == 302 and response["Location"].endswith("#containment")
    assert CampaignStop.objects.count() == 2
    body = client.get(response["Location"]).content.decode()
    assert "Asked the ESPs to stop 2 campaigns" in body
    assert 'hx-trigger="every 2s"' in body and "Waiting for the ESP" in body


def test_pause_over_htmx_returns_the_panel_and_the_timeline(client, marketer, scene, enqueued):
    response = login(client, marketer).post(url("campaigns-stop", scene["incident"]),
                                            HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="containment" id="containment"')
    assert 'hx-trigger="every 2s"' in body and 'id="timeline-events"' in body
    assert 'hx-swap-oob="true"' in body and "asked the ESPs to stop 2 campaigns" in body
    assert "<html" not in body


def test_a_second_pause_says_nothing_new_to_stop(client, marketer, scene, enqueued,
                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        login(client, marketer).post(url("campaigns-stop", scene["incident"]))
        response = client.post(url("campaigns-stop", scene["incident"]),
                               HTTP_HX_REQUEST="true")
    assert "Nothing new to stop" in response.content.decode()
    assert CampaignStop.objects.count() == 2 and len(enqueued.ids) == 2


def test_polling_stops_once_every_stop_is_final(client, marketer, scene, enqueued,
                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        login(client, marketer).post(url("campaigns-stop", scene["incident"]))
    poll = client.get(url("containment", scene["incident"]), HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 2s"' in poll.content.decode()
    for stop_id in enqueued.ids:
        campaign_stop_execute(stop_id=stop_id)
    body = client.get(url("containment", scene["incident"]),
                      HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' not in body and "<html" not in body
    assert body.count('data-outcome="stopped"') == 2 and "Sandbox: campaign paused." in body
    assert "stopped at Sandbox" in body  # the timeline, out of band


def test_containment_without_htmx_is_the_war_room(client, marketer, scene):
    response = login(client, marketer).get(url("containment", scene["incident"]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" in body and 'id="containment"' in body and 'id="step-1"' in body


def test_manager_may_look_but_not_pause(client, manager, scene, enqueued):
    assert login(client, manager).get(url("containment", scene["incident"]),
                                      HTTP_HX_REQUEST="true").status_code == 200
    body = client.get(url("incident-detail", scene["incident"])).content.decode()
    assert "Pause all sending campaigns" not in body
    assert client.post(url("campaigns-stop", scene["incident"])).status_code == 403
    assert CampaignStop.objects.count() == 0


def test_outsider_of_a_restricted_incident_gets_404(client, security_officer, outsider,
                                                    marketer, enqueued):
    breach = declare(security_officer, title="Export leaked", kind=Kind.DATA_BREACH)
    link(breach, make_campaign("Breach notice draft", CampaignStatus.SCHEDULED))
    stakeholder_add(incident=breach, actor=security_officer, user=marketer,
                    role=StakeholderRole.MARKETING)
    login(client, outsider)
    assert client.get(url("containment", breach)).status_code == 404
    assert client.post(url("campaigns-stop", breach)).status_code == 404
    login(client, marketer)
    assert client.post(url("campaigns-stop", breach)).status_code == 302
    assert CampaignStop.objects.count() == 1


def test_wrong_methods_get_405(client, marketer, scene):
    login(client, marketer)
    assert client.get(url("campaigns-stop", scene["incident"])).status_code == 405
    assert client.post(url("containment", scene["incident"])).status_code == 405


def test_anonymous_is_sent_to_log_in(client, scene):
    response = client.post(url("campaigns-stop", scene["incident"]))
    assert response.status_code == 302 and "login" in response["Location"]
