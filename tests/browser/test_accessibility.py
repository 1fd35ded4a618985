"""Issue 14: the five pages a team lives in on a bad day pass axe-core (WCAG 2 A/AA and
best practices) with no serious or critical violation, in English and in Arabic (right to
left), as a person finds them: the war room with a timeline and a step open, a sign-off
page seen by the lawyer who must sign."""

import re

import pytest
from playwright.sync_api import Page, expect

from incidents.models import Kind, Severity
from incidents.plan.services import plan_version_create
from incidents.services import (
    checklist_item_add,
    stakeholder_add,
    step_set_status,
    timeline_note_add,
)
from tests.browser import login, open_step
from tests.browser.axe import assert_accessible
from tests.factories import declare

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LANGUAGES = ["en", "ar"]


def choose_language(page: Page, language: str) -> None:
    """Switch language the way a person does: the header's switcher (stored on them)."""
    if language == "en":
        return
    page.locator("#language-choice").select_option(language)
    page.locator("form.language-switcher button").click()
    expect(page.locator("html")).to_have_attribute("lang", language)


def check(page: Page, url: str, language: str, label: str) -> None:
    page.goto(url)
    expect(page.locator("html")).to_have_attribute("lang", language)
    if language == "ar":
        expect(page.locator("html")).to_have_attribute("dir", "rtl")
    violations = assert_accessible(page, label=f"{label} ({language})")
    # Minor and moderate findings do not fail the test; the log shows them.
    for v in violations:
        print(f"{label} ({language}): {v['id']} [{v['impact']}] x{len(v['nodes'])}")


@pytest.fixture
def breach(marketer, lawyer, security_officer):
    """A breach with some history: a step under way, notes, a plan awaiting sign-off."""
    incident = declare(marketer, title="Customer table exposed", kind=Kind.DATA_BREACH,
                       severity=Severity.SEV1, summary="Exported to a shared folder.")
    stakeholder_add(incident=incident, actor=marketer, user=lawyer, role="legal")
    stakeholder_add(incident=incident, actor=marketer, user=security_officer, role="security")
    step = incident.steps.get(number=2)
    step_set_status(step=step, actor=marketer, status="in_progress")
    checklist_item_add(step=step, actor=marketer, text="Revoke the shared link")
    for message in ("Leadership told on the call", "Folder owner found"):
        timeline_note_add(incident=incident, actor=marketer, message=message)
    plan_version_create(incident=incident, actor=marketer,
                        internal_steps="Rotate the database credentials",
                        subscriber_message="Your email address was exposed; we are sorry.")
    declare(marketer, title="Coupon code wrong", severity=Severity.SEV3)
    return incident


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_marketers_pages_have_no_serious_violation(browser, live_server, breach, language):
    page = login(browser, live_server, "maya", bypass_csp=True)
    choose_language(page, language)
    base = live_server.url

    check(page, f"{base}/incidents/", language, "incident list")

    page.goto(f"{base}/incidents/{breach.pk}/")
    open_step(page, 2)
    open_step(page, 5)
    expect(page.locator("#timeline-events")).to_contain_text("Folder owner found")
    violations = assert_accessible(page, label=f"war room ({language})")
    for v in violations:
        print(f"war room ({language}): {v['id']} [{v['impact']}] x{len(v['nodes'])}")

    check(page, f"{base}/incidents/{breach.pk}/apology/", language, "apology composer")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_lawyers_sign_off_page_has_no_serious_violation(browser, live_server, breach,
                                                            language):
    page = login(browser, live_server, "leo", bypass_csp=True)
    choose_language(page, language)
    check(page, f"{live_server.url}/incidents/{breach.pk}/signoff/", language, "sign-off")
    expect(page.locator("#approve-legal")).to_be_visible()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_crisis_summary_has_no_serious_violation(browser, live_server, breach, manager,
                                                     language):
    page = login(browser, live_server, "max", bypass_csp=True)
    choose_language(page, language)
    check(page, f"{live_server.url}/incidents/summary/", language, "crisis summary")
    expect(page.locator(f"#cell-{breach.pk}-2")).to_be_visible()


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_keyboard_focus_is_always_visible_with_enough_contrast(browser, live_server, breach):
    """What axe cannot see: each Tab stop shows an outline of 3:1 or more against the page
    and the cards it sits on (WCAG 2.4.7 and 1.4.11)."""
    page = login(browser, live_server, "maya")
    page.goto(f"{live_server.url}/incidents/{breach.pk}/")
    open_step(page, 2)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page_bg = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    card_bg = "rgb(255, 255, 255)"
    for _ in range(60):
        page.keyboard.press("Tab")
        where, style, width, colour = page.evaluate("""() => {
            const el = document.activeElement, s = getComputedStyle(el);
            return [el.id || el.outerHTML.slice(0, 60), s.outlineStyle,
                    parseFloat(s.outlineWidth), s.outlineColor]; }""")
        if where.startswith("<body"):
            break
        assert style != "none" and width >= 2, f"no visible focus on {where}"
        assert min(contrast(colour, page_bg), contrast(colour, card_bg)) >= 3, \
            f"focus outline {colour} too faint on {where}"
