"""Issue 10: the war room is usable from the keyboard — few Tab presses to the note box."""

import re

import pytest
from playwright.sync_api import Page, expect

from incidents.models import EventKind
from incidents.services import timeline_note_add
from incidents.timeline import timeline_record
from tests.browser import login, open_step
from tests.browser.axe import assert_accessible
from tests.conftest import PASSWORD
from tests.factories import declare
from tests.messaging.send_world import sendable_incident

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
    assert to_step5 <= 22  # 20 before the header's language switcher (select, button)
    page.keyboard.press("Enter")
    # hashchange arrives as its own task: wait for the card rather than read it at once.
    expect(page.locator("#step-5 > details")).to_have_attribute("open", "")


# --- Issue 14: the war room works from the keyboard alone, and says what changes ----------

def test_steps_and_checklists_work_from_the_keyboard_and_focus_stays_put(browser, live_server,
                                                                         marketer):
    incident = declare(marketer, title="Coupon code wrong")
    step = incident.steps.get(number=3)
    first, second = step.items.order_by("position")[:2]
    page = login(browser, live_server, "maya")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")

    # The tracker opens a step (Enter on its link).
    page.locator("#tracker-link-3").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#step-3 > details.step-card")).to_have_attribute("open", "")

    # Enter on "Start": the step starts and focus stays on the step's status control
    # (now "Mark done…"), not thrown back to the top of the page.
    page.locator("#status-3").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#step-3 .status")).to_have_text("In progress")
    expect(page.locator("#status-3")).to_be_focused()

    # Space ticks an item; it is saved and focus stays on the box.
    box = page.locator(f"#tick-{first.pk}")
    box.focus()
    page.keyboard.press("Space")
    expect(page.locator(f"#item-{first.pk}")).to_have_class(re.compile("is-done"))
    expect(page.locator(f"#tick-{first.pk}")).to_be_focused()
    first.refresh_from_db()
    assert first.done

    # Enter on "move down": the order is saved and focus stays on the button (htmx finds it
    # by id in the new card).
    assert step.items.count() >= 3
    page.locator(f"#move-down-{first.pk}").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#step-3 .checklist-item").first).to_have_attribute(
        "id", f"item-{second.pk}")
    expect(page.locator(f"#move-down-{first.pk}")).to_be_focused()
    # Back up: the item is first again and has no "move up" any more, so focus goes to the
    # item itself (its box), not to the top of the page.
    page.keyboard.press("Shift+Tab")
    expect(page.locator(f"#move-up-{first.pk}")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#step-3 .checklist-item").first).to_have_attribute(
        "id", f"item-{first.pk}")
    expect(page.locator(f"#tick-{first.pk}")).to_be_focused()

    # The edit disclosure: Enter opens it, the text is changed and saved with Enter; the
    # disclosure closes and focus comes back to the item rather than the top of the page.
    page.locator(f"#item-{second.pk} details.edit > summary").focus()
    page.keyboard.press("Enter")
    page.locator(f"#edit-{second.pk}").fill("Check the coupon in the ESP")
    page.keyboard.press("Enter")
    expect(page.locator(f"label[for=tick-{second.pk}]")).to_have_text("Check the coupon in the ESP")
    expect(page.locator(f"#tick-{second.pk}")).to_be_focused()


def test_a_card_swapped_in_answers_the_first_key_through_htmx(browser, live_server, marketer):
    """A key pressed the moment a step card is swapped in (focus is already back on the new
    button) goes through htmx: it once posted the form natively, a full page load, when it
    came before htmx had wired up the new card's forms."""
    incident = declare(marketer, title="Coupon code wrong")
    step = incident.steps.get(number=3)
    first, second = step.items.order_by("position")[:2]
    page = login(browser, live_server, "maya")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/#step-3")
    # Ordering, not timing: the button is activated (what Enter does) in the first task after
    # the swap, before any timer htmx may have set for the swap.
    page.evaluate("""(id) => document.addEventListener("htmx:afterSwap", (e) => {
        if (e.detail.target.id !== "step-3" || window.pressed) { return; }
        window.pressed = true;
        setTimeout(() => document.getElementById(id).click(), 0);
    })""", f"move-down-{first.pk}")
    with page.expect_request(re.compile(rf"/items/{first.pk}/move/$")) as move:
        page.locator(f"#tick-{first.pk}").focus()
        page.keyboard.press("Space")  # the tick's answer swaps the card
    assert move.value.headers.get("hx-request") == "true"
    assert not move.value.is_navigation_request()
    expect(page.locator("#step-3 .checklist-item").first).to_have_attribute(
        "id", f"item-{second.pk}")
    assert page.evaluate("window.pressed") is True  # still the same page: no reload


