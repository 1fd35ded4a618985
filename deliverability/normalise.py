"""Pure functions that turn one ESP event into our kind and a stable dedupe key.

anymail already maps each ESP's vocabulary onto its own event types; what it leaves out
is hard versus soft bounce, which each ESP spells differently and which decides whether a
subscriber is suppressed. The rules below follow each ESP's documented payload.
"""

import functools
import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .models import DeliveryKind

# anymail event_type -> our kind; "bounced" is refined per ESP by bounce_kind().
ANYMAIL_KINDS: dict[str, str] = {
    "delivered": DeliveryKind.DELIVERED,
    "bounced": DeliveryKind.BOUNCED_HARD,
    "deferred": DeliveryKind.DEFERRED,
    "complained": DeliveryKind.COMPLAINED,
    "unsubscribed": DeliveryKind.UNSUBSCRIBED,
    "rejected": DeliveryKind.REJECTED,
    # "failed": the ESP could not send it at all (rendering error...): never left.
    "failed": DeliveryKind.REJECTED,
    "opened": DeliveryKind.OPENED,
    "clicked": DeliveryKind.CLICKED,
}

# Postmark bounce Types that mean the address will never accept mail. anymail files
# BadEmailAddress and ManuallyDeactivated under "rejected" (Postmark did not send), but
# for the subscriber they are as final as a hard bounce: Postmark itself deactivates the
# address. A SubscriptionChange names the same reasons in SuppressionReason.
POSTMARK_HARD_TYPES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})

# SparkPost bounce classes that are permanent (invalid recipient, generic bounce with no
# RCPT, unsubscribe); the others are soft, block or administrative.
SPARKPOST_HARD_CLASSES = frozenset({"10", "30", "90"})


@functools.lru_cache(maxsize=64)
def esp_slug(esp_name: str) -> str:
    """anymail's display name ("Amazon SES") -> our key ("amazon_ses")."""
    return esp_name.strip().lower().replace(" ", "_")


def _get(mapping: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _sparkpost_event(esp_event: Any) -> Mapping:
    # anymail keeps SparkPost's wrapper: {"msys": {"message_event": {...}}}
    msys = _get(esp_event, "msys")
    if isinstance(msys, Mapping) and msys:
        inner = next(iter(msys.values()))
        if isinstance(inner, Mapping):
            return inner
    return {}


def _postmark_hard(esp_event: Any) -> bool:
    return (_get(esp_event, "Type") in POSTMARK_HARD_TYPES
            or _get(esp_event, "SuppressionReason") in POSTMARK_HARD_TYPES)


def bounce_kind(esp: str, esp_event: Any) -> str:
    """Hard or soft, for an event anymail calls "bounced"."""
    soft, hard = DeliveryKind.BOUNCED_SOFT, DeliveryKind.BOUNCED_HARD
    if esp == "amazon_ses":
        # SES sends both as Bounce; bounceType is Permanent, Transient or Undetermined.
        # Only Permanent suppresses: an undetermined bounce is not proof the address is dead.
        return hard if _get(esp_event, "bounce", "bounceType") == "Permanent" else soft
    if esp == "sendgrid":
        # SendGrid's bounce event carries type "bounce" (permanent) or "blocked" (soft).
        return soft if _get(esp_event, "type") == "blocked" else hard
    if esp == "mailgun":
        # anymail turns severity "temporary" into deferred; what stays bounced is permanent.
        severity = _get(esp_event, "event-data", "severity")
        return soft if severity == "temporary" else hard
    if esp == "postmark":
        return hard if _postmark_hard(esp_event) else soft
    if esp == "sparkpost":
        bounce_class = str(_sparkpost_event(esp_event).get("bounce_class", ""))
        return hard if bounce_class in SPARKPOST_HARD_CLASSES else soft
    if esp in ("brevo", "sendinblue", "mandrill"):
        return soft if _get(esp_event, "event") == "soft_bounce" else hard
    if esp == "mailjet":
        return soft if _get(esp_event, "hard_bounce") is False else hard
    if esp == "mailersend":
        return soft if "soft" in str(_get(esp_event, "type") or "") else hard
    if esp == "resend":
        return soft if _get(esp_event, "data", "bounce", "type") == "Transient" else hard
    return hard


def classify(*, esp: str, event_type: str, esp_event: Any) -> str:
    if esp == "sandbox":
        return event_type if event_type in DeliveryKind.values else DeliveryKind.OTHER
    kind = ANYMAIL_KINDS.get(event_type, DeliveryKind.OTHER)
    if esp == "postmark" and kind == DeliveryKind.REJECTED and _postmark_hard(esp_event):
        return DeliveryKind.BOUNCED_HARD
    if kind == DeliveryKind.BOUNCED_HARD:
        kind = bounce_kind(esp, esp_event)
    return kind


def dedupe_key(*, esp: str, event_id: str, message_id: str, event_type: str,
               occurred_at: datetime | None, recipient: str) -> uuid.UUID:
    """A stable 128-bit key: the ESP's event id where it gives one, else a hash of facts.

    The recipient is part of the key even with an event id: SES's id is the SNS
    notification's, shared by every recipient that notification lists.
    """
    if event_id:
        parts = ("id", esp, event_id, recipient)
    else:
        parts = ("facts", esp, message_id, event_type,
                 occurred_at.isoformat() if occurred_at else "", recipient)
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).digest()
    return uuid.UUID(bytes=digest)


def int_or_none(value: Any) -> int | None:
    """Metadata comes back as strings from some ESPs (SendGrid custom args)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
        return number if -(2**63) <= number < 2**63 else None
    return None


def our_ids(metadata: Any) -> tuple[str, int | None, int | None]:
    """(campaign_key, broadcast_id, recipient_id) from the metadata we sent with a message."""
    if not isinstance(metadata, Mapping):
        return "", None, None
    campaign = metadata.get("campaign_id")
    # strings and numbers only: a boolean or an object is nobody's id
    campaign_key = (str(campaign)[:100] if isinstance(campaign, str | int | float)
                    and not isinstance(campaign, bool) else "")
    return (campaign_key, int_or_none(metadata.get("broadcast_id")),
            int_or_none(metadata.get("recipient_id")))
