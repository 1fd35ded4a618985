"""What was sent and how: ESP accounts, campaigns mirrored from the ESP, who received them,
and the brand's email template the apology uses."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator
from django.db import models
from django.db.models import Q
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


# --- Brand template (the organisation's usual email look) ----------------------------

HEX_COLOUR = r"^#[0-9A-Fa-f]{6}$"
UNSUBSCRIBE_PLACEHOLDER = "{{ unsubscribe_url }}"

hex_colour = RegexValidator(
    HEX_COLOUR, _("Write the colour as # and six hex digits, for example #1F5FA8."))


def validate_image_location(value: str) -> None:
    """A logo is an absolute http(s) URL or a path on this site (an uploaded file)."""
    if value.startswith("/") and not value.startswith("//"):
        return
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        raise ValidationError(
            _("The logo must be an http(s) address or a path on this site starting with /."),
            code="invalid") from None


def validate_unsubscribe_link(value: str) -> None:
    if value.strip() == UNSUBSCRIBE_PLACEHOLDER:
        return
    try:
        URLValidator(schemes=["http", "https"])(value.replace(UNSUBSCRIBE_PLACEHOLDER, "x"))
    except ValidationError:
        raise ValidationError(
            _("The unsubscribe link must be %(placeholder)s (filled in per recipient) or an "
              "http(s) address.") % {"placeholder": UNSUBSCRIBE_PLACEHOLDER},
            code="invalid") from None


class BrandTemplate(models.Model):
    """The organisation's usual email look, set once and reused by every broadcast.

    Subscribers recognise their brand's usual mail; an apology that looks foreign is
    more likely to be ignored or reported as spam.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    brand_name = models.CharField(_("brand name"), max_length=100,
                                  help_text=_("Shown in the header when there is no logo."))
    logo_url = models.CharField(_("logo"), max_length=500, blank=True,
                                validators=[validate_image_location],
                                help_text=_("An https:// address or an uploaded file's path."))
    primary_color = models.CharField(_("primary colour"), max_length=7, default="#2F5F8A",
                                     validators=[hex_colour])
    text_color = models.CharField(_("text colour"), max_length=7, default="#1F2933",
                                  validators=[hex_colour])
    footer_text = models.TextField(_("footer text"), blank=True)
    unsubscribe_url = models.CharField(
        _("unsubscribe link"), max_length=500, default=UNSUBSCRIBE_PLACEHOLDER,
        validators=[validate_unsubscribe_link],
        help_text=_("Keep {{ unsubscribe_url }}: the sender fills it in for each recipient."))
    postal_address = models.TextField(
        _("postal address"),
        help_text=_("Anti-spam laws ask for a physical address in marketing mail."))
    is_default = models.BooleanField(_("default"), default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        verbose_name = _("brand template")
        verbose_name_plural = _("brand templates")
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True),
                                    name="brandtemplate_one_default"),
            models.CheckConstraint(condition=Q(primary_color__regex=HEX_COLOUR),
                                   name="brandtemplate_primary_color_hex"),
            models.CheckConstraint(condition=Q(text_color__regex=HEX_COLOUR),
                                   name="brandtemplate_text_color_hex"),
        ]

    def __str__(self) -> str:
        return self.name


# --- Campaign stops: pausing a campaign at its ESP (issue 4, step 2) -----------------------

class StopOutcome(models.TextChoices):
    PENDING = "pending", _("Waiting for the ESP")
    RUNNING = "running", _("Asking the ESP")
    STOPPED = "stopped", _("Stopped")
    NOT_POSSIBLE = "not_possible", _("Not possible")
    FAILED = "failed", _("Failed")


OPEN_STOP_OUTCOMES = (StopOutcome.PENDING, StopOutcome.RUNNING)


class StopAction(models.TextChoices):
    PAUSE = "pause", _("Pause")
    CANCEL = "cancel", _("Cancel")
    NONE = "none", _("None")


class CampaignStop(models.Model):
    """One request to stop one campaign at its ESP, and the ESP's answer.

    `requested_for` is whatever asked for the stop (an incident); messaging never looks
    into it — it only hands it back with the `campaign_stop_settled` signal — so the
    dependency stays one way (incidents → messaging).
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="stops",
                                 verbose_name=_("campaign"))
    requested_for_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.PROTECT,
                                           null=True, blank=True, related_name="+")
    requested_for_id = models.PositiveBigIntegerField(null=True, blank=True)
    requested_for = GenericForeignKey("requested_for_type", "requested_for_id")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     null=True, blank=True, related_name="+",
                                     verbose_name=_("requested by"))
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    action = models.CharField(_("action tried"), max_length=8, choices=StopAction.choices,
                              blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=StopOutcome.choices,
                               default=StopOutcome.PENDING)
    detail = models.TextField(_("ESP's answer"), blank=True)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    esp_status = models.CharField(_("status at the ESP"), max_length=64, blank=True)
    recipients_sent_before_stop = models.PositiveIntegerField(
        _("recipients sent before the stop"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = _("campaign stop")
        verbose_name_plural = _("campaign stops")
        constraints = [
            # A second click while a stop is under way must not ask the ESP twice.
            models.UniqueConstraint(fields=["campaign"],
                                    condition=Q(outcome__in=["pending", "running"]),
                                    name="campaignstop_one_open_per_campaign"),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True, outcome__in=["pending", "running"])
                | Q(finished_at__isnull=False,
                    outcome__in=["stopped", "not_possible", "failed"]),
                name="campaignstop_finished_when_final"),
        ]
        indexes = [models.Index(fields=["requested_for_type", "requested_for_id"],
                                name="campaignstop_requester_idx")]

    def __str__(self) -> str:
        return f"{self.campaign} · {self.get_outcome_display()}"

    @property
    def is_open(self) -> bool:
        return self.outcome in OPEN_STOP_OUTCOMES
