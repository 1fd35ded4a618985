"""Demo audience for the embedded run: 24,000 subscribers, segments, an old suppression
list and two campaigns with their recipient logs — one of them the faulty Spring sale.

Idempotent (nothing happens when the faulty campaign already exists) and fast on SQLite:
subscribers go in with bulk_create, everything derived from them with INSERT … SELECT.
"""

import random
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audiences.models import (
    Segment,
    SegmentMembership,
    Subscriber,
    SubscriberStatus,
    SuppressionEntry,
    SuppressionList,
)

from .models import Campaign, CampaignRecipient, CampaignStatus, EspAccount

SUBSCRIBERS = 24_000
DOMAIN = "customers.example"
FAULTY_ID = "demo-spring-vip"
NEWSLETTER_ID = "demo-newsletter-42"

FIRST = ["Ada", "Bram", "Chidi", "Dana", "Eitan", "Fatima", "Gosia", "Hana", "Ibrahim",
         "Joost", "Kasia", "Layla", "Maya", "Noor", "Omar", "Piotr", "Rivka", "Sari", "Tomasz",
         "Utari", "Wim", "Yusuf", "Zofia", "Dewi"]
LAST = ["Abdullah", "Bakker", "Cohen", "de Vries", "Effendi", "Friedman", "Gunawan",
        "Haddad", "Jansen", "Kowalski", "Levi", "Mansour", "Nowak", "Putri", "Santoso",
        "Visser", "Wiśniewska", "Zielinski"]
LOCALES = ["en"] * 5 + ["nl"] * 2 + ["pl"] * 2 + ["id", "ar", "he"]
CITIES = ["Amsterdam", "Warsaw", "Jakarta", "Tel Aviv", "Amman", "London", "Utrecht",
          "Kraków", "Surabaya", "Haifa"]

# Segment name → SQL condition on the subscriber's position p (0-based) or locale.
SEGMENTS = {
    "All subscribers": "1 = 1",
    "VIP customers": "p % 12 = 0",
    "Newsletter": "p % 4 <> 3",
    "Spring collection interest": "p % 4 = 1",
    "Lapsed buyers": "p % 8 = 5",
    "Netherlands": "locale = 'nl'",
}


def _status(i: int) -> str:
    if i % 400 == 17:
        return SubscriberStatus.COMPLAINED
    if i % 130 == 11:
        return SubscriberStatus.BOUNCED
    if i % 45 == 4:
        return SubscriberStatus.UNSUBSCRIBED
    return SubscriberStatus.ACTIVE


def _subscribers(now: datetime) -> None:
    rng = random.Random(2026)
    Subscriber.objects.bulk_create(
        (Subscriber(
            email=f"{(first := FIRST[i % len(FIRST)]).lower()}."
                  f"{(last := LAST[(i // len(FIRST)) % len(LAST)]).lower().replace(' ', '')}"
                  f".{i}@{DOMAIN}",
            name=f"{first} {last}", locale=LOCALES[rng.randrange(len(LOCALES))],
            status=_status(i), attributes={"city": CITIES[rng.randrange(len(CITIES))]},
            created_at=now - timedelta(days=rng.randrange(730)), updated_at=now)
         for i in range(SUBSCRIBERS)),
        batch_size=2000)


def _positions(cursor) -> str:
    """A derived table of demo subscribers with their 0-based position p."""
    cursor.execute(f"SELECT MIN(id) FROM {Subscriber._meta.db_table} WHERE email LIKE %s",
                   [f"%@{DOMAIN}"])
    first_id = int(cursor.fetchone()[0])
    return (f"(SELECT id, locale, status, email, id - {first_id} AS p FROM "
            f"{Subscriber._meta.db_table} WHERE email LIKE '%%@{DOMAIN}')")


def _recipients(cursor, positions: str, campaign: Campaign, *, where: str,
                start: datetime, minutes: int) -> None:
    """The send log, spread over `minutes`: one INSERT … SELECT per minute bucket."""
    for k in range(minutes):
        cursor.execute(f"""
            INSERT INTO {CampaignRecipient._meta.db_table}
                (campaign_id, subscriber_id, sent_at, esp_message_id)
            SELECT %s, s.id, %s, '<' || s.id || '.' || %s || '@sandbox.esp>'
            FROM {positions} s WHERE s.p %% {minutes} = {k} AND ({where.replace("%", "%%")})
        """, [
            campaign.pk, connection.ops.adapt_datetimefield_value(start + timedelta(minutes=k)),
            campaign.esp_campaign_id])


@transaction.atomic
def demo_audience_ensure() -> Campaign:
    """Create the demo audience and campaigns once; returns the faulty campaign."""
    existing = Campaign.objects.filter(esp_campaign_id=FAULTY_ID).first()
    if existing is not None:
        return existing
    now = timezone.now()
    _subscribers(now)
    segments = {name: Segment.objects.get_or_create(name=name)[0] for name in SEGMENTS}
    old_list, _ = SuppressionList.objects.get_or_create(
        name="2019 unsubscribes (old ESP export)",
        defaults={"source": "Mailchimp export, March 2019",
                  "description": "People who unsubscribed before the ESP migration."})
    with connection.cursor() as cursor:
        positions = _positions(cursor)
        for name, condition in SEGMENTS.items():
            cursor.execute(f"""
                INSERT INTO {SegmentMembership._meta.db_table}
                    (segment_id, subscriber_id, added_at)
                SELECT %s, s.id, %s FROM {positions} s WHERE {condition.replace('%', '%%')}
            """, [segments[name].pk, connection.ops.adapt_datetimefield_value(now)])
        # Former unsubscribers the migration re-imported as active, and some who left.
        cursor.execute(f"""
            INSERT INTO {SuppressionEntry._meta.db_table}
                (suppression_list_id, email, reason, added_at)
            SELECT %s, LOWER(s.email), 'unsubscribed in 2019', %s
            FROM {positions} s WHERE s.p %% 40 = 7
        """, [old_list.pk, connection.ops.adapt_datetimefield_value(now)])
    SuppressionEntry.objects.bulk_create(
        SuppressionEntry(suppression_list=old_list, email=f"former{i}@elsewhere.example",
                         reason="unsubscribed in 2019") for i in range(300))

    account, _ = EspAccount.objects.get_or_create(label="Sandbox ESP",
                                                  defaults={"provider": "sandbox"})
    newsletter_at = (now - timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                      microsecond=0)
    newsletter = Campaign.objects.create(
        esp_account=account, esp_campaign_id=NEWSLETTER_ID, name="Weekly newsletter #42",
        subject="New in: the spring collection", status=CampaignStatus.SENT,
        scheduled_at=newsletter_at, started_at=newsletter_at)
    newsletter.segments.set([segments["Newsletter"]])
    spring_at = now - timedelta(minutes=60)
    faulty = Campaign.objects.create(
        esp_account=account, esp_campaign_id=FAULTY_ID, name="Spring sale — VIP early access",
        subject="Your VIP early access: 30% off the spring collection",
        # Still going out when the incident is declared: step 2 pauses it (sandbox ESP).
        status=CampaignStatus.SENDING, scheduled_at=spring_at, started_at=spring_at)
    faulty.segments.set([segments["VIP customers"]])  # what was meant, not what happened
    with connection.cursor() as cursor:
        _recipients(cursor, positions, newsletter, start=newsletter_at, minutes=12,
                    where=f"status = 'active' AND {SEGMENTS['Newsletter']}")
        # The mistake: the whole list instead of the VIP segment, 09:12 to 09:31.
        _recipients(cursor, positions, faulty, start=spring_at, minutes=19,
                    where="1 = 1")
    return faulty
