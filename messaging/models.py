"""What was sent and how: ESP accounts, campaigns mirrored from the ESP, who received them,
and the brand's email template the apology uses."""

import json

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator, URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from audiences.models import Segment, Subscriber
from core.sentences import render as render_sentences


class EspAccount(models.Model):
    """Which ESP and which account, and the account's real sending limits. Credentials come
    from settings/env (the account's secret variables), never from here."""

    provider = models.CharField(_("provider"), max_length=32,
                                help_text=_("Adapter name, e.g. sandbox, mailchimp, sendgrid."))
    label = models.CharField(_("label"), max_length=100, unique=True)
    rate_per_second = models.PositiveIntegerField(
        _("sending rate (messages per second)"), null=True, blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("The most messages a second this account may send (your plan or quota "
                    "with the ESP). Empty: the ESP's usual default."))
    batch_size = models.PositiveIntegerField(
        _("messages per ESP call"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Empty: the most the ESP's batch API takes in one call."))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return f"{self.label} ({self.provider})"

    def clean(self) -> None:
        from .esp.registry import Provider, send_limits

        super().clean()
        if self.provider not in Provider.values:
            raise ValidationError({"provider": _(
                "“%(provider)s” is not an ESP Amends knows; choose one of %(known)s.") % {
                "provider": self.provider, "known": ", ".join(Provider.values)}})
        limits = send_limits(self.provider)
        if limits is None:
            if self.rate_per_second or self.batch_size:
                raise ValidationError(_(
                    "Amends does not send mail through %(esp)s (it only controls its "
                    "campaigns): leave the rate and the batch size empty.") % {
                    "esp": Provider(self.provider).label})
            return
        cap = min(limits.max_per_call, MAX_BATCH)
        if self.batch_size and self.batch_size > cap:
            raise ValidationError({"batch_size": _(
                "%(esp)s takes at most %(max)s messages in one call; %(n)s is more.") % {
                "esp": Provider(self.provider).label, "max": cap, "n": self.batch_size}})


MAX_BATCH = 1000  # the ledger claims at most this many rows a batch (Broadcast constraint)


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
    RESUMED = "resumed", _("Resumed")
    NOT_POSSIBLE = "not_possible", _("Not possible")
    FAILED = "failed", _("Failed")


OPEN_STOP_OUTCOMES = (StopOutcome.PENDING, StopOutcome.RUNNING)


class StopRequest(models.TextChoices):
    """What was asked of the ESP: stop (pause where it can), resume a paused campaign, or
    cancel it for good."""

    STOP = "stop", _("Stop")
    RESUME = "resume", _("Resume")
    CANCEL = "cancel", _("Cancel")


class StopAction(models.TextChoices):
    PAUSE = "pause", _("Pause")
    CANCEL = "cancel", _("Cancel")
    RESUME = "resume", _("Resume")
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
    request = models.CharField(_("request"), max_length=8, choices=StopRequest.choices,
                               default=StopRequest.STOP)
    action = models.CharField(_("action tried"), max_length=8, choices=StopAction.choices,
                              blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=StopOutcome.choices,
                               default=StopOutcome.PENDING)
    detail = models.TextField(_("ESP's answer"), blank=True)
    # The same answer untranslated, when we worded it (core.sentences), to read it in the
    # reader's language; `detail` keeps the English (and an ESP's own words).
    detail_said = models.JSONField(default=list, blank=True)
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
                    outcome__in=["stopped", "resumed", "not_possible", "failed"]),
                name="campaignstop_finished_when_final"),
        ]
        indexes = [models.Index(fields=["requested_for_type", "requested_for_id"],
                                name="campaignstop_requester_idx")]

    def __str__(self) -> str:
        return f"{self.campaign} · {self.get_outcome_display()}"

    @property
    def is_open(self) -> bool:
        return self.outcome in OPEN_STOP_OUTCOMES

    @property
    def detail_text(self) -> str:
        """The answer in the active language: our sentences translated, an ESP's words (or
        rows from before) as they were written, a capability explanation looked up."""
        if self.detail_said:
            try:
                return render_sentences(self.detail_said)
            except (KeyError, TypeError, ValueError):
                return self.detail
        return gettext(self.detail) if self.detail.strip() else self.detail
