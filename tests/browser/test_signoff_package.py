"""Done-when of issue 9, in a real browser with a real worker and SMTP server: security
declares a breach; legal receives the email, opens the link, approves; marketing edits one
word of the apology; both signatures show void; legal re-approves from the diff; the send
goes out."""

import re

import pytest
from playwright.sync_api import Page, expect

from incidents.models import Kind, Severity
from incidents.plan.services import plan_version_create
from incidents.services import stakeholder_add
from messaging.models import Delivery
from tests.browser.test_signoff_flow import login
from tests.conftest import wait_for
from tests.messaging.send_world import sendable_incident

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PEOPLE = 12
SIGN_PAGE = re.compile(r"/incidents/\d+/signoff/")


def mail_to(inbox, address: str, subject_part: str, after: int = 0):
    def find():
        for m in inbox.messages[after:]:
            if address in m.rcpt_tos and subject_part.encode() in m.content:
                return m
        return None
    return wait_for(find, timeout=60)


def sign_from_page(page: Page, base: str, path: str, role: str) -> None:
    page.goto(base + path)
    page.locator(f"#approve-{role}").click()
    expect(page.get_by_text("Your decision is recorded.")).to_be_visible()
    expect(page.locator(f"#withdraw-{role}")).to_be_visible()  # "Approved — withdraw?"
    expect(page.locator(f"#approve-{role}")).to_have_count(0)


def test_breach_signoff_covers_the_email_and_survives_one_word(
        browser, live_server, celery_worker, marketer, lawyer, security_officer):
    inbox = celery_worker["inbox"]
    before = len(inbox.messages)
    # Security declares the breach (the affected audience and the draft apology are there).
    world = sendable_incident(security_officer, PEOPLE, kind=Kind.DATA_BREACH,
                              severity=Severity.SEV1, tag="sig", title="Customer table exposed")
    incident = world.incident
    stakeholder_add(incident=incident, actor=security_officer, user=marketer,
                    role="marketing")
    plan_version_create(incident=incident, actor=security_officer,
                        internal_steps="Rotate the database credentials",
                        subscriber_message="Your email address was exposed; we are sorry.")

    # Legal was made a stakeholder and emailed a link to the sign page.
    request = mail_to(inbox, "leo@example.test", "your sign-off is required", before)
    path = SIGN_PAGE.search(request.content.decode()).group(0)
    base = live_server.url
    leo = login(browser, live_server, "leo")
    leo.goto(base + path)
    expect(leo.locator("#package-diff")).to_contain_text("we sent you the wrong sale")
    sign_from_page(leo, base, path, "legal")
    sam = login(browser, live_server, "sam")
    sign_from_page(sam, base, path, "security")

    # Marketing changes one word of the email.
    maya = login(browser, live_server, "maya")
    maya.goto(f"{base}/incidents/{incident.pk}/apology/")
    body = maya.get_by_label("Body in English")
    body.fill(body.input_value().replace("wrong sale", "wrong offer"))
    voided_mail_from = len(inbox.messages)
    maya.get_by_role("button", name="Save apology").click()
    expect(maya.get_by_text("Apology saved (version 2).")).to_be_visible()

    # Both signatures show void, and the send is refused with the reasons.
    maya.goto(f"{base}/incidents/{incident.pk}/")
    expect(maya.locator("#plan-panel details.voided")).to_contain_text("2 void signatures")
    expect(maya.locator("#plan-panel [data-role=legal]")).to_contain_text("waiting")
    expect(maya.locator("#send-apology")).to_be_disabled()
    expect(maya.locator("#send-gate-reasons")).to_contain_text(
        "Legal has not signed plan version 1")
    expect(maya.locator("#timeline-events")).to_contain_text(
        "The apology email changed (version 2: body (English))")

    # Legal is told to sign again, opens the link, reads the diff and re-approves.
    again = mail_to(inbox, "leo@example.test", "sign again", voided_mail_from)
    path = SIGN_PAGE.search(again.content.decode()).group(0)
    leo.goto(base + path)
    diff = leo.locator("#package-diff .is-changed")
    expect(diff).to_have_count(1)
    expect(diff.locator("ins")).to_contain_text("we sent you the wrong offer")
    expect(diff.locator("del")).to_contain_text("we sent you the wrong sale")
    sign_from_page(leo, base, path, "legal")
    sign_from_page(sam, base, path, "security")

    # The send goes out, to everyone affected, once.
    maya.on("dialog", lambda dialog: dialog.accept())
    maya.goto(f"{base}/incidents/")  # leave the war room, so it loads afresh at step 5
    maya.goto(f"{base}/incidents/{incident.pk}/#step-5")
    step5 = maya.locator("#step-5")
    step5.get_by_label(re.compile(f"Send to {PEOPLE} people")).check()
    step5.locator("#send-apology").click()
    expect(maya.locator("#send-progress .tag")).to_have_text("Completed", timeout=60_000)
    expect(maya.locator("#send-count-sent")).to_have_text(str(PEOPLE))
    assert Delivery.objects.filter(state="sent").count() == PEOPLE
