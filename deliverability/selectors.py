"""Reads: delivery counts and rates over a time window, set-based in SQL.

Every figure is one GROUP BY over DeliveryEvent: counts with FILTER (WHERE kind = ...)
and rates divided in SQL, bucketed with date_trunc (TruncHour / TruncDay) when asked.
Denominators: `sent` = delivered + hard + soft bounces (messages that reached a receiving
server's verdict); complaints and unsubscribes are per delivered message, as mailbox
providers count them. Rejected (never sent) and deferred (still trying) are counted apart.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, F, FloatField, Q, QuerySet, Value
from django.db.models.functions import Cast, Coalesce, NullIf, TruncDay, TruncHour

from .models import DeliveryEvent, DeliveryKind

COUNTS = {
    "delivered": DeliveryKind.DELIVERED,
    "bounced_hard": DeliveryKind.BOUNCED_HARD,
    "bounced_soft": DeliveryKind.BOUNCED_SOFT,
    "deferred": DeliveryKind.DEFERRED,
    "complained": DeliveryKind.COMPLAINED,
    "unsubscribed": DeliveryKind.UNSUBSCRIBED,
    "rejected": DeliveryKind.REJECTED,
}
# rate -> (numerator counts, denominator count)
RATES = {
    "delivered_rate": (("delivered",), "sent"),
    "bounce_rate": (("bounced_hard", "bounced_soft"), "sent"),
    "hard_bounce_rate": (("bounced_hard",), "sent"),
    "soft_bounce_rate": (("bounced_soft",), "sent"),
    "complaint_rate": (("complained",), "delivered"),
    "unsubscribe_rate": (("unsubscribed",), "delivered"),
}
GROUPS = {"esp_account": "esp_account", "campaign": "campaign_key", "broadcast": "broadcast_id"}


@dataclass(frozen=True)
class MailOf:
    """Some of our own mail: messaging campaigns and broadcasts, by primary key.

    An event belongs to it when it names one of the broadcasts (`broadcast_id`, from the
    metadata our send path puts on every message), carries one of the campaigns' ESP ids
    as its campaign key (metadata `campaign_id`), or has a message id from one of the
    campaigns' recipient logs (the ESP's own campaigns carry no metadata of ours).
    """

    campaign_ids: tuple[int, ...] = ()
    broadcast_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class EventFilters:
    esp_accounts: tuple[str, ...] = ()
    campaign_keys: tuple[str, ...] = ()
    broadcast_ids: tuple[int, ...] = ()
    # Only this mail (None: no such restriction; an empty MailOf matches nothing).
    mail_of: MailOf | None = None


def _mail_of_q(mail: MailOf) -> Q:
    from messaging.models import Campaign, CampaignRecipient

    q = Q(id__lt=0)  # matches nothing: an incident with no mail of its own has no rates
    if mail.broadcast_ids:
        q |= Q(broadcast_id__in=mail.broadcast_ids)
    if mail.campaign_ids:
        q |= Q(campaign_key__in=Campaign.objects.filter(pk__in=mail.campaign_ids)
               .values("esp_campaign_id"))
        # One hashed sub-plan over the campaigns' send logs; the window's time filter
        # (deliveryevent_time_kind) keeps the probe side small.
        q |= Q(message_id__in=CampaignRecipient.objects.filter(
            campaign_id__in=mail.campaign_ids).exclude(esp_message_id="")
            .values("esp_message_id"))
    return q


def _window(*, start: datetime, end: datetime, filters: EventFilters) -> QuerySet:
    qs = DeliveryEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end,
                                      kind__in=COUNTS.values())
    if filters.esp_accounts:
        qs = qs.filter(esp_account__in=filters.esp_accounts)
    if filters.campaign_keys:
        qs = qs.filter(campaign_key__in=filters.campaign_keys)
    if filters.broadcast_ids:
        qs = qs.filter(broadcast_id__in=filters.broadcast_ids)
    if filters.mail_of is not None:
        qs = qs.filter(_mail_of_q(filters.mail_of))
    return qs.order_by()


def _aggregates() -> dict:
    counts = {name: Count("id", filter=Q(kind=kind)) for name, kind in COUNTS.items()}
    counts["sent"] = Count("id", filter=Q(kind__in=[
        DeliveryKind.DELIVERED, DeliveryKind.BOUNCED_HARD, DeliveryKind.BOUNCED_SOFT]))
    return counts


def _rate_expressions() -> dict:
    rates = {}
    for name, (numerators, denominator) in RATES.items():
        numerator = F(numerators[0])
        for extra in numerators[1:]:
            numerator = numerator + F(extra)
        rates[name] = Cast(numerator, FloatField()) / NullIf(
            Cast(F(denominator), FloatField()), Value(0.0))
    return rates


def delivery_series(*, start: datetime, end: datetime, bucket: str = "hour",
                    filters: EventFilters = EventFilters(), group_by: tuple[str, ...] = ()
                    ) -> list[dict]:
    """Counts and rates per hour or day (and per esp_account / campaign / broadcast)."""
    trunc = {"hour": TruncHour, "day": TruncDay}[bucket]
    keys = [GROUPS[g] for g in group_by]
    qs = (_window(start=start, end=end, filters=filters)
          .annotate(bucket=trunc("occurred_at", tzinfo=UTC))
          .values("bucket", *keys).annotate(**_aggregates()).annotate(**_rate_expressions())
          .order_by("bucket", *keys))
    return list(qs)


def delivery_totals(*, start: datetime, end: datetime,
                    filters: EventFilters = EventFilters()) -> dict:
    """One row of counts and rates for the whole window (rates None when nothing sent)."""
    row = (_window(start=start, end=end, filters=filters)
           .aggregate(**{k: Coalesce(v, 0) for k, v in _aggregates().items()}))
    for name, (numerators, denominator) in RATES.items():
        total = row[denominator]
        row[name] = sum(row[n] for n in numerators) / total if total else None
    return row


def delivery_events_exist(*, start: datetime, end: datetime,
                          filters: EventFilters = EventFilters()) -> bool:
    return _window(start=start, end=end, filters=filters).exists()