def test_tab_goes_through_the_whole_war_room_and_out(browser, live_server, marketer):
    """No keyboard trap: from the top, Tab reaches the last control and leaves the page."""
    incident = declare(marketer, title="Wrong segment")
    page = login(browser, live_server, "maya")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    open_step(page, 2)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    seen = []
    for _ in range(400):
        page.keyboard.press("Tab")
        current = page.evaluate(
            "document.activeElement === document.body ? '' :"
            " (document.activeElement.id || document.activeElement.outerHTML.slice(0, 60))")
        if not current or (seen and current == seen[0]):
            break
        seen.append(current)
    else:
        pytest.fail(f"Tab never left the page; last stops: {seen[-5:]}")
    assert "id_message" in seen and "timeline-show" in seen  # the side column is reached
    assert any(s.startswith("tick-") for s in seen)  # and the open step's checklist


def test_a_new_timeline_entry_is_said_alone_and_the_list_is_not_re_read(browser, live_server,
                                                                        marketer, manager):
    incident = declare(marketer, title="Merge tags showed")
    timeline_note_add(incident=incident, actor=marketer, message="Older note")
    page = login(browser, live_server, "maya")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    events = page.locator("#timeline-events")
    expect(events).to_contain_text("Older note")
    expect(events).not_to_have_attribute("aria-live", re.compile("."))
    polite = page.locator("#announce-polite")
    expect(polite).to_have_attribute("aria-live", "polite")
    expect(polite).to_have_text("")

    # Someone else writes a note; the page's poll brings it and the polite region says it.
    timeline_note_add(incident=incident, actor=manager, message="Support has a script now")
    expect(events).to_contain_text("Support has a script now", timeout=30_000)
    expect(polite).to_have_text("New on the timeline: Note. Support has a script now")

    # The person's own note: the list is swapped, only the new entry is said.
    page.get_by_label("Add a note").fill("Legal is on the call ($& as typed)")
    page.get_by_role("button", name="Add note").click()
    expect(polite).to_have_text("New on the timeline: Note. Legal is on the call ($& as typed)")
    expect(page.locator("#id_message")).to_be_focused()

    # An alert is said at once (role=alert), not queued behind polite news.
    alert = page.locator("#announce-alert")
    expect(alert).to_have_attribute("role", "alert")
    timeline_record(incident=incident, actor=None, kind=EventKind.ALERT,
                    message="Complaint rate crosses 0.3 %")
    expect(alert).to_have_text("New on the timeline: Alert. Complaint rate crosses 0.3 %",
                               timeout=30_000)
    expect(polite).to_have_text("New on the timeline: Note. Legal is on the call ($& as typed)")


@pytest.mark.worker
def test_the_send_panel_works_from_the_keyboard_and_says_where_it_is(
        browser, live_server, celery_worker, marketer):
    people = 400  # at 10 a second (lowered in the form): time to pause by keyboard
    world = sendable_incident(marketer, people, tag="kb")
    page = login(browser, live_server, "maya", bypass_csp=True)
    page.on("dialog", lambda dialog: dialog.accept())  # "Send to N people? …"
    page.goto(f"{live_server.url}/incidents/{world.incident.pk}/#step-5")
    step5 = page.locator("#step-5")

    step5.locator("details.send-settings > summary").focus()
    page.keyboard.press("Enter")
    page.locator("#send-rate").focus()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("10")
    confirm = step5.get_by_label(re.compile(f"Send to {people} people"))
    confirm.focus()
    page.keyboard.press("Space")
    expect(confirm).to_be_checked()
    page.locator("#send-apology").focus()
    page.keyboard.press("Enter")
    status = page.locator("#send-progress .tag")
    expect(status).to_have_text("Sending", timeout=30_000)

    page.locator("#send-pause").focus()
    page.keyboard.press("Enter")
    expect(status).to_have_text("Paused")
    # The bar's region is swapped every 2 s; the page's polite region says the change once,
    # and focus lands on what replaced the pause button.
    expect(page.locator("#announce-polite")).to_contain_text("Apology send: Paused")
    expect(page.locator("#send-resume")).to_be_focused()
    assert_accessible(page, label="war room, send paused")

    # Cancelling: the confirmation box with Space, the button with Enter.
    cancel_box = page.locator("form.send-cancel input[name=confirm]")
    cancel_box.focus()
    page.keyboard.press("Space")
    page.locator("#send-cancel").focus()
    page.keyboard.press("Enter")
    expect(status).to_have_text("Cancelled")
    expect(page.locator("#announce-polite")).to_contain_text("Apology send: Cancelled")
