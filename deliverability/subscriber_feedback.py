"""The audiences side of the feedback port: delivery events change who we may mail.

Lives in deliverability because the dependency runs deliverability → audiences; audiences
offers plain services and knows nothing of events.
"""

from audiences.services import (
    subscriber_status_raise,
    subscriber_unsubscribe,
    suppression_entry_add,
)

from .models import DeliveryEvent, DeliveryKind

_STATUS_FOR = {DeliveryKind.BOUNCED_HARD: "bounced", DeliveryKind.COMPLAINED: "complained"}


class AudiencesPort:
    def suppress(self, *, email: str, reason: str, list_name: str,
                 event: DeliveryEvent) -> None:
        subscriber_status_raise(email=email, status=_STATUS_FOR[reason])
        suppression_entry_add(list_name=list_name, email=email,
                              reason=f"{reason} ({event.esp})", source=event.esp)

    def unsubscribe(self, *, email: str, event: DeliveryEvent) -> None:
        subscriber_unsubscribe(email=email, source=f"esp:{event.esp}")
