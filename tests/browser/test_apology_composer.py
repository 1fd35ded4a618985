import re

import pytest
from playwright.sync_api import Page, expect

from incidents.apology.models import Apology
from messaging.services import brand_template_ensure_demo
from tests.browser import open_step
from tests.browser.test_war_room import sign_in
from tests.factories import declare

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_fixes_a_noreply_sender_and_watches_the_preview(page: Page, live_server,
                                                                  marketer):
    brand_template_ensure_demo()
    incident = declare(marketer, title="VIP sale sent to the whole list")
    sign_in(page, live_server.url, "maya")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    open_step(page, 5)
    page.locator("#step-5").get_by_role("link", name="Write the apology").click()
    expect(page.get_by_role("heading", name="Apology email")).to_be_visible()

    checks = page.locator("#apology-checks")
    page.get_by_label("Sender address").fill("noreply@northwind.test")
    expect(checks).to_contain_text("Sender noreply@northwind.test is a no-reply address: "
                                   "people will answer this email and their replies matter.")

    page.get_by_label("Body in English").fill(
        "Dear {{ first_name }},\n\nWe are sorry: yesterday's VIP email reached everyone.")
    page.get_by_label("Sender address").fill("care@northwind.test")
    expect(checks).not_to_contain_text("no-reply address")
    expect(checks.locator("[data-code=noreply]")).to_have_count(0)

    preview = page.frame_locator("#preview-frame")
    expect(preview.locator("td.body")).to_contain_text(
        "Dear Alex, We are sorry: yesterday's VIP email reached everyone.")
    expect(preview.locator("td.brand-header")).to_contain_text("Northwind Goods")

    page.get_by_label("Body in English").fill(
        "Dear {{ first_name }},\n\nWe are sorry. Here is 20% off as a thank-you.")
    expect(preview.locator("td.body")).to_contain_text("Here is 20% off as a thank-you.")
    expect(page.locator("#preview-subject")).to_have_text("We made a mistake")

    page.get_by_label("Preview language").select_option("pl")
    expect(checks).to_contain_text("No Polish body: these readers get the English one.")
    expect(preview.locator("td.body")).to_contain_text("Dear Anna,")

    page.get_by_role("button", name="Save apology").click()
    expect(page.get_by_text("Apology saved (version 1).")).to_be_visible()
    apology = Apology.objects.get(incident=incident)
    assert apology.from_email == "care@northwind.test" and apology.version == 1
    assert re.search(r"20% off", apology.bodies["en"])
