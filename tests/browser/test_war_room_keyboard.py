"""Issue 10: the war room is usable from the keyboard — few Tab presses to the note box."""

import re

import pytest
from playwright.sync_api import Page

from tests.conftest import PASSWORD
from tests.factories import declare

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def tabs_until(page: Page, predicate: str, limit: int = 200) -> int:
    """How many Tab presses from the top of the page until `predicate` (JS) holds."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate(predicate):
            return presses
    return limit + 1


def test_the_note_box_and_each_step_are_a_few_tabs_away(page: Page, live_server, marketer):
    incident = declare(marketer, title="Dear <FirstName> in the subject")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("maya")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    to_note = tabs_until(page, "document.activeElement.id === 'id_message'")
    print(f"\nTab presses to 'Add a note': {to_note}")
    assert to_note <= 60  # was 146 with every step open
    # The tracker links reach each step's card (they act as skip links) and open it.
    to_step5 = tabs_until(page, "document.activeElement.getAttribute('href') === '#step-5'")
    assert to_step5 <= 20
    page.keyboard.press("Enter")
    assert page.evaluate("document.querySelector('#step-5 > details').open")
