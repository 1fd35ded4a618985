import re

import pytest
from playwright.sync_api import Page, expect

from audiences.models import SubscriberStatus
from tests.audiences.factories import campaign, segment, subscriber
from tests.browser import open_step
from tests.conftest import PASSWORD
from tests.factories import declare


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_compute_the_affected_audience_and_look_one_person_up(page: Page, live_server,
                                                               celery_worker, marketer):
    vip, everyone = segment("VIP"), segment("Everyone")
    people = [subscriber(f"person{i}@example.test", segments=(everyone,)) for i in range(5)]
    people.append(subscriber("vip@example.test", segments=(vip, everyone)))
    people.append(subscriber("left@example.test", SubscriberStatus.UNSUBSCRIBED,
                             segments=(everyone,)))
    campaign("Spring sale", recipients=people)
    incident = declare(marketer, title="Spring sale to everyone")

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(marketer.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("sign in|log in", re.I)).click()
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    open_step(page, 3)

    panel = page.locator("#assessment")
    panel.get_by_label(re.compile("Spring sale")).check()
    panel.get_by_role("button", name="Compute affected audience").click()
    # The worker computes it; the bar (or, as fast as it goes, the counts) comes back.
    expect(page.locator("#timeline-events")).to_contain_text(
        "started computing the affected audience")
    expect(page.locator('#audience-counts [data-count="reached"]')).to_have_text("7")
    expect(page.locator('#audience-counts [data-count="affected"]')).to_have_text("6")
    expect(page.locator('#audience-counts [data-count="unsubscribed"]')).to_have_text("1")
    expect(page.locator("#timeline-events")).to_contain_text(
        "computed the affected audience")

    lookup = page.locator(".lookup-form")
    lookup.get_by_label("Email address").fill("VIP@example.test")
    lookup.get_by_role("button", name="Look up").click()
    answer = page.locator("#lookup-answer")
    expect(answer).to_contain_text("Yes.")
    expect(answer).to_contain_text("Spring sale")
    expect(answer).to_contain_text("In the apology audience.")
