"""Done-when of issue 5, in a real browser: a breach plan is written, legal approves,
security rejects with a reason, marketing edits, both approve the new version, and only
then does the send button enable; the timeline tells the whole story."""

import re

import pytest
from playwright.sync_api import Page, expect

from incidents.models import Kind, Severity
from incidents.services import stakeholder_add
from tests.browser import open_step
from tests.conftest import PASSWORD
from tests.factories import declare

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(browser, live_server, username: str) -> Page:
    page = browser.new_context(locale="en").new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    expect(page.get_by_role("link", name="Incidents", exact=True)).to_be_visible()
    return page


def test_breach_plan_sign_off_story(browser, live_server, marketer, lawyer, security_officer):
    incident = declare(marketer, title="Customer table exposed", kind=Kind.DATA_BREACH,
                       severity=Severity.SEV1)
    stakeholder_add(incident=incident, actor=marketer, user=lawyer, role="legal")
    stakeholder_add(incident=incident, actor=marketer, user=security_officer, role="security")
    war_room = f"{live_server.url}/incidents/{incident.pk}/"

    # Marketing writes the plan; the send button stays disabled and says why.
    maya = login(browser, live_server, "maya")
    maya.goto(war_room)
    open_step(maya, 4)
    open_step(maya, 5)
    send = maya.locator("#send-apology")
    expect(send).to_be_disabled()
    expect(maya.locator("#send-gate-reasons")).to_contain_text("No plan has been written yet")
    maya.get_by_role("link", name="Write the plan").click()
    maya.get_by_label("Internal steps").fill("Rotate the database credentials\nAudit exports")
    maya.get_by_label("What subscribers are told").fill("Your email address was exposed.")
    maya.get_by_label("Subscribers must act").check()
    maya.get_by_label("What subscribers must do").fill("Change your password.")
    maya.locator("#id_fu-0-action").fill("Review vendor access")
    maya.locator("#id_fu-0-owner").select_option(label="Sam")
    maya.locator("#id_fu-0-due").fill("2026-12-15")
    maya.get_by_role("button", name="Save as a new version").click()
    expect(maya.locator("#send-apology")).to_be_disabled()
    expect(maya.locator("#send-gate-reasons")).to_contain_text(
        "Legal has not signed plan version 1")

    # Legal finds it in the inbox (count in the header) and approves.
    leo = login(browser, live_server, "leo")
    expect(leo.locator("header .badge")).to_have_text("1")
    leo.get_by_role("link", name=re.compile("Sign-off")).click()
    leo.get_by_role("link", name=re.compile("Customer table exposed")).click()
    leo.get_by_role("button", name="Approve version 1").click()
    expect(leo.locator("[data-role=legal]")).to_contain_text("approved version 1")

    # Security rejects, with a reason.
    sam = login(browser, live_server, "sam")
    sam.goto(war_room)
    open_step(sam, 4)
    sam.locator("#step-4 details.reject > summary").click()
    sam.get_by_label("Why do you reject it?").fill("Say which fields were exposed.")
    sam.get_by_role("button", name="Reject version 1").click()
    expect(sam.locator("[data-role=security]")).to_contain_text(
        "rejected version 1 (Sam): Say which fields were exposed.")
    expect(sam.locator("#send-gate-reasons")).to_contain_text("Security rejected plan version 1")

    # Marketing edits; the signatures on version 1 become void, visibly.
    maya.goto(f"{live_server.url}/incidents/{incident.pk}/plan/edit/")
    maya.get_by_label("What subscribers are told").fill(
        "Your email address and name were exposed.")
    maya.get_by_role("button", name="Save as a new version").click()
    expect(maya.locator("#plan-panel")).to_contain_text("version 2")
    expect(maya.locator("#plan-panel details.voided")).to_contain_text("2 void signatures")
    expect(maya.locator("#send-apology")).to_be_disabled()
    maya.get_by_role("link", name="What changed").click()
    expect(maya.locator("ins")).to_contain_text("Your email address and name were exposed.")

    # Both approve the new version.
    for signer, role in ((leo, "legal"), (sam, "security")):
        signer.goto(war_room)
        open_step(signer, 4)
        open_step(signer, 5)
        signer.get_by_role("button", name="Approve version 2").click()
        expect(signer.locator(f"[data-role={role}]")).to_contain_text("approved version 2")
    # The last approval updates the send panel in place (htmx, out of band): the sign-off
    # part of the gate is satisfied (the button also needs a written apology).
    expect(sam.locator("#send-gate-signoff")).to_be_visible()

    # The button enables, and the timeline tells the story.
    maya.goto(war_room)
    open_step(maya, 5)
    expect(maya.locator("#send-gate-signoff")).to_be_visible()
    expect(maya.locator("#send-gate-reasons")).to_contain_text("Write the apology first.")
    timeline = maya.locator("#timeline-events")
    for line in [
        "Maya wrote the plan (version 1).",
        "Leo (Legal) approved plan version 1.",
        "Sam (Security) rejected plan version 1. Reason: Say which fields were exposed.",
        "Maya edited the plan: version 2 (changed: What subscribers are told).",
        "the approval of Leo (Legal) on version 1 is void",
        "the rejection by Sam (Security) on version 1 is void",
        "Leo (Legal) approved plan version 2.",
        "Sam (Security) approved plan version 2.",
        "Every required sign-off approves plan version 2: the apology may be sent.",
    ]:
        expect(timeline).to_contain_text(line)


def test_breach_clock_counts_down_and_turns_overdue(browser, live_server, security_officer):
    from datetime import timedelta

    from django.utils import timezone

    incident = declare(security_officer, title="Export bucket public", kind=Kind.DATA_BREACH,
                       severity=Severity.SEV1)
    sam = login(browser, live_server, "sam")
    sam.goto(f"{live_server.url}/incidents/{incident.pk}/")
    open_step(sam, 3)
    header = sam.locator("#breach-countdown")
    expect(header).to_contain_text("Breach clock not started")

    recent = timezone.localtime(timezone.now() - timedelta(hours=2))
    sam.get_by_label("We became aware at").fill(recent.strftime("%Y-%m-%dT%H:%M"))
    sam.get_by_role("button", name="Save", exact=True).last.click()
    expect(header).to_contain_text("Notify the supervisory authority (GDPR Art. 33) due in")
    expect(header).not_to_have_class(re.compile("is-overdue"))

    # Security corrects the moment of awareness to four days ago: the 72 hours are gone.
    sam.locator("#breach-panel details.breach-aware > summary").click()
    old = timezone.localtime(timezone.now() - timedelta(days=4))
    sam.get_by_label("We became aware at").fill(old.strftime("%Y-%m-%dT%H:%M"))
    sam.get_by_role("button", name="Save", exact=True).last.click()
    expect(header).to_have_class(re.compile("is-overdue"))
    expect(header).to_contain_text("OVERDUE: Notify the supervisory authority (GDPR Art. 33)")
    expect(sam.locator("#timeline-events")).to_contain_text("corrected the moment of awareness")
