"""Step 5 in the browser: send the apology, watch the bar move, pause, resume, finish."""

import re

import pytest
from playwright.sync_api import Page, expect

from messaging.models import Delivery
from tests.browser.test_war_room import sign_in
from tests.messaging.send_world import sendable_incident

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PEOPLE = 3000  # at 200 messages a second (lowered in the form): about 15 s to pause


def test_marketer_sends_pauses_resumes_and_the_apology_reaches_everyone_once(
        page: Page, live_server, celery_worker, marketer):
    world = sendable_incident(marketer, PEOPLE, tag="b")
    page.on("dialog", lambda dialog: dialog.accept())  # "Send to N people? ..."
    sign_in(page, live_server.url, "maya")
    page.goto(f"{live_server.url}/incidents/{world.incident.pk}/#step-5")

    step5 = page.locator("#step-5")
    step5.get_by_label(re.compile(f"Send to {PEOPLE} people")).check()
    # The account allows 5,000 a second; Maya lowers it to watch the bar (the form may
    # lower the account's limits, never raise them).
    step5.get_by_text("Sending speed", exact=True).click()
    step5.locator("#send-rate").fill("200")
    step5.locator("#send-apology").click()

    sent = page.locator("#send-count-sent")
    expect(sent).not_to_have_text("0", timeout=30_000)  # the page reloaded; the bar moves
    page.locator("#send-pause").click()
    expect(page.locator("#send-progress .tag")).to_have_text("Paused")
    paused_at = Delivery.objects.filter(state="sent").count()
    assert 0 < paused_at < PEOPLE

    page.locator("#send-resume").click()
    expect(page.locator("#send-progress .tag")).to_have_text("Completed", timeout=60_000)
    expect(sent).to_have_text(str(PEOPLE))
    expect(page.locator("#timeline-events")).to_contain_text("apology")
    # Everyone affected exactly once, nobody excluded.
    assert Delivery.objects.filter(state="sent").count() == PEOPLE
    assert not Delivery.objects.filter(subscriber__email__in=world.excluded).exists()
