"""Small builders for audiences and messaging rows (bulk data goes through the importers)."""

from datetime import datetime, timedelta

from django.utils import timezone

from audiences.models import (
    Segment,
    SegmentMembership,
    Subscriber,
    SubscriberStatus,
    SuppressionEntry,
    SuppressionList,
)
from messaging.models import Campaign, CampaignRecipient, CampaignStatus, EspAccount


def subscriber(email: str, status: str = SubscriberStatus.ACTIVE, *,
               segments: tuple[Segment, ...] = (), name: str = "") -> Subscriber:
    sub = Subscriber.objects.create(email=email, status=status, name=name)
    SegmentMembership.objects.bulk_create(
        SegmentMembership(segment=s, subscriber=sub) for s in segments)
    return sub


def segment(name: str) -> Segment:
    return Segment.objects.create(name=name)


def suppress(list_name: str, *emails: str, reason: str = "asked not to be mailed"
             ) -> SuppressionList:
    sl, _ = SuppressionList.objects.get_or_create(name=list_name, defaults={"source": "test"})
    SuppressionEntry.objects.bulk_create(
        SuppressionEntry(suppression_list=sl, email=e.lower(), reason=reason) for e in emails)
    return sl


def campaign(name: str, *, recipients=(), sent_at: datetime | None = None,
             segments: tuple[Segment, ...] = ()) -> Campaign:
    account, _ = EspAccount.objects.get_or_create(label="Sandbox",
                                                  defaults={"provider": "sandbox"})
    sent_at = sent_at or timezone.now() - timedelta(hours=1)
    camp = Campaign.objects.create(esp_account=account, esp_campaign_id=name.lower(),
                                   name=name, subject=name, status=CampaignStatus.SENT,
                                   started_at=sent_at)
    camp.segments.set(segments)
    CampaignRecipient.objects.bulk_create(
        CampaignRecipient(campaign=camp, subscriber=s, sent_at=sent_at + timedelta(seconds=i),
                          esp_message_id=f"{name}-{s.pk}")
        for i, s in enumerate(recipients))
    return camp
