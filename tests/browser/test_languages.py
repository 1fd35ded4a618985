"""Issue 14: the war room in Arabic and Hebrew reads right to left, and in Polish a count
of two to four takes the "few" plural form.

The language is chosen the way a person does, with the header's switcher. Expected texts
come from gettext/ngettext under the same language, so these tests hold whatever the
translators write; while a catalogue still lacks a string, the check that the page is
really translated (not English) is an expected failure that turns strict once it arrives.
"""

import os
from pathlib import Path

import pytest
from django.utils import translation
from django.utils.translation import gettext, ngettext
from playwright.sync_api import Page, expect

from incidents.models import ChecklistItem
from incidents.services import checklist_item_add, checklist_item_set_done, step_set_status
from tests.browser import login
from tests.factories import declare

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """docs/screenshots/<name> when it is missing or AMENDS_UPDATE_SCREENSHOTS=1 asks for a
    fresh one; otherwise a scratch file, so a test run leaves the working tree clean."""
    kept = SCREENSHOTS / name
    if os.environ.get("AMENDS_UPDATE_SCREENSHOTS") == "1" or not kept.exists():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return kept
    return tmp_path / name


def choose_language(page: Page, code: str) -> None:
    """The header's switcher: pick the language, press its button, land on the same page."""
    page.locator("#language-choice").select_option(code)
    page.locator(".language-switcher button").click()
    expect(page.locator("html")).to_have_attribute("lang", code)


@pytest.mark.parametrize("code", ["ar", "he"])
def test_war_room_reads_right_to_left(browser, live_server, marketer, code, tmp_path):
    incident = declare(marketer, title="Wrong coupon (SAVE-20) sent to 3 segments!")
    page = login(browser, live_server, "maya")
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    choose_language(page, code)

    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    # The tracker starts on the right: step 1's box lies to the right of step 2's.
    steps = page.locator("#tracker li")
    expect(steps).to_have_count(6)
    first, second = steps.nth(0).bounding_box(), steps.nth(1).bounding_box()
    assert first["x"] > second["x"] + second["width"] - 1
    # The steps column is on the right, the timeline beside it on the left.
    main, side = page.locator(".war-main").bounding_box(), page.locator(".war-side").bounding_box()
    assert main["x"] > side["x"]
    # An English title keeps its brackets and "!" where its author put them: it is isolated.
    title = page.locator(".war-title h1 bdi")
    expect(title).to_have_text("Wrong coupon (SAVE-20) sent to 3 segments!")
    assert page.evaluate("""() => {
        const r = document.createRange();
        r.selectNodeContents(document.querySelector('.war-title h1 bdi'));
        const rects = [...r.getClientRects()];
        return rects.length === 1;  // one unbroken run, not scattered pieces
    }""")
    # A closed step's disclosure marker points toward the page's start (the right).
    marker = page.evaluate("""() => getComputedStyle(
        document.querySelector('#step-2 > details.step-card:not([open]) > summary'),
        '::before').content""")
    assert "◂" in marker

    shot = screenshot_path(f"war-room-{code}.png", tmp_path)
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    # On a phone nothing spills past the left edge (where a right-to-left page can scroll).
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    sizes = page.evaluate("({doc: document.documentElement.scrollWidth, view: innerWidth})")
    assert sizes["doc"] <= sizes["view"], sizes


@pytest.mark.parametrize("code", ["ar", "he"])
def test_war_room_headings_are_translated(browser, live_server, marketer, code):
    incident = declare(marketer)
    page = login(browser, live_server, "maya")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    choose_language(page, code)

    with translation.override(code):
        timeline, stakeholders = gettext("Timeline"), gettext("Stakeholders")
    expect(page.locator("#timeline-title")).to_have_text(timeline)
    expect(page.locator("#stakeholders-title")).to_have_text(stakeholders)
    if timeline == "Timeline" or stakeholders == "Stakeholders":
        pytest.xfail(f"the {code} catalogue does not translate these headings yet")
    assert timeline != "Timeline" and stakeholders != "Stakeholders"


def test_polish_counts_three_open_items_with_the_few_form(browser, live_server, marketer):
    incident = declare(marketer)
    step = incident.steps.get(number=1)
    while step.items.count() < 3:
        checklist_item_add(step=step, actor=marketer, text=f"Item {step.items.count() + 1}")
    items = list(step.items.order_by("position", "id"))
    for item in items[3:]:
        checklist_item_set_done(item=item, actor=marketer, done=True)
    step.refresh_from_db()
    if step.status == "not_started":
        step_set_status(step=step, actor=marketer, status="in_progress")
    assert ChecklistItem.objects.filter(step=step, done=False).count() == 3

    page = login(browser, live_server, "maya")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    choose_language(page, "pl")

    with translation.override("pl"):
        expected = ngettext(
            "%(n)s checklist item is still open. Why is the step done?",
            "%(n)s checklist items are still open. Why is the step done?", 3) % {"n": 3}
        form = translation.trans_real.translation("pl").plural(3)
    assert form == 1  # Polish: one (0), few (1: 2-4, 22-24…), many (2)
    anyway = page.locator("#step-1 details.done-anyway")
    anyway.locator("summary").click()
    expect(page.locator("label[for='note-1']")).to_have_text(expected)
