import re

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents.models import ChecklistItem, EventKind, Incident, Kind, StepStatus
from tests.factories import declare

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def incident(marketer):
    return declare(marketer)


@pytest.fixture
def breach(security_officer):
    return declare(security_officer, title="Export leaked", kind=Kind.DATA_BREACH, severity=1)


def login(client, user):
    client.force_login(user)
    return client


# --- List -------------------------------------------------------------------------------

def test_list_needs_login(client):
    response = client.get(reverse("incidents:incident-list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_list_empty_state_invites_declaring(client, marketer):
    response = login(client, marketer).get(reverse("incidents:incident-list"))
    assert response.status_code == 200
    assert b"No incidents. A calm day." in response.content
    assert reverse("incidents:incident-declare").encode() in response.content


def test_list_filters_and_fragment(client, marketer):
    declare(marketer, title="Wrong coupon", kind=Kind.WRONG_OFFER, severity=3)
    declare(marketer, title="Everyone got VIP mail", kind=Kind.WRONG_SEGMENT, severity=2)
    client = login(client, marketer)
    page = client.get(reverse("incidents:incident-list"), {"kind": Kind.WRONG_OFFER})
    assert b"Wrong coupon" in page.content and b"Everyone got VIP" not in page.content
    assert b"<html" in page.content
    fragment = client.get(reverse("incidents:incident-list"), {"severity": 2}, **HTMX)
    assert b"<html" not in fragment.content and b'id="results"' in fragment.content
    assert b"Everyone got VIP" in fragment.content and b"Wrong coupon" not in fragment.content
    none = client.get(reverse("incidents:incident-list"), {"q": "nothing like this"})
    assert b"No incident matches these filters." in none.content


def rows_of(response) -> list[str]:
    return re.findall(r'<td><a href="/incidents/\d+/"><bdi>([^<]+)</bdi></a>',
                      response.content.decode())


def test_list_pages_by_keyset_forward_and_back(client, marketer):
    for i in range(27):
        declare(marketer, title=f"Incident {i:02d}")
    client = login(client, marketer)
    first = client.get(reverse("incidents:incident-list"))
    assert first.content.count(b'<tr>') == 26  # header + 25 rows
    assert rows_of(first)[:2] == ["Incident 26", "Incident 25"]  # newest first
    assert b"27 incidents" in first.content and b'rel="prev"' not in first.content
    after = re.search(r'href="\?after=([^"]+)"', first.content.decode())[1]
    second = client.get(reverse("incidents:incident-list") + f"?after={after}", **HTMX)
    assert rows_of(second) == ["Incident 01", "Incident 00"]
    assert b'rel="next"' not in second.content and b"<html" not in second.content
    before = re.search(r'href="\?before=([^"]+)"', second.content.decode())[1]
    back = client.get(reverse("incidents:incident-list") + f"?before={before}")
    assert rows_of(back) == rows_of(first)
    assert client.get(reverse("incidents:incident-list"), {"after": "nonsense"}).status_code \
        == 200


def test_list_shows_open_incidents_first_then_severity_then_newest(client, marketer):
    old_sev1 = declare(marketer, title="Old SEV1, closed", severity=1)
    Incident.objects.filter(pk=old_sev1.pk).update(closed_at=timezone.now(), status="closed")
    declare(marketer, title="Open SEV3", severity=3)
    declare(marketer, title="Open SEV1", severity=1)
    declare(marketer, title="Newer open SEV3", severity=3)
    page = login(client, marketer).get(reverse("incidents:incident-list"))
    assert rows_of(page) == ["Open SEV1", "Newer open SEV3", "Open SEV3", "Old SEV1, closed"]


def test_list_keeps_the_filters_in_its_page_links(client, marketer):
    for i in range(26):
        declare(marketer, title=f"Coupon {i:02d}", kind=Kind.WRONG_OFFER)
    declare(marketer, title="Everyone got VIP mail")
    page = login(client, marketer).get(reverse("incidents:incident-list"),
                                       {"kind": Kind.WRONG_OFFER})
    link = re.search(r'href="\?([^"]+)" hx-get="[^"]+" hx-target="#results" hx-push-url="true"'
                     r' rel="next"', page.content.decode())[1]
    assert link.startswith("kind=wrong_offer&after=")
    second = client.get(reverse("incidents:incident-list") + "?" + link)
    assert rows_of(second) == ["Coupon 00"] and b"26 incidents" in second.content


def test_list_count_stops_at_a_thousand(client, marketer):
    now = timezone.now()
    Incident.objects.bulk_create([
        Incident(title=f"Old {i}", kind=Kind.WRONG_SEGMENT, severity=4, lead=marketer,
                 declared_by=marketer, detected_at=now, declared_at=now)
        for i in range(1001)])
    page = login(client, marketer).get(reverse("incidents:incident-list"))
    assert b"1,000+ incidents" in page.content
    assert page.content.count(b'<tr>') == 26 and b"0/6" in page.content


def test_list_query_count_does_not_grow_with_rows(client, marketer, django_assert_max_num_queries):
    for i in range(10):
        declare(marketer, title=f"Incident {i}")
    client = login(client, marketer)
    client.get(reverse("incidents:incident-list"))
    with django_assert_max_num_queries(8):
        client.get(reverse("incidents:incident-list"))


def test_restricted_breach_hidden_from_non_stakeholders(client, breach, outsider, manager):
    assert b"Export leaked" not in login(client, outsider).get(
        reverse("incidents:incident-list")).content
    assert client.get(reverse("incidents:incident-detail", args=[breach.pk])).status_code == 404
    client.force_login(manager)
    assert b"Export leaked" in client.get(reverse("incidents:incident-list")).content
    assert client.get(reverse("incidents:incident-detail", args=[breach.pk])).status_code == 200


# --- Declare ----------------------------------------------------------------------------

@pytest.mark.parametrize("persona,expected", [
    ("marketer", 200), ("security_officer", 200), ("lawyer", 403), ("manager", 403),
    ("deliverability_lead", 403),
])
def test_declare_page_by_role(client, request, persona, expected):
    user = request.getfixturevalue(persona)
    assert login(client, user).get(reverse("incidents:incident-declare")).status_code == expected


def test_declare_creates_incident_and_redirects_to_war_room(client, marketer):
    response = login(client, marketer).post(reverse("incidents:incident-declare"), {
        "title": "VIP mail to everyone", "kind": Kind.WRONG_SEGMENT, "severity": 2,
        "summary": "24k people", "detected_at": ""})
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert b"VIP mail to everyone" in page.content
    assert b"Own the problem" in page.content and b"Proceed with caution" in page.content


def test_declare_form_errors_name_the_field(client, marketer):
    response = login(client, marketer).post(reverse("incidents:incident-declare"), {
        "title": "", "kind": "nonsense", "severity": 9})
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"title", "kind", "severity"}


# --- War room ---------------------------------------------------------------------------

def test_war_room_shows_steps_timeline_and_stakeholders(client, incident, marketer):
    page = login(client, marketer).get(reverse("incidents:incident-detail", args=[incident.pk]))
    html = page.content.decode()
    for fragment in ['id="incident-header"', 'id="tracker"', 'id="step-1"', 'id="step-6"',
                     'id="timeline-events"', 'id="stakeholders"', "declared a SEV2"]:
        assert fragment in html


def test_war_room_query_count_does_not_grow_with_content(client, marketer, lawyer,
                                                        django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from incidents import services

    small, big = declare(marketer, title="small"), declare(marketer, title="big")
    for item in ChecklistItem.objects.filter(step__incident=big):
        services.checklist_item_set_done(item=item, actor=marketer, done=True)
    services.stakeholder_add(incident=big, actor=marketer, user=lawyer, role="legal")
    for i in range(20):
        services.timeline_note_add(incident=big, actor=lawyer, message=f"note {i}")
    login(client, marketer)

    def count(incident) -> int:
        with CaptureQueriesContext(connection) as ctx:
            client.get(reverse("incidents:incident-detail", args=[incident.pk]))
        return len(ctx.captured_queries)

    count(small)  # warm per-process caches (content types) so both counts are alike
    assert count(small) == count(big)
    # Today's budget: the core war room plus one or two queries per step panel (pause,
    # assessment, plan and sign-off, apology, deliverability). Raise it only with a reason.
    # The sign-off's requirement record and package (issue 9) cost two more; the apology
    # card and the send panel share one linter run, and the stakeholder select reuses the
    # people list, so the total stays where it was. Step 3's background computation
    # (issue 13) costs one: the latest run, for its progress bar.
    with django_assert_max_num_queries(29):
        client.get(reverse("incidents:incident-detail", args=[big.pk]))


def test_manager_sees_war_room_read_only(client, incident, manager):
    page = login(client, manager).get(reverse("incidents:incident-detail", args=[incident.pk]))
    assert page.status_code == 200
    assert b"Add a note" not in page.content and b"Mark done" not in page.content


def _tick_url(incident):
    item = incident.steps.get(number=1).items.first()
    return reverse("incidents:checklist-tick", args=[incident.pk, item.pk]), item


def test_tick_by_htmx_returns_step_and_out_of_band_parts(client, incident, marketer):
    url, item = _tick_url(incident)
    response = login(client, marketer).post(url, {"done": "on"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith('\n    <article class="step') or '<article class="step' in html[:200]
    # header, tracker, the six-step table, timeline events, and the live poller's new mark
    assert html.count('hx-swap-oob="true"') == 5
    assert "ticked" in html
    item.refresh_from_db()
    assert item.done and item.done_by == marketer


def test_tick_without_htmx_redirects_to_the_step(client, incident, marketer):
    url, item = _tick_url(incident)
    response = login(client, marketer).post(url, {"done": "on"})
    assert response.status_code == 302 and response["Location"].endswith("#step-1")


@pytest.mark.parametrize("persona,expected", [
    ("marketer", 200), ("lawyer", 200), ("deliverability_lead", 200), ("manager", 403),
])
def test_tick_permissions_by_role(client, incident, request, persona, expected):
    url, _ = _tick_url(incident)
    user = request.getfixturevalue(persona)
    assert login(client, user).post(url, {"done": "on"}, **HTMX).status_code == expected


def test_mutations_are_404_for_outsiders_on_restricted_incidents(client, breach, outsider):
    url, _ = _tick_url(breach)
    assert login(client, outsider).post(url, {"done": "on"}).status_code == 404


def test_mutations_refuse_get(client, incident, marketer):
    url, _ = _tick_url(incident)
    assert login(client, marketer).get(url).status_code == 405
    assert client.get(reverse("incidents:note-add", args=[incident.pk])).status_code == 405


def test_skip_without_reason_shows_error_in_the_step(client, incident, marketer):
    url = reverse("incidents:step-status", args=[incident.pk, 5])
    response = login(client, marketer).post(url, {"status": StepStatus.SKIPPED}, **HTMX)
    assert b"Say why this step is skipped." in response.content
    assert incident.steps.get(number=5).status == StepStatus.NOT_STARTED


def test_owner_change_and_note_and_correction(client, incident, marketer, lawyer):
    client = login(client, marketer)
    client.post(reverse("incidents:step-owner", args=[incident.pk, 3]), {"owner": lawyer.pk},
                **HTMX)
    assert incident.steps.get(number=3).owner == lawyer
    response = client.post(reverse("incidents:note-add", args=[incident.pk]),
                           {"message": "Called the ESP"}, **HTMX)
    assert b"Called the ESP" in response.content and b'id="timeline"' in response.content
    note = incident.events.get(kind=EventKind.NOTE)
    client.post(reverse("incidents:event-correct", args=[incident.pk, note.pk]),
                {"message": "Called the ESP at 9:40"}, **HTMX)
    assert incident.events.get(kind=EventKind.CORRECTION).corrects == note


def test_checklist_add_edit_move_via_views(client, incident, marketer):
    client = login(client, marketer)
    client.post(reverse("incidents:checklist-add", args=[incident.pk, 2]),
                {"text": "Phone the ESP"}, **HTMX)
    step = incident.steps.get(number=2)
    item = step.items.get(text="Phone the ESP")
    client.post(reverse("incidents:checklist-edit", args=[incident.pk, item.pk]),
                {"text": "Phone the ESP now"}, **HTMX)
    client.post(reverse("incidents:checklist-move", args=[incident.pk, item.pk]),
                {"offset": -1}, **HTMX)
    texts = list(step.items.values_list("text", flat=True))
    assert texts[-2] == "Phone the ESP now"


def test_stakeholder_add_and_remove(client, incident, marketer, lawyer):
    client = login(client, marketer)
    client.post(reverse("incidents:stakeholder-add", args=[incident.pk]),
                {"user": lawyer.pk, "role": "legal"}, **HTMX)
    stake = incident.stakeholders.get(user=lawyer)
    response = client.post(reverse("incidents:stakeholder-remove", args=[incident.pk, stake.pk]),
                           **HTMX)
    assert response.status_code == 200 and not incident.stakeholders.filter(user=lawyer).exists()


def test_edit_close_and_reopen_pages(client, incident, marketer):
    client = login(client, marketer)
    edit = reverse("incidents:incident-edit", args=[incident.pk])
    assert client.get(edit).status_code == 200
    response = client.post(edit, {"title": "Renamed", "kind": incident.kind, "severity": 1,
                                  "cause": "human", "lead": marketer.pk, "summary": ""})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.title == "Renamed" and incident.severity == 1
    close = reverse("incidents:incident-close", args=[incident.pk])
    assert b"These steps are still open" in client.get(close).content
    client.post(close)
    incident.refresh_from_db()
    assert incident.closed_at is None
    incident.steps.update(status=StepStatus.DONE)
    client.post(close)  # neither a finished post-mortem nor a reason to skip it
    incident.refresh_from_db()
    assert incident.closed_at is None
    client.post(close, {"postmortem_skip_reason": "A typo nobody saw."})
    incident.refresh_from_db()
    assert incident.closed_at is not None
    reopen = reverse("incidents:incident-reopen", args=[incident.pk])
    assert client.post(reopen, {"reason": ""}).status_code == 200
    client.post(reopen, {"reason": "More complaints"})
    incident.refresh_from_db()
    assert incident.closed_at is None


def test_timeline_fragment_and_its_own_page(client, incident, marketer):
    url = reverse("incidents:timeline", args=[incident.pk])
    response = login(client, marketer).get(url, **HTMX)
    assert b'id="timeline-events"' in response.content and b"<html" not in response.content
    page = client.get(url)
    assert page.status_code == 200 and b"<html" in page.content and b"Older events" not in (
        page.content)


def _notes(incident, user, n):
    from incidents import services

    return [services.timeline_note_add(incident=incident, actor=user, message=f"note {i}")
            for i in range(n)]


def test_the_timeline_pages_back_to_the_declaration(client, incident, marketer):
    _notes(incident, marketer, 60)
    body = login(client, marketer).get(
        reverse("incidents:incident-detail", args=[incident.pk])).content.decode()
    assert "note 59" in body and "note 9<" not in body and "Older events" in body
    assert "declared a" not in body.split('id="timeline-events"')[1]
    oldest_shown = incident.events.order_by("-created_at", "-id")[49]
    url = reverse("incidents:timeline", args=[incident.pk]) + f"?before={oldest_shown.pk}"
    older = client.get(url, **HTMX).content.decode()
    assert "note 9<" in older and "declared a" in older and "Older events" not in older
    assert f"note {59 - 49}<" not in older  # the last one shown is not repeated


def test_the_timeline_filters_by_kind(client, incident, marketer):
    _notes(incident, marketer, 2)
    url = reverse("incidents:timeline", args=[incident.pk])
    notes = login(client, marketer).get(url + "?show=notes", **HTMX).content.decode()
    assert "note 1" in notes and "declared a" not in notes
    decisions = client.get(url + "?show=decisions", **HTMX).content.decode()
    assert "note 1" not in decisions
    assert client.get(url + "?show=nonsense", **HTMX).status_code == 200  # everything


def test_a_permalink_opens_the_page_at_its_event(client, incident, marketer):
    notes = _notes(incident, marketer, 60)
    url = reverse("incidents:timeline", args=[incident.pk]) + f"?at={notes[3].pk}"
    body = login(client, marketer).get(url).content.decode()
    assert f'id="event-{notes[3].pk}"' in body and "note 4<" not in body
    assert f'href="/incidents/{incident.pk}/timeline/?at={notes[3].pk}#event-{notes[3].pk}"' in (
        body)


def test_war_room_renders_system_events_without_an_actor(client, marketer):
    from django.utils import timezone

    from incidents import services

    incident = declare(marketer, severity=1)
    services.steps_flag_overdue(now=timezone.now() + timezone.timedelta(hours=1))
    page = login(client, marketer).get(reverse("incidents:incident-detail", args=[incident.pk]))
    assert page.status_code == 200
    assert b"is past its target" in page.content


def test_not_found_and_server_error_pages_are_our_own(client, marketer, settings):
    from django.template.loader import render_to_string

    settings.DEBUG = False
    page = login(client, marketer).get("/incidents/999999/")
    assert page.status_code == 404 and b"We can't find that page" in page.content
    assert "Something went wrong on our side" in render_to_string("500.html")
