"""What happened to mail after it left: raw webhook payloads and normalised events.

Webhooks store a RawDeliveryEvent per ESP event (grouped in one RawDeliveryBatch per
request) and answer at once; a Celery task turns pending batches into DeliveryEvents,
one per (esp, dedupe_key), so a redelivered batch adds nothing. Subscriber, campaign and
broadcast are kept as the identifiers the ESP sent back (recipient email, ESP message id,
our metadata); `services.delivery_events_link` is where foreign keys to messaging and
audiences will be filled once those models exist.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DeliveryKind(models.TextChoices):
    DELIVERED = "delivered", _("Delivered")
    BOUNCED_HARD = "bounced_hard", _("Hard bounce")
    BOUNCED_SOFT = "bounced_soft", _("Soft bounce")
    DEFERRED = "deferred", _("Deferred")
    COMPLAINED = "complained", _("Spam complaint")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    REJECTED = "rejected", _("Rejected by the ESP")
    OPENED = "opened", _("Opened")
    CLICKED = "clicked", _("Clicked")
    OTHER = "other", _("Other")


class RawDeliveryBatch(models.Model):
    """One webhook request's events: the unit the normalisation task claims.

    Claiming small batch rows (FOR UPDATE SKIP LOCKED) keeps the raw event table
    insert-only: nothing rewrites the wide JSON rows after they land.
    """

    received_at = models.DateTimeField(default=timezone.now)
    esp = models.CharField(max_length=40)
    event_count = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Repairs made to store this request's content, summed (see deliverability/repair.py):
    # {"nul": 3, "timestamp": 1, "depth": 1, "unicode": 0}; empty when nothing was wrong.
    repairs = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["id"], name="rawdeliverybatch_pending",
                         condition=Q(processed_at__isnull=True)),
            # Retention (services.raw_events_prune) walks processed batches by age.
            models.Index(fields=["received_at"], name="rawdeliverybatch_processed",
                         condition=Q(processed_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.esp} batch {self.pk} ({self.event_count})"


class RawDeliveryEvent(models.Model):
    """One ESP event exactly as received, with anymail's normalised fields beside it.

    Written by the webhook in one bulk insert per request, never changed afterwards.
    """

    batch = models.ForeignKey(RawDeliveryBatch, on_delete=models.CASCADE,
                              related_name="events")
    esp = models.CharField(max_length=40)
    esp_account = models.CharField(max_length=100)
    # anymail's normalised event_type ("bounced", "delivered", ...), or the sandbox's kind.
    event_type = models.CharField(max_length=32)
    # Our kind, dedupe key and ids are pure functions of the payload, computed on receipt
    # (microseconds) so that normalisation is one set-based statement; normalise.py can be
    # re-run over esp_event should the mapping change.
    kind = models.CharField(max_length=16, choices=DeliveryKind.choices)
    dedupe_key = models.UUIDField()
    event_id = models.CharField(max_length=255, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    recipient = models.CharField(max_length=254, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    # Our identifiers read from the metadata on receipt (see normalise.our_ids).
    campaign_key = models.CharField(max_length=100, blank=True)
    broadcast_id = models.BigIntegerField(null=True, blank=True)
    recipient_id = models.BigIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    reject_reason = models.CharField(max_length=32, blank=True)
    description = models.TextField(blank=True)
    mta_response = models.TextField(blank=True)
    esp_event = models.JSONField(null=True, blank=True)
    # What had to be repaired to store this event, with counts, and the original value of
    # a dropped timestamp when jsonb could not hold it (Infinity): see repair.py.
    repairs = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.recipient}"


class DeliveryEvent(models.Model):
    """One deduplicated delivery outcome or engagement event."""

    esp = models.CharField(max_length=40)
    # A string key for now ("sendgrid", or metadata["esp_account"]); messaging's
    # EspAccount will be matched on it.
    esp_account = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=DeliveryKind.choices)
    occurred_at = models.DateTimeField()
    dedupe_key = models.UUIDField()
    event_id = models.CharField(max_length=255, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    recipient = models.CharField(max_length=254, blank=True)
    # Our metadata, echoed back by the ESP (see messaging's send path).
    campaign_key = models.CharField(max_length=100, blank=True)
    broadcast_id = models.BigIntegerField(null=True, blank=True)
    recipient_id = models.BigIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)
    # Who it was about, matched on the address after normalisation (services.
    # delivery_events_link); empty for addresses we do not know.
    subscriber = models.ForeignKey("audiences.Subscriber", on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="delivery_events")
    # The raw row it came from. Not a foreign key: raw payloads may be pruned on their own
    # schedule, and an FK check per row is a cost the ingest path does not need.
    raw_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set once every registered listener (feedback) has seen the event.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["esp", "dedupe_key"],
                                    name="deliveryevent_unique_per_esp"),
        ]
        indexes = [
            models.Index(fields=["occurred_at", "kind"], name="deliveryevent_time_kind"),
            models.Index(fields=["esp_account", "occurred_at"], name="deliveryevent_account"),
            models.Index(fields=["broadcast_id", "occurred_at"], name="deliveryevent_broadcast",
                         condition=Q(broadcast_id__isnull=False)),
            models.Index(fields=["message_id"], name="deliveryevent_message"),
            models.Index(fields=["id"], name="deliveryevent_undispatched",
                         condition=Q(dispatched_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.recipient} ({self.esp})"


class SnsSubscriptionConfirmation(models.Model):
    """An Amazon SNS SubscriptionConfirmation that reached the SES webhook.

    Recorded whether or not it could be confirmed, so an operator who sees "not
    confirmed" has the SubscribeURL to confirm it by hand (SNS console or a browser).
    """

    class Outcome(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed")
        NOT_CONFIRMED = "not_confirmed", _("Not confirmed")

    received_at = models.DateTimeField(default=timezone.now)
    topic_arn = models.CharField(max_length=256)
    message_id = models.CharField(max_length=100)
    subscribe_url = models.URLField(max_length=2000)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.topic_arn} ({self.get_outcome_display()})"
