"""What was sent and how: ESP accounts, campaigns mirrored from the ESP, who received them."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audiences.models import Segment, Subscriber


class EspAccount(models.Model):
    """Which ESP and which account. Credentials come from settings/env, never from here."""

    provider = models.CharField(_("provider"), max_length=32,
                                help_text=_("Adapter name, e.g. sandbox, mailchimp, sendgrid."))
    label = models.CharField(_("label"), max_length=100, unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return f"{self.label} ({self.provider})"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")
    SENT = "sent", _("Sent")


class Campaign(models.Model):
    esp_account = models.ForeignKey(EspAccount, on_delete=models.PROTECT,
                                    related_name="campaigns", verbose_name=_("ESP account"))
    esp_campaign_id = models.CharField(_("ESP campaign id"), max_length=128)
    name = models.CharField(_("name"), max_length=200)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=CampaignStatus.choices,
                              default=CampaignStatus.DRAFT)
    scheduled_at = models.DateTimeField(_("scheduled at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    segments = models.ManyToManyField(Segment, blank=True, related_name="+",
                                      verbose_name=_("segments"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["esp_account", "esp_campaign_id"],
                                    name="campaign_unique_esp_id"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignRecipient(models.Model):
    """One row per person a campaign reached (the ESP's send log)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE,
                                 related_name="recipients")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(_("sent at"))
    esp_message_id = models.CharField(_("ESP message id"), max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "subscriber"],
                                    name="campaign_recipient_unique"),
        ]
        indexes = [models.Index(fields=["subscriber"], name="recipient_subscriber_idx")]

    def __str__(self) -> str:
        return f"{self.campaign_id} → {self.subscriber_id}"