# --- Broadcasts and their delivery ledger (issue 4, send) ------------------------------
# A Broadcast is a message we send ourselves (the apology), one Delivery row per person.
# The ledger makes sending exactly-once: see messaging/broadcasts.py for the state machine.

class BroadcastStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


class Broadcast(models.Model):
    """What we send: the content rendered once per locale (per-recipient merge tags such as
    `{{ first_name }}` left in, filled by the sender), how fast, and how far it got."""

    source_ref = models.CharField(
        _("source"), max_length=64, db_index=True,
        help_text=_("Who asked for it, e.g. incident:12 (messaging knows nothing of "
                    "incidents)."))
    content_version = models.PositiveIntegerField(_("content version"), default=1)
    subject = models.CharField(_("subject"), max_length=300)
    from_email = models.EmailField(_("sender address"))
    from_name = models.CharField(_("sender name"), max_length=100, blank=True)
    reply_to = models.EmailField(_("reply-to address"), blank=True)
    brand_template = models.ForeignKey(BrandTemplate, on_delete=models.PROTECT, null=True,
                                       blank=True, related_name="+",
                                       verbose_name=_("brand template"))
    default_locale = models.CharField(_("default language"), max_length=8)
    # {locale: {"subject": ..., "html": ..., "text": ...}}
    bodies = models.JSONField(_("rendered bodies"), default=dict)
    # The account it goes through (the incident's ESP account); its credentials come from
    # settings.AMENDS_ESP_ACCOUNTS like a campaign stop's. `provider` is copied from it.
    esp_account = models.ForeignKey(EspAccount, on_delete=models.PROTECT, null=True,
                                    blank=True, related_name="+",
                                    verbose_name=_("ESP account"))
    provider = models.CharField(_("ESP"), max_length=32)
    status = models.CharField(_("status"), max_length=16, choices=BroadcastStatus.choices,
                              default=BroadcastStatus.DRAFT)
    rate_per_second = models.PositiveIntegerField(
        _("rate limit (messages per second)"), default=200)
    batch_size = models.PositiveIntegerField(_("batch size"), default=500)
    parallelism = models.PositiveSmallIntegerField(
        _("parallel batches"), default=2,
        help_text=_("How many batch tasks run at once (Celery worker processes)."))
    recipient_count = models.PositiveIntegerField(_("recipients"), default=0)
    # Pacing (the rate limit, timed by the database clock) and the driver's heartbeat.
    next_slot_at = models.DateTimeField(null=True, blank=True)
    claim_cursor = models.BigIntegerField(default=0)  # claims look at ids above it first
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    # The last time the ESP was asked about rows in doubt, and what it answered when it
    # could not tell (shown in the panel; the watchdog asks again while rows stay in doubt).
    reconciled_at = models.DateTimeField(_("last asked the ESP"), null=True, blank=True)
    reconcile_error = models.CharField(_("ESP's answer"), max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("broadcast")
        verbose_name_plural = _("broadcasts")
        constraints = [
            models.CheckConstraint(condition=Q(batch_size__gte=1, batch_size__lte=1000),
                                   name="broadcast_batch_size_1_1000"),
            models.CheckConstraint(condition=Q(rate_per_second__gte=1),
                                   name="broadcast_rate_positive"),
            models.CheckConstraint(condition=Q(parallelism__gte=1, parallelism__lte=16),
                                   name="broadcast_parallelism_1_16"),
            models.CheckConstraint(condition=Q(status__in=BroadcastStatus.values),
                                   name="broadcast_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} ({self.get_status_display()})"


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Waiting")
    CLAIMED = "claimed", _("Being sent")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    IN_DOUBT = "in_doubt", _("In doubt")
    RESOLVED_SENT = "resolved_sent", _("Sent (confirmed by the ESP)")
    RESOLVED_MISSING = "resolved_missing", _("Not received by the ESP")
    CANCELLED = "cancelled", _("Not sent (cancelled)")


class Delivery(models.Model):
    """One person of one broadcast. Rows move pending → claimed → sent / failed / in_doubt;
    in_doubt → resolved_sent / resolved_missing after reconciliation. A claimed row never
    goes back to pending once the ESP may have seen it."""

    # No index of its own: the unique (broadcast, subscriber) index leads with it. Every
    # index costs an insert per row change (two changes per message), so only what the
    # claim, the sweep and the progress queries need exists.
    # No database constraint on these two either: PostgreSQL checks a foreign key row by
    # row, and for a million-row ledger the two checks took 13 s at commit, most of the
    # time between the click and the first message. The ledger is only ever made by one
    # INSERT … SELECT of existing subscribers into a broadcast made in the same transaction
    # (deliveries_materialise), and deleting goes through the ORM (CASCADE, PROTECT).
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE,
                                  related_name="deliveries", db_index=False,
                                  db_constraint=False)
    # No index of its own either (one more index insert per row change); deleting a
    # subscriber who has deliveries is refused anyway (PROTECT: the send log stays).
    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="+",
                                   db_index=False, db_constraint=False)
    # Who exactly we send to, copied when the ledger is made (the audience snapshot).
    email = models.CharField(_("email"), max_length=254)
    name = models.CharField(_("name"), max_length=200, blank=True)
    locale = models.CharField(_("locale"), max_length=16, blank=True)
    state = models.CharField(_("state"), max_length=16, choices=DeliveryState.choices,
                             default=DeliveryState.PENDING)
    claim_token = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    esp_message_id = models.CharField(_("ESP message id"), max_length=200, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+", db_index=False)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "subscriber"],
                                    name="delivery_once_per_broadcast"),
            models.CheckConstraint(condition=Q(state__in=DeliveryState.values),
                                   name="delivery_state_valid"),
        ]
        indexes = [
            # Only open rows (pending, claimed, in doubt): the claim takes pending rows in id
            # order, the sweep finds old claims, reconciliation finds rows in doubt. A row
            # leaves the index when it is settled, so it stays small however big the send.
            models.Index(fields=["broadcast", "state", "id"], name="delivery_open_idx",
                         condition=Q(state__in=["pending", "claimed", "in_doubt"])),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.state})"


