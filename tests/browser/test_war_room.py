import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import mark_done, open_step
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Incidents")).to_be_visible()


def test_marketer_declares_and_works_steps_one_and_two(page: Page, live_server, marketer):
    sign_in(page, live_server.url, "maya")
    page.get_by_role("link", name="Declare an incident").first.click()
    page.get_by_label("What went wrong, in a line").fill("VIP sale sent to the whole list")
    page.get_by_label("Kind").select_option(label="Sent to the wrong segment")
    page.get_by_role("radio", name=re.compile("SEV2")).check()
    page.get_by_role("button", name="Declare").click()

    expect(page.get_by_role("heading", name="VIP sale sent to the whole list")).to_be_visible()
    expect(page.locator("#incident-status")).to_have_text("Declared")
    url_before = page.url

    step1 = page.locator("#step-1")
    step1.get_by_role("checkbox", name="Tell leadership what happened, in two sentences").check()
    timeline = page.locator("#timeline-events")
    expect(timeline).to_contain_text("ticked “Tell leadership what happened")
    expect(step1.locator(".status")).to_have_text("In progress")

    step2 = page.locator("#step-2")
    open_step(page, 2)
    step2.get_by_role("checkbox",
                      name="Pause or cancel every campaign still sending or scheduled").check()
    expect(timeline).to_contain_text("ticked “Pause or cancel every campaign")

    mark_done(page, 1, "Leadership heard it on the morning call")
    expect(page.locator("#step-1 .status")).to_have_text("Done")
    expect(timeline).to_contain_text("2 items left open: Leadership heard it on the morning call")
    mark_done(page, 2)
    expect(page.locator("#incident-status")).to_have_text("Contained")
    expect(timeline).to_contain_text("Status moved from Declared to Contained.")
    # htmx swapped fragments: the page itself never reloaded.
    assert page.url == url_before

    page.get_by_label("Add a note").fill("ESP confirms nothing else is queued.")
    page.get_by_role("button", name="Add note").click()
    expect(timeline).to_contain_text("ESP confirms nothing else is queued.")
