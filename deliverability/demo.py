"""Synthetic delivery events for the demo, stored through the same path as the sandbox
ESP's webhook (raw batch -> normalisation), until messaging's sandbox sends its own."""

import random
from datetime import datetime, timedelta

from anymail.signals import AnymailTrackingEvent
from django.db import transaction

from messaging.demo import FAULTY_ID

from . import services
from .ingest import raw_event_from_anymail
from .models import DeliveryKind, RawDeliveryEvent

DEMO_ACCOUNT = "sandbox-demo"

_ANYMAIL_TYPE = {DeliveryKind.BOUNCED_HARD: "bounced", DeliveryKind.BOUNCED_SOFT: "bounced"}


def _events(*, rng: random.Random, start: datetime, end: datetime, count: int,
            rates: dict[str, float], prefix: str, metadata: dict) -> list:
    seconds = max(1, int((end - start).total_seconds()))
    rows = []
    for i in range(count):
        roll, kind, acc = rng.random(), DeliveryKind.DELIVERED, 0.0
        for candidate, rate in rates.items():
            acc += rate
            if roll < acc:
                kind = candidate
                break
        event = AnymailTrackingEvent(
            event_type=_ANYMAIL_TYPE.get(kind, kind), event_id=f"{prefix}-{i}",
            message_id=f"{prefix}-msg-{i}", recipient=f"subscriber{i}@demo.amends.test",
            timestamp=start + timedelta(seconds=rng.randrange(seconds)),
            metadata={"esp_account": DEMO_ACCOUNT, **metadata},
            esp_event={"type": kind, "event_id": f"{prefix}-{i}"})
        event.event_type = kind  # the sandbox's own kinds, as its webhook records them
        rows.append(raw_event_from_anymail(event, "Sandbox"))
    return rows


@transaction.atomic
def demo_delivery_events_seed(*, declared_at: datetime, now: datetime,
                              daily_volume: int = 400, seed: int = 6) -> int:
    """30 calm days before `declared_at`, then the faulty send's fallout: complaints well
    over 0.3 % and bounces over 2 %. Idempotent; returns how many events were stored."""
    if RawDeliveryEvent.objects.filter(esp_account=DEMO_ACCOUNT).exists():
        return 0
    rng = random.Random(seed)
    calm = {DeliveryKind.BOUNCED_HARD: 0.004, DeliveryKind.BOUNCED_SOFT: 0.004,
            DeliveryKind.COMPLAINED: 0.0004, DeliveryKind.UNSUBSCRIBED: 0.002,
            DeliveryKind.OPENED: 0.2}
    rows = _events(rng=rng, start=declared_at - timedelta(days=30), end=declared_at,
                   count=daily_volume * 30, rates=calm, prefix="demo-before", metadata={})
    fallout = {DeliveryKind.BOUNCED_HARD: 0.025, DeliveryKind.BOUNCED_SOFT: 0.01,
               DeliveryKind.COMPLAINED: 0.006, DeliveryKind.UNSUBSCRIBED: 0.02,
               DeliveryKind.OPENED: 0.15}
    rows += _events(rng=rng, start=declared_at, end=max(now, declared_at), count=3000,
                    rates=fallout, prefix="demo-after", metadata={"campaign_id": FAULTY_ID})
    for start in range(0, len(rows), 1000):
        services.raw_events_store(esp="sandbox", rows=rows[start:start + 1000])
    return len(rows)