class ListColumn(models.Field):
    """A list of `base` values in one column: a native array on PostgreSQL (built and
    taken apart by the server, several times faster than JSON there), JSON text elsewhere.
    Read and written only by the ledger's own SQL (messaging/broadcasts.py)."""

    def __init__(self, *args, base: str = "text", **kwargs) -> None:
        self.base = base
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["base"] = self.base
        return name, path, args, kwargs

    def db_type(self, connection) -> str:
        return f"{self.base}[]" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value, expression, connection):
        return json.loads(value) if isinstance(value, str) else value

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None or connection.vendor == "postgresql":
            return value
        return json.dumps(list(value))


class WaitingChunk(models.Model):
    """People of a broadcast whose ledger rows are not written yet, up to a batch a row:
    the audience snapshot taken at the click, who exactly and at which address.

    A chunk is claimed whole (its claim token set, like a row's) and settled whole: the
    settle deletes it and writes its people's Delivery rows with the ESP's answers, in one
    transaction, so a person is always either in one chunk or in one row, never both and
    never neither. Each person's row is written once, with its outcome; writing a million
    pending rows at the click, then changing each twice, was most of the database's work.
    """

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="+",
                                  db_index=False)
    first_subscriber_id = models.BigIntegerField()
    size = models.PositiveIntegerField()
    # Four parallel lists, in no particular order (the claim sorts them).
    subscriber_ids = ListColumn(base="bigint")
    emails = ListColumn()
    names = ListColumn()
    locales = ListColumn()
    claim_token = models.CharField(max_length=64, blank=True)  # blank: waiting
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["broadcast", "first_subscriber_id"],
                                name="waiting_chunk_order_idx")]

    def __str__(self) -> str:
        return f"{self.size} people of broadcast {self.broadcast_id}"

