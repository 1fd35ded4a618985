"""Issue 10: the war room focuses on the step at hand, lets the team pause from step 2 at
once, follows other people's changes without a reload, and fits a phone."""

import re
import uuid

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from incidents.models import Incident
from messaging.models import Campaign, CampaignStatus
from tests.audiences.factories import campaign, segment, subscriber
from tests.browser import mark_done
from tests.conftest import PASSWORD
from tests.factories import declare

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()


def new_page(browser: Browser, base_url: str, username: str, **context) -> Page:
    page = browser.new_context(**context).new_page()
    sign_in(page, base_url, username)
    return page


def open_cards(page: Page) -> list[str]:
    return page.eval_on_selector_all("details.step-card[open]",
                                     "cards => cards.map(c => c.dataset.step)")


@pytest.mark.worker
def test_declare_then_pause_the_faulty_campaign_in_step_2_without_step_3(
        page: Page, live_server, celery_worker, marketer):
    everyone = segment("Everyone")
    people = [subscriber(f"p{i}@example.test", segments=(everyone,)) for i in range(4)]
    faulty = campaign("Black Friday — VIP preview", recipients=people)
    Campaign.objects.filter(pk=faulty.pk).update(
        status=CampaignStatus.SENDING, started_at=timezone.now(),
        esp_campaign_id=f"focus-{uuid.uuid4().hex[:10]}")

    sign_in(page, live_server.url, "maya")
    page.get_by_role("link", name="Declare an incident").first.click()
    page.get_by_label("What went wrong, in a line").fill("VIP preview went to everyone")
    page.get_by_label("Kind").select_option(label="Sent to the wrong segment")
    page.get_by_label(re.compile("Black Friday — VIP preview")).check()
    page.get_by_role("button", name="Declare").click()

    # Step 1 is the step at hand; step 2 opens from the tracker, its campaign ready.
    expect(page.locator("#step-1 > details.step-card")).to_have_attribute("open", "")
    assert open_cards(page) == ["1"]
    page.locator("#tracker").get_by_role("link", name=re.compile("Put out the fire")).click()
    expect(page.locator("#step-2 > details.step-card")).to_have_attribute("open", "")
    panel = page.locator("#containment")
    expect(panel.locator(f"#campaign-{faulty.pk}")).to_contain_text("Not asked yet")
    page.once("dialog", lambda d: d.accept())
    panel.get_by_role("button", name="Pause all sending campaigns").click()
    expect(panel.locator(f"#campaign-{faulty.pk}")).to_have_attribute(
        "data-outcome", "stopped", timeout=20_000)
    incident = Incident.objects.get(title="VIP preview went to everyone")
    assert incident.affected_audience.computed_at is None  # step 3 never touched
    # The stop proved the checklist item: Amends ticks it, and everyone's page shows it.
    expect(page.locator("#step-2").get_by_role(
        "checkbox", name=re.compile("Pause or cancel every campaign"))).to_be_checked(
        timeout=15_000)


def test_the_current_step_is_open_and_a_step_address_opens_its_step(page: Page, live_server,
                                                                      marketer):
    incident = declare(marketer, title="Coupon SORRY10 does not work")
    sign_in(page, live_server.url, "maya")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    assert open_cards(page) == ["1"]
    expect(page.locator("#step-1")).to_contain_text("Step at hand")
    page.locator("#step-1").get_by_role("button", name="Start").click()
    mark_done(page, 1)
    # The finished step stays open beside the next one, now the step at hand.
    expect(page.locator("#step-2 > details.step-card")).to_have_attribute("open", "")
    expect(page.locator("#step-2")).to_contain_text("Step at hand")
    expect(page.locator("#tracker .is-current")).to_contain_text("Put out the fire")

    page.goto(f"{live_server.url}/incidents/{incident.pk}/steps/4/")
    expect(page.locator("#step-4 > details.step-card")).to_have_attribute("open", "")
    assert "4" in open_cards(page)


def test_a_second_persons_page_follows_without_reload(browser: Browser, live_server,
                                                      marketer, lawyer):
    from incidents.services import stakeholder_add

    incident = declare(marketer, title="Dear <FirstName> in the subject")
    stakeholder_add(incident=incident, actor=marketer, user=lawyer, role="legal")
    url = f"{live_server.url}/incidents/{incident.pk}/"
    maya = new_page(browser, live_server.url, "maya")
    leo = new_page(browser, live_server.url, "leo")
    maya.goto(url)
    leo.goto(url)
    leo.evaluate("window.notReloaded = true")
    expect(leo.locator("#step-1 .status")).to_have_text("Not started")

    maya.locator("#step-1").get_by_role("button", name="Start").click()
    mark_done(maya, 1)
    expect(maya.locator("#step-1 .status")).to_have_text("Done")

    expect(leo.locator("#step-1 .status")).to_have_text("Done", timeout=15_000)
    expect(leo.locator("#tracker .is-current")).to_contain_text("Put out the fire")
    expect(leo.locator("#timeline-events")).to_contain_text("Maya")
    assert leo.evaluate("window.notReloaded") is True


def test_a_live_update_never_replaces_what_someone_is_typing(browser: Browser, live_server,
                                                             marketer, lawyer):
    from incidents.services import stakeholder_add

    incident = declare(marketer, title="Wrong country in the footer")
    stakeholder_add(incident=incident, actor=marketer, user=lawyer, role="legal")
    url = f"{live_server.url}/incidents/{incident.pk}/"
    maya = new_page(browser, live_server.url, "maya")
    leo = new_page(browser, live_server.url, "leo")
    maya.goto(url)
    leo.goto(url)
    draft = leo.locator("#add-1")
    draft.fill("Check the Dutch footer too")  # Leo is typing in step 1 and stays there

    maya.locator("#step-1").get_by_role("button", name="Start").click()
    expect(leo.locator("#incident-status")).to_have_text(re.compile("Declared|Acknowledged"),
                                                         timeout=15_000)
    expect(leo.locator("#timeline-events")).to_contain_text("set step 1 (Own the problem) to In "
                                                         "progress", timeout=15_000)
    expect(draft).to_have_value("Check the Dutch footer too")


@pytest.mark.parametrize("path", ["/incidents/", "/incidents/declare/", "/incidents/{pk}/",
                                  "/incidents/{pk}/steps/3/", "/incidents/{pk}/plan/",
                                  "/incidents/{pk}/apology/", "/incidents/signoffs/"])
def test_no_page_scrolls_sideways_on_a_phone(browser: Browser, live_server, marketer, path):
    incident = declare(marketer, title="A rather long incident title that has to wrap on a "
                                        "phone without pushing the page sideways")
    page = new_page(browser, live_server.url, "maya", viewport=PHONE)
    page.goto(live_server.url + path.format(pk=incident.pk))
    sizes = page.evaluate("({doc: document.documentElement.scrollWidth, view: innerWidth})")
    assert sizes["doc"] <= sizes["view"], sizes
