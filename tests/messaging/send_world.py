"""An incident ready to send its apology: N affected people, some excluded (issue 4, send)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from audiences.models import Segment, SegmentMembership, Subscriber, SubscriberStatus
from incidents.apology.services import apology_save
from incidents.assessment.services import affected_audience_compute
from incidents.models import Incident, Kind
from messaging.models import Campaign, CampaignRecipient, CampaignStatus, EspAccount
from messaging.services import brand_template_ensure_demo
from tests.factories import declare

EXCLUDED_STATUSES = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED,
                     SubscriberStatus.COMPLAINED)


@dataclass
class SendWorld:
    incident: Incident
    included: set[str]
    excluded: set[str]


def sendable_incident(actor, n: int, *, excluded: int = 3, kind: str = Kind.WRONG_SEGMENT,
                      tag: str = "p", provider: str = "sandbox", **declare_kwargs
                      ) -> SendWorld:
    """`n` affected people (every fifth reads Dutch) plus `excluded` who got the faulty
    email but are unsubscribed, bounced or complained. The faulty campaign went out through
    an ESP account of `provider` (Postmark: the loopback account of send_worker.py), which
    is the account the apology goes through."""
    people = Subscriber.objects.bulk_create(
        [Subscriber(email=f"{tag}{i}@example.test", name=f"Person{i} Tester",
                    locale="nl" if i % 5 == 0 else "en") for i in range(n)]
        + [Subscriber(email=f"{tag}x{i}@example.test", name=f"Gone{i}",
                      status=EXCLUDED_STATUSES[i % 3]) for i in range(excluded)],
        batch_size=2000)
    segment = Segment.objects.create(name=f"Everyone {tag}")
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, subscriber=s) for s in people], batch_size=2000)
    from tests.messaging.send_worker import LOOPBACK_ACCOUNT

    label = {"sandbox": "Sandbox", "postmark": LOOPBACK_ACCOUNT}.get(provider, provider)
    account, _ = EspAccount.objects.get_or_create(label=label, defaults={"provider": provider})
    sent = timezone.now() - timedelta(hours=1)
    campaign = Campaign.objects.create(esp_account=account, esp_campaign_id=f"sale-{tag}",
                                       name=f"Spring sale {tag}", subject="Sale",
                                       status=CampaignStatus.SENT, started_at=sent)
    CampaignRecipient.objects.bulk_create(
        [CampaignRecipient(campaign=campaign, subscriber=s, sent_at=sent) for s in people],
        batch_size=2000)
    incident = declare(actor, **({"kind": kind} | declare_kwargs))
    affected_audience_compute(incident=incident, actor=actor, campaigns=[campaign])
    apology_save(incident=incident, actor=actor, expected_version=0,
                 subject="We made a mistake", from_name="Northwind",
                 from_email="care@northwind.test", reply_to="",
                 brand_template=brand_template_ensure_demo(), default_locale="en",
                 bodies={"en": "Dear {{ first_name }}, we sent you the wrong sale. Sorry.",
                         "nl": "Beste {{ first_name }}, we stuurden de verkeerde actie. "
                               "Sorry."},
                 protective_steps="Change your password." if kind == Kind.DATA_BREACH
                 else "")
    return SendWorld(incident=incident,
                     included={f"{tag}{i}@example.test" for i in range(n)},
                     excluded={f"{tag}x{i}@example.test" for i in range(excluded)})
