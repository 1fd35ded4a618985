"""Issue 11: the managers' crisis summary (incidents/learn)."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.learn import summary as selectors
from incidents.learn.views.summary import csv_safe
from incidents.models import (
    AffectedAudience,
    Assessment,
    Incident,
    Kind,
    ResponseStep,
    StepStatus,
)
from tests.factories import declare

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
URL = "/incidents/summary/"


def step(incident: Incident, number: int) -> ResponseStep:
    return incident.steps.get(number=number)


def set_status(incident, number, status, actor, **kwargs):
    if status == StepStatus.DONE:
        kwargs.setdefault("note", "Handled on the call")  # items may be open
    return services.step_set_status(step=step(incident, number), actor=actor, status=status,
                                    **kwargs)


def shift(incident: Incident, *, days: float = 0, hours: float = 0) -> None:
    """Move an incident (and its steps' times) into the past."""
    delta = timedelta(days=days, hours=hours)
    Incident.objects.filter(pk=incident.pk).update(
        declared_at=incident.declared_at - delta, detected_at=incident.detected_at - delta)


@pytest.fixture
def breach(security_officer):
    return declare(security_officer, title="Customer table exposed", kind=Kind.DATA_BREACH,
                   severity=1)


def test_url_is_the_issue_s(client):
    assert reverse("incidents:summary") == URL


def test_summary_needs_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_top_navigation_links_the_summary_for_everyone(client, marketer, manager):
    for user in (marketer, manager):
        client.force_login(user)
        page = client.get(reverse("incidents:incident-list")).content.decode()
        assert f'href="{URL}"' in page and "Crisis summary" in page


def test_manager_sees_every_incident_others_only_what_they_may(client, manager, outsider,
                                                                marketer, breach):
    declare(marketer, title="VIP mail to everyone")
    client.force_login(manager)
    page = client.get(URL).content.decode()
    assert "Customer table exposed" in page and "VIP mail to everyone" in page
    client.force_login(outsider)
    page = client.get(URL).content.decode()
    assert "VIP mail to everyone" in page and "Customer table exposed" not in page
    export = b"".join(client.get(reverse("incidents:summary-export")).streaming_content)
    assert b"Customer table exposed" not in export


def test_step_cells_show_state_owner_and_done_at_on_hover_and_focus(client, manager, marketer):
    incident = declare(marketer, title="Wrong coupon", severity=2)
    services.step_assign_owner(step=step(incident, 1), actor=marketer, owner=marketer)
    set_status(incident, 1, StepStatus.DONE, marketer)
    set_status(incident, 2, StepStatus.IN_PROGRESS, marketer)
    set_status(incident, 3, StepStatus.SKIPPED, marketer, skip_reason="Known scope")
    client.force_login(manager)
    page = client.get(URL).content.decode()
    for n, state in [(1, "done"), (2, "in_progress"), (3, "skipped"), (4, "not_started")]:
        assert f'id="cell-{incident.pk}-{n}" data-state="{state}"' in page, n
    shift(incident, days=1)  # SEV2 targets: step 2 one hour, step 4 eight hours
    later = client.get(URL).content.decode()
    for n, state in [(1, "done"), (2, "overdue"), (4, "overdue"), (6, "not_started")]:
        assert f'id="cell-{incident.pk}-{n}" data-state="{state}"' in later, n
    # The owner and the done-at live in a tooltip reachable by keyboard (tabindex) too.
    assert f'tabindex="0" aria-describedby="tip-{incident.pk}-1"' in page
    tip = page.split(f'id="tip-{incident.pk}-1"', 1)[1].split("</span>", 1)[0]
    assert "Owner: Maya" in tip and "Done at" in tip
    assert "2. Put out the fire" in page  # current step


def test_signoff_breach_clock_alert_and_affected_columns(client, manager, breach,
                                                         security_officer):
    from incidents.plan.breach import breach_awareness_record

    AffectedAudience.objects.create(incident=breach, reached_count=2000, affected_count=1900)
    breach_awareness_record(incident=breach, actor=security_officer,
                            aware_at=timezone.now(), jurisdictions=["eu"])
    client.force_login(manager)
    page = client.get(URL).content.decode()
    row = page.split(f'id="summary-row-{breach.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "2,000" in row or "2000" in row
    assert "No plan yet" in row and "Legal" in row and "Security" in row
    assert 'class="countdown"' in row and "left" in row


def test_filters_sort_and_fragment(client, manager, marketer):
    declare(marketer, title="Coupon typo", kind=Kind.WRONG_OFFER, severity=3)
    declare(marketer, title="Everyone got VIP mail", kind=Kind.WRONG_SEGMENT, severity=1)
    closed = declare(marketer, title="Old slip", severity=4)
    for n in range(1, 7):
        set_status(closed, n, StepStatus.SKIPPED, marketer, skip_reason="Cosmetic")
    services.incident_close(incident=closed, actor=marketer,
                            postmortem_skip_reason="A test incident.")
    client.force_login(manager)
    page = client.get(URL, {"kind": Kind.WRONG_OFFER}).content.decode()
    assert "Coupon typo" in page and "Everyone got VIP" not in page
    page = client.get(URL, {"state": "closed"}).content.decode()
    assert "Old slip" in page and "Coupon typo" not in page
    page = client.get(URL, {"state": "open", "sort": "-severity"}).content.decode()
    assert page.index("Coupon typo") < page.index("Everyone got VIP")
    page = client.get(URL, {"lead": marketer.pk, "severity": 1}).content.decode()
    assert "Everyone got VIP" in page and "Coupon typo" not in page
    fragment = client.get(URL, {"severity": 3}, **HTMX)
    assert b"<html" not in fragment.content and b'id="summary-live"' in fragment.content


def test_bad_filter_says_what_is_wrong_and_still_answers(client, manager, marketer):
    declare(marketer, title="Coupon typo")
    client.force_login(manager)
    response = client.get(URL, {"severity": "9", "period": "forever"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Select a valid choice" in page and "Coupon typo" in page


def test_paginates(client, manager, marketer):
    for i in range(27):
        declare(marketer, title=f"Incident {i:02d}")
    client.force_login(manager)
    first = client.get(URL).content.decode()
    assert first.count('id="summary-row-') == 25 and "Page 1 of 2" in first
    second = client.get(URL, {"page": 2}).content.decode()
    assert second.count('id="summary-row-') == 2


def test_headline_medians_beside_the_previous_period(manager, marketer):
    now = timezone.now()
    this = declare(marketer, title="This month")
    set_status(this, 2, StepStatus.DONE, marketer)
    shift(this, hours=3)  # contained 3 hours after declaration, today
    before = declare(marketer, title="Last month")
    set_status(before, 2, StepStatus.DONE, marketer)
    ResponseStep.objects.filter(incident=before, number=2).update(
        done_at=now - timedelta(days=40))
    shift(before, days=40, hours=1)  # contained after 1 hour, 40 days ago
    Assessment.objects.create(incident=this, compensation_per_person=Decimal("5.00"),
                              currency="EUR")
    AffectedAudience.objects.create(incident=this, reached_count=120, affected_count=100)
    headline = selectors.summary_headline(user=manager, filters=selectors.SummaryFilters())
    assert headline.current.median_hours["contained_at"] == pytest.approx(3, abs=0.01)
    assert headline.previous.median_hours["contained_at"] == pytest.approx(1, abs=0.01)
    assert headline.current.open_by_severity[2] == 2
    assert headline.previous.open_by_severity[2] == 1
    assert headline.current.affected == 120 and headline.previous.affected == 0
    assert headline.current.compensation == {"EUR": Decimal("500.00")}
    assert len(headline.trend) == 12
    assert headline.trend[-1].median_hours["contained_at"] == pytest.approx(3, abs=0.01)


def test_overdue_steps_count_missed_targets(manager, marketer):
    incident = declare(marketer, severity=1)
    shift(incident, days=2)  # SEV1: steps 1-4 have targets under a day, all missed
    headline = selectors.summary_headline(user=manager, filters=selectors.SummaryFilters())
    assert headline.current.overdue_steps == 5  # step 5's target is a day: missed too


def test_page_shows_figures_and_trend_chart(client, manager, marketer):
    declare(marketer)
    client.force_login(manager)
    page = client.get(URL).content.decode()
    assert 'data-figure="open-sev2"' in page and "before:" in page
    assert "<svg" in page and "Median time from declaration, by month" in page
    assert "<script" not in page.split('id="summary-live"', 1)[1]


def test_poll_answers_204_until_something_changes(client, manager, marketer):
    incident = declare(marketer, title="Wrong coupon")
    client.force_login(manager)
    page = client.get(URL).content.decode()
    version = page.split('data-version="', 1)[1].split('"', 1)[0]
    poll = reverse("incidents:summary-poll")
    unchanged = client.get(poll, {"v": version}, **HTMX)
    if unchanged.status_code == 200:  # the minute turned between the two requests
        version = unchanged.content.decode().split('data-version="', 1)[1].split('"', 1)[0]
        unchanged = client.get(poll, {"v": version}, **HTMX)
    assert unchanged.status_code == 204
    set_status(incident, 1, StepStatus.DONE, marketer)
    changed = client.get(poll, {"v": version}, **HTMX)
    assert changed.status_code == 200
    assert f'id="cell-{incident.pk}-1" data-state="done"' in changed.content.decode()


def test_csv_export_streams_every_row_with_formula_safe_cells(client, manager, marketer):
    declare(marketer, title="=HYPERLINK(\"http://evil.test\",\"click\")")
    for i in range(30):
        declare(marketer, title=f"Incident {i}")
    client.force_login(manager)
    response = client.get(reverse("incidents:summary-export"))
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["Id", "Severity", "Kind", "Title"]
    assert len(rows) == 32  # header + every incident, not one page
    titles = {r[3] for r in rows[1:]}
    assert "'=HYPERLINK(\"http://evil.test\",\"click\")" in titles


@pytest.mark.parametrize("value,expected", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-cmd", "'-cmd"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("plain", "plain"), (-3, -3), (12, 12)])
def test_csv_safe(value, expected):
    assert csv_safe(value) == expected


def test_query_count_does_not_grow_with_incidents(client, manager, marketer, lawyer,
                                                  django_assert_num_queries):
    def make(n):
        for i in range(n):
            incident = declare(marketer, title=f"Incident {i}", kind=Kind.DATA_BREACH,
                               severity=1 + i % 4)
            services.step_assign_owner(step=step(incident, 1), actor=marketer, owner=lawyer)
            set_status(incident, 2, StepStatus.DONE, marketer)

    make(3)
    client.force_login(manager)
    client.get(URL)  # warm the session
    with CaptureQueriesContext(connection) as few:
        assert client.get(URL).status_code == 200
    make(30)
    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get(URL).status_code == 200
    assert len(few.captured_queries) <= 12


# --- The per-incident six-step table (war room section; the PDF includes the same partial) --

def test_war_room_shows_the_six_step_table(client, marketer, lawyer):
    incident = declare(marketer, title="Wrong coupon")
    services.step_assign_owner(step=step(incident, 1), actor=marketer, owner=lawyer)
    set_status(incident, 1, StepStatus.DONE, marketer)
    client.force_login(marketer)
    page = client.get(reverse("incidents:incident-detail", args=[incident.pk])).content.decode()
    table = page.split('id="six-steps"', 1)[1].split("</section>", 1)[0]
    assert "The six-step crisis response" in table
    for heading in ("Step", "Goal", "Primary owners", "Deliverability and risk impact",
                    "Status", "Owner", "Done at"):
        assert f">{heading}</th>" in table
    assert table.count("<tr class=\"six-step-") == 6
    first = table.split('data-step="1"', 1)[1].split("</tr>", 1)[0]
    assert "Leo" in first and "Done" in first and "<time" in first
    assert "Marketing, leadership" in first


def test_step_change_refreshes_the_six_step_table_out_of_band(client, marketer):
    incident = declare(marketer)
    client.force_login(marketer)
    response = client.post(reverse("incidents:step-status", args=[incident.pk, 1]),
                           {"status": "done", "note": "Handled"}, **HTMX)
    html = response.content.decode()
    section = html.split('id="six-steps"', 1)[1].split("</section>", 1)[0]
    assert 'hx-swap-oob="true"' in section
    assert 'class="six-step-done" data-step="1"' in section


def test_six_step_partial_renders_on_its_own(marketer):
    from django.template.loader import render_to_string

    from incidents.selectors import incident_steps

    incident = declare(marketer, title="<script>alert(1)</script>")
    html = render_to_string("learn/_six_step_table.html",
                            {"steps": incident_steps(incident=incident)})
    assert html.count("<tr class=\"six-step-") == 6 and "Put out the fire" in html


def test_overdue_follow_ups_show_on_the_summary(client, manager, marketer):
    from datetime import date, timedelta

    from incidents.learn.services import follow_up_add

    incident = declare(marketer, title="Wrong coupon in the spring mail")
    follow_up_add(incident=incident, actor=marketer, action="Test codes at checkout",
                  owner=marketer, due_on=date.today() - timedelta(days=2))
    follow_up_add(incident=incident, actor=marketer, action="Not yet due",
                  owner=marketer, due_on=date.today() + timedelta(days=5))
    client.force_login(manager)
    assert 'hx-get="/incidents/summary/follow-ups/"' in client.get(
        reverse("incidents:summary")).content.decode()  # loaded after the page
    page = client.get(reverse("incidents:summary-follow-ups"),
                      HTTP_HX_REQUEST="true").content.decode()
    assert "1 follow-up past its date" in page and "Test codes at checkout" in page
    assert "Not yet due" not in page
