"""Browser tests share how a person signs in and opens a step of the war room."""

import re

from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD


def login(browser, live_server, username: str, **context_options) -> Page:
    """A signed-in page in a browser context of its own (one person, one context).

    context_options go to the new context (bypass_csp=True lets a test inject axe-core)."""
    page = browser.new_context(locale="en", **context_options).new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    expect(page.get_by_role("link", name="Incidents", exact=True)).to_be_visible()
    return page


def open_step(page: Page, number: int) -> None:
    """Open a step's card the way a person does: click its one-line summary if closed."""
    card = page.locator(f"#step-{number} > details.step-card")
    if card.get_attribute("open") is None:
        page.locator(f"#step-{number} > details.step-card > summary").click()
    expect(card).to_have_attribute("open", "")


def mark_done(page: Page, number: int, reason: str = "Handled on the call") -> None:
    """Mark a step done; with checklist items still open, say why, as the page asks."""
    step = page.locator(f"#step-{number}")
    anyway = step.locator("details.done-anyway")
    plain = step.get_by_role("button", name="Mark done", exact=True)
    expect(anyway.or_(plain).first).to_be_attached()  # the step's controls have arrived
    if anyway.count():
        anyway.locator("summary").click()
        step.get_by_label(re.compile("Why is the step done")).fill(reason)
    step.get_by_role("button", name="Mark done", exact=True).click()
