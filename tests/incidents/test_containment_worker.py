"""Step 2 end to end: a real Celery worker stops the campaign at a loopback Mailchimp and
the outcome reaches the incident timeline. The worker finds the loopback through its
environment (see tests/loopback/worker_esps.py)."""

import uuid

import pytest
from django.utils import timezone

from incidents.containment.services import incident_campaigns_stop
from incidents.models import AffectedAudience, EventKind
from messaging.models import Campaign, CampaignStatus, CampaignStop, EspAccount, StopOutcome
from tests.conftest import wait_for
from tests.factories import declare
from tests.loopback.worker_esps import MAILCHIMP as WORKER_ESP
from tests.loopback.worker_esps import MAILCHIMP_LABEL as WORKER_LABEL


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_cancels_at_mailchimp_through_429_and_503_and_logs_it(celery_worker,
                                                                          marketer):
    ref = f"w-{uuid.uuid4().hex[:10]}"
    WORKER_ESP.add_campaign(ref, status="sending", emails_sent=5210)
    WORKER_ESP.fail_next(429, retry_after="0", paths=ref)
    WORKER_ESP.fail_next(503, paths=ref)
    account = EspAccount.objects.create(label=WORKER_LABEL, provider="mailchimp")
    campaign = Campaign.objects.create(esp_account=account, esp_campaign_id=ref,
                                       name="Spring sale", status=CampaignStatus.SENDING,
                                       started_at=timezone.now())
    incident = declare(marketer)
    AffectedAudience.objects.create(incident=incident).campaigns.add(campaign)

    [stop] = incident_campaigns_stop(incident=incident, actor=marketer)  # enqueues on commit

    def settled():
        stop.refresh_from_db()
        return not stop.is_open

    wait_for(settled, timeout=30)
    assert stop.outcome == StopOutcome.STOPPED and stop.action == "cancel"
    assert stop.recipients_sent_before_stop == 5210
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert WORKER_ESP.campaigns[ref]["status"] == "canceled"
    ours = [c for c in WORKER_ESP.calls if ref in c.path]
    assert [c.status for c in ours if c.fault] == [429, 503]
    assert len([c for c in ours if c.path.endswith("/cancel-send") and not c.fault]) == 1
    event = incident.events.get(data__containment__stop=stop.pk)
    assert event.kind == EventKind.STEP and event.actor is None
    assert event.message.startswith(f"Campaign “Spring sale” stopped at {WORKER_LABEL}: "
                                    "Mailchimp cancelled the send")
    assert event.message.endswith("5,210 recipients had it before the stop.")
    assert CampaignStop.objects.filter(campaign=campaign).count() == 1
