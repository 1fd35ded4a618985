import pytest

from audiences.models import Segment, Subscriber, SuppressionEntry
from incidents.demo import demo_seed
from incidents.models import Incident
from messaging.demo import FAULTY_ID, SUBSCRIBERS
from messaging.models import Campaign, CampaignRecipient

pytestmark = pytest.mark.django_db


def test_demo_seed_builds_the_audience_once_and_links_the_faulty_campaign(db):
    demo_seed()
    counts = (Subscriber.objects.count(), Segment.objects.count(),
              SuppressionEntry.objects.count(), CampaignRecipient.objects.count())
    assert counts[0] == SUBSCRIBERS >= 20_000
    assert counts[1] >= 5 and counts[2] == 900
    assert Campaign.objects.count() == 2
    spring = Incident.objects.get(title="Spring sale sent to the whole list instead of VIPs")
    audience = spring.affected_audience
    assert list(audience.campaigns.values_list("esp_campaign_id", flat=True)) == [FAULTY_ID]
    assert audience.reached_count == SUBSCRIBERS
    assert 0 < audience.affected_count < SUBSCRIBERS
    assert set(audience.excluded_counts) == {"suppressed", "unsubscribed", "bounced",
                                             "complained"}
    demo_seed()  # idempotent
    assert (Subscriber.objects.count(), Segment.objects.count(),
            SuppressionEntry.objects.count(), CampaignRecipient.objects.count()) == counts
    assert spring.events.filter(message__contains="computed the affected audience").count() == 1
