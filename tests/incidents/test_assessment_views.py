import pytest
from django.urls import reverse

from audiences.models import SubscriberStatus
from incidents.assessment.services import affected_audience_run
from incidents.models import AffectedRecipient, Assessment, AudienceComputation, Kind
from tests.audiences.factories import campaign, segment, subscriber
from tests.factories import declare

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(marketer):
    vip = segment("VIP")
    people = [subscriber("ann@example.test", segments=(vip,)),
              subscriber("bob@example.test", SubscriberStatus.UNSUBSCRIBED, segments=(vip,))]
    faulty = campaign("Spring sale", recipients=people)
    return {"incident": declare(marketer), "campaign": faulty, "segment": vip}


def login(client, user):
    client.force_login(user)
    return client


def url(name, incident):
    return reverse(f"incidents:{name}", args=[incident.pk])


def run_queued(incident) -> str:
    """Do what the worker does with the queued computation (its task only calls this;
    the worker itself is in test_audience_worker.py)."""
    run = AudienceComputation.objects.get(incident=incident, status="queued")
    return affected_audience_run(run_id=run.pk)


def compute(client, incident, data):
    response = client.post(url("audience-compute", incident), data)
    run_queued(incident)
    return response


def test_war_room_shows_the_panel_before_any_computation(client, marketer, scene):
    response = login(client, marketer).get(url("incident-detail", scene["incident"]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Not computed yet" in body and "Spring sale" in body


def test_marketer_computes_the_audience_with_a_plain_form(client, marketer, scene):
    response = login(client, marketer).post(url("audience-compute", scene["incident"]),
                                            {"campaigns": [scene["campaign"].pk]})
    assert response.status_code == 302
    assert response["Location"].endswith("#assessment")
    assert not AffectedRecipient.objects.filter(incident=scene["incident"]).exists()
    assert run_queued(scene["incident"]) == "done"
    assert AffectedRecipient.objects.filter(incident=scene["incident"]).count() == 2
    body = client.get(url("incident-detail", scene["incident"])).content.decode()
    assert 'data-count="affected">1<' in body and 'data-count="unsubscribed">1<' in body


def test_compute_over_htmx_queues_and_swaps_in_the_progress_bar(client, marketer, scene):
    response = login(client, marketer).post(
        url("audience-compute", scene["incident"]),
        {"campaigns": [scene["campaign"].pk], "segments": [scene["segment"].pk]},
        HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="step-3"' in body and 'id="timeline-events"' in body
    assert "started computing the affected audience of Spring sale" in body
    assert 'id="audience-progress"' in body and 'aria-live="polite"' in body
    assert 'hx-trigger="every 1s"' in body and "<progress" in body
    assert "Cancel computation" in body and "hx-confirm" in body
    assert "<html" not in body


def test_progress_poll_shows_the_bar_then_the_card_with_the_counts(client, marketer, scene):
    incident = scene["incident"]
    login(client, marketer).post(url("audience-compute", incident),
                                 {"campaigns": [scene["campaign"].pk]})
    poll = client.get(url("audience-progress", incident), HTTP_HX_REQUEST="true")
    text = poll.content.decode()
    assert poll.status_code == 200 and text.lstrip().startswith('<div class="send-progress')
    assert "waiting for a worker" in text and "HX-Retarget" not in poll.headers
    run_queued(incident)
    done = client.get(url("audience-progress", incident), HTTP_HX_REQUEST="true")
    assert done["HX-Retarget"] == "#step-3" and done["HX-Reswap"] == "outerHTML"
    body = done.content.decode()
    assert 'id="step-3"' in body and 'data-count="affected">1<' in body
    assert 'id="audience-progress"' not in body
    assert client.get(url("audience-progress", incident)).status_code == 302


def test_a_second_computation_is_refused_while_one_is_queued(client, marketer, scene):
    incident = scene["incident"]
    login(client, marketer).post(url("audience-compute", incident),
                                 {"campaigns": [scene["campaign"].pk]})
    response = client.post(url("audience-compute", incident),
                           {"campaigns": [scene["campaign"].pk]}, HTTP_HX_REQUEST="true")
    assert "already being computed for this incident" in response.content.decode()
    assert AudienceComputation.objects.filter(incident=incident).count() == 1


def test_cancelling_a_queued_computation_ends_it_and_says_so(client, marketer, scene):
    incident = scene["incident"]
    compute(login(client, marketer), incident, {"campaigns": [scene["campaign"].pk]})
    client.post(url("audience-compute", incident),
                {"campaigns": [scene["campaign"].pk], "segments": [scene["segment"].pk]})
    response = client.post(url("audience-cancel", incident), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "cancelled the computation of the affected audience" in body
    assert "The previous one is kept: 2 reached, 1 in the apology audience." in body
    assert 'id="audience-progress"' not in body or "was cancelled" in body
    assert AffectedRecipient.objects.filter(incident=incident).count() == 2
    assert not AudienceComputation.objects.filter(incident=incident, status="queued").exists()
    again = client.post(url("audience-cancel", incident), HTTP_HX_REQUEST="true")
    assert "No computation of the affected audience is running." in again.content.decode()


def test_compute_without_a_campaign_says_so(client, marketer, scene):
    response = login(client, marketer).post(url("audience-compute", scene["incident"]), {},
                                            HTTP_HX_REQUEST="true")
    assert "Choose at least one faulty campaign." in response.content.decode()


def test_read_only_manager_may_look_but_not_compute(client, manager, scene):
    login(client, manager)
    assert client.post(url("audience-compute", scene["incident"]),
                       {"campaigns": [scene["campaign"].pk]}).status_code == 403
    assert client.post(url("audience-cancel", scene["incident"])).status_code == 403
    assert client.get(url("audience-progress", scene["incident"]),
                      HTTP_HX_REQUEST="true").status_code == 200
    assert client.post(url("assessment-update", scene["incident"]),
                       {"currency": "EUR", "legal_involved": "yes",
                        "law_enforcement_involved": "no"}).status_code == 403
    response = client.get(url("audience-lookup", scene["incident"]),
                          {"email": "ann@example.test"})
    assert response.status_code == 200


def test_outsider_gets_404_on_a_restricted_incident(client, security_officer, outsider):
    breach = declare(security_officer, kind=Kind.DATA_BREACH)
    login(client, outsider)
    assert client.post(url("audience-compute", breach), {}).status_code == 404
    assert client.post(url("audience-cancel", breach)).status_code == 404
    assert client.get(url("audience-progress", breach)).status_code == 404
    assert client.post(url("assessment-update", breach), {}).status_code == 404
    assert client.get(url("audience-lookup", breach), {"email": "a@b.test"}).status_code == 404


def test_wrong_methods_get_405(client, marketer, scene):
    login(client, marketer)
    assert client.get(url("audience-compute", scene["incident"])).status_code == 405
    assert client.get(url("audience-cancel", scene["incident"])).status_code == 405
    assert client.post(url("audience-progress", scene["incident"])).status_code == 405
    assert client.get(url("assessment-update", scene["incident"])).status_code == 405
    assert client.post(url("audience-lookup", scene["incident"])).status_code == 405


def test_lookup_fragment_and_page(client, marketer, scene):
    compute(login(client, marketer), scene["incident"], {"campaigns": [scene["campaign"].pk]})
    fragment = client.get(url("audience-lookup", scene["incident"]),
                          {"email": "BOB@example.test"}, HTTP_HX_REQUEST="true")
    text = fragment.content.decode()
    assert "<html" not in text and "Yes." in text and "Spring sale" in text
    assert "Not in the apology audience: Unsubscribed since" in text
    page = client.get(url("audience-lookup", scene["incident"]), {"email": "ann@example.test"})
    assert "<html" in page.content.decode() and "In the apology audience." in \
        page.content.decode()
    bad = client.get(url("audience-lookup", scene["incident"]), {"email": "nope"},
                     HTTP_HX_REQUEST="true")
    assert "valid email" in bad.content.decode()


def test_assessment_saves_answers_and_estimates_cost(client, marketer, scene):
    incident = scene["incident"]
    compute(login(client, marketer), incident, {"campaigns": [scene["campaign"].pk]})
    response = client.post(url("assessment-update", incident), {
        "pii_exposed": "on", "pii_fields": ["email", "name"],
        "compensation_per_person": "12.50", "currency": "eur",
        "other_costs": "Two days of support staff", "legal_involved": "yes",
        "law_enforcement_involved": "no", "notes": "Names and emails went to everyone."})
    assert response.status_code == 302
    assessment = Assessment.objects.get(incident=incident)
    assert assessment.pii_fields == ["email", "name"] and assessment.currency == "EUR"
    incident.refresh_from_db()
    assert incident.pii_exposed
    body = client.get(url("incident-detail", incident)).content.decode()
    assert "12.50 EUR" in body  # 12.50 × 1 person in the apology audience
    assert incident.events.filter(message__contains="updated the assessment").exists()


def test_suppression_send_panel_says_no_apology(client, marketer):
    incident = declare(marketer, kind=Kind.SUPPRESSION_SEND)
    body = login(client, marketer).get(url("incident-detail", incident)).content.decode()
    assert "No apology should go out." in body


def test_panel_queries_do_not_grow_with_segments_and_campaigns(client, marketer, scene):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    incident = scene["incident"]
    compute(login(client, marketer), incident, {"campaigns": [scene["campaign"].pk]})

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url("incident-detail", incident)).status_code == 200
        return len(ctx.captured_queries)

    before = queries()
    extra = [segment(f"Extra {i}") for i in range(8)]
    people = [subscriber(f"extra{i}@example.test", segments=tuple(extra)) for i in range(3)]
    more = [campaign(f"More {i}", recipients=people) for i in range(4)]
    compute(login(client, marketer), incident,
            {"campaigns": [scene["campaign"].pk, *[c.pk for c in more]]})
    assert queries() == before
