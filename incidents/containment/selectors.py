"""Reads of step 2: which campaigns a team may mark as faulty."""

from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from messaging.models import Campaign, CampaignStatus

RECENT_DAYS = 14


def campaigns_recent(*, days: int = RECENT_DAYS) -> QuerySet[Campaign]:
    """Campaigns a faulty send is likely among: still sending or scheduled, or started or
    created in the last `days` days; the live ones first."""
    since = timezone.now() - timedelta(days=days)
    live = Q(status__in=[CampaignStatus.SENDING, CampaignStatus.SCHEDULED])
    return (Campaign.objects.filter(live | Q(started_at__gte=since) | Q(created_at__gte=since))
            .select_related("esp_account").order_by("-started_at", "-created_at", "pk"))
