"""Done-when of issue 11, in a real browser: a manager keeps the crisis summary open while
marketing completes a step in another browser context; the manager's cell changes by
itself (the htmx poll), without a reload."""


import pytest
from playwright.sync_api import expect

from incidents.models import StepStatus
from incidents.services import step_set_status
from tests.browser import login, mark_done, open_step
from tests.factories import declare

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_manager_summary_follows_a_step_done_elsewhere(browser, live_server, marketer, manager):
    incident = declare(marketer, title="VIP sale sent to everyone")
    step_set_status(step=incident.steps.get(number=1), actor=marketer,
                    status=StepStatus.IN_PROGRESS)

    max_ = login(browser, live_server, "max")
    max_.get_by_role("link", name="Crisis summary").click()
    expect(max_.get_by_role("heading", name="Crisis summary")).to_be_visible()
    cell = max_.locator(f"#cell-{incident.pk}-1")
    expect(cell).to_have_attribute("data-state", "in_progress")
    expect(cell).to_contain_text("In progress")
    max_.evaluate("window.__stillTheSamePage = true")

    maya = login(browser, live_server, "maya")
    maya.goto(f"{live_server.url}/incidents/{incident.pk}/")
    open_step(maya, 1)
    expect(maya.locator("#step-1").get_by_label("Owner")).to_have_value(str(marketer.pk))
    mark_done(maya, 1, "Leadership was told on the call")
    expect(maya.locator("#step-1 .status")).to_have_text("Done")

    # The manager's page polls a cheap version and swaps the table when it changed.
    expect(cell).to_have_attribute("data-state", "done", timeout=30_000)
    expect(cell).to_contain_text("Done")
    assert max_.evaluate("window.__stillTheSamePage") is True

    # Owner and done-at: on keyboard focus as well as on hover.
    tip = max_.locator(f"#tip-{incident.pk}-1")
    expect(tip).to_be_hidden()
    max_.locator(f"#cell-{incident.pk}-1 .step-chip").focus()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("Owner: Maya")
    expect(tip).to_contain_text("Done at")
