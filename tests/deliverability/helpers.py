import uuid
from datetime import datetime

from deliverability.models import DeliveryEvent


def add_events(kind: str, n: int, at: datetime, **fields) -> None:
    """n normalised events of one kind at one moment (unique dedupe keys)."""
    fields.setdefault("esp", "sandbox")
    fields.setdefault("esp_account", "sandbox")
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(kind=kind, occurred_at=at, dedupe_key=uuid.uuid4(),
                      recipient=f"{kind}{i}@example.com", **fields)
        for i in range(n))
