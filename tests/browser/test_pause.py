import re
import uuid

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from incidents.assessment.services import affected_audience_compute
from messaging.models import Campaign, CampaignStatus, EspAccount
from tests.audiences.factories import campaign, segment, subscriber
from tests.browser import open_step
from tests.conftest import PASSWORD
from tests.factories import declare
from tests.loopback.worker_esps import MAILCHIMP, MAILCHIMP_LABEL


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_marketer_pauses_the_sending_campaigns_and_sees_the_esps_answer_live(
        page: Page, live_server, celery_worker, marketer):
    """The demo's story on a small scale: the Spring sale is still going out through the
    sandbox ESP, its reminder through a Mailchimp that answers slowly. One press
    (confirmed) asks both; each answer appears in place as the page polls."""
    everyone = segment("Everyone")
    people = [subscriber(f"person{i}@example.test", segments=(everyone,)) for i in range(6)]
    faulty = campaign("Spring sale — VIP early access", recipients=people)
    Campaign.objects.filter(pk=faulty.pk).update(
        status=CampaignStatus.SENDING, esp_campaign_id=f"browser-{uuid.uuid4().hex[:10]}")
    ref = f"browser-{uuid.uuid4().hex[:10]}"
    MAILCHIMP.add_campaign(ref, status="sending", emails_sent=1500)
    reminder = Campaign.objects.create(
        esp_account=EspAccount.objects.create(label=MAILCHIMP_LABEL, provider="mailchimp"),
        esp_campaign_id=ref, name="Spring sale reminder", status=CampaignStatus.SENDING,
        started_at=timezone.now())
    incident = declare(marketer, title="Spring sale sent to the whole list")
    affected_audience_compute(incident=incident, actor=marketer, campaigns=[faulty, reminder])

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(marketer.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    open_step(page, 2)

    panel = page.locator("#containment")
    sandbox_row = panel.locator(f"#campaign-{faulty.pk}")
    mailchimp_row = panel.locator(f"#campaign-{reminder.pk}")
    expect(sandbox_row).to_contain_text("Sending")
    expect(sandbox_row).to_contain_text("Not asked yet")
    expect(sandbox_row).to_contain_text("Nothing leaves this machine")  # what it can do
    expect(mailchimp_row).to_contain_text("Mailchimp can cancel a regular campaign")
    page.evaluate("window.amendsNoReload = true")

    MAILCHIMP.delay_next(3.0)  # Mailchimp takes its time: the page shows it waiting
    dialogs = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    panel.get_by_role("button", name="Pause all sending campaigns").click()

    expect(mailchimp_row).to_have_attribute("data-outcome", re.compile("pending|running"))
    expect(page.locator("#containment")).to_have_attribute("hx-trigger", "every 2s")
    expect(sandbox_row).to_have_attribute("data-outcome", "stopped", timeout=20_000)
    expect(sandbox_row).to_contain_text("Sandbox: campaign paused.")
    expect(sandbox_row.locator("td").last).to_have_text("6")  # sent before the stop
    expect(mailchimp_row).to_have_attribute("data-outcome", "stopped", timeout=20_000)
    expect(mailchimp_row).to_contain_text("Mailchimp cancelled the send")
    expect(mailchimp_row).to_contain_text("Cancelled")
    expect(mailchimp_row.locator("td").last).to_have_text(re.compile(r"1[,.\s]?500"))
    timeline = page.locator("#timeline-events")
    expect(timeline).to_contain_text("Campaign “Spring sale — VIP early access” stopped at "
                                     "Sandbox")
    expect(timeline).to_contain_text(f"Campaign “Spring sale reminder” stopped at "
                                     f"{MAILCHIMP_LABEL}")
    expect(page.locator("#containment")).not_to_have_attribute("hx-trigger", "every 2s")
    expect(panel.get_by_role("button", name="Pause all sending campaigns")).to_be_disabled()
    assert page.evaluate("window.amendsNoReload") is True  # updated in place, no reload
    assert dialogs and "pause" in dialogs[0]
