"""Who we mail: subscribers, segments and suppression lists. Knows nothing of campaigns."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SubscriberStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    BOUNCED = "bounced", _("Hard-bounced")
    COMPLAINED = "complained", _("Complained")


class SubscriberQuerySet(models.QuerySet):
    def with_email(self, email: str) -> "SubscriberQuerySet":
        """The person with this address in any case, found through the case-insensitive
        unique index on LOWER(email). (`email__iexact` compares UPPER() on PostgreSQL,
        which no index serves: every bounce read one million subscribers.)"""
        return self.alias(email_lower=Lower("email")).filter(
            email_lower=email.strip().lower())


class Subscriber(models.Model):
    email = models.EmailField(_("email"), max_length=254)
    name = models.CharField(_("name"), max_length=200, blank=True)
    locale = models.CharField(_("locale"), max_length=16, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=SubscriberStatus.choices,
                              default=SubscriberStatus.ACTIVE)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    # When and through which channel the person asked to stop (the first time counts).
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)
    # A database default too: imports insert subscribers with set-based SQL.
    unsubscribe_source = models.CharField(_("unsubscribed through"), max_length=40,
                                          blank=True, default="", db_default="")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        ordering = ["email"]
        constraints = [
            # One person per address, however the ESP export spelled its case.
            models.UniqueConstraint(Lower("email"), name="subscriber_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(status__in=SubscriberStatus.values),
                name="subscriber_status_valid"),
        ]
        indexes = [models.Index(fields=["status"], name="subscriber_status_idx")]

    def __str__(self) -> str:
        return self.email


class Segment(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    members = models.ManyToManyField(Subscriber, through="SegmentMembership",
                                     related_name="segments")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE,
                                related_name="memberships")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE,
                                   related_name="memberships")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "subscriber"],
                                    name="membership_unique"),
        ]
        # The unique index leads with segment; lookups by subscriber need their own.
        indexes = [models.Index(fields=["subscriber", "segment"], name="membership_sub_idx")]

    def __str__(self) -> str:
        return f"{self.subscriber_id} in {self.segment_id}"


class SuppressionList(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    source = models.CharField(_("source"), max_length=200, blank=True,
                              help_text=_("Where the list comes from, e.g. an ESP export."))
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SuppressionEntry(models.Model):
    """An address nobody may mail. Stored lower-cased: entries need not be subscribers."""

    suppression_list = models.ForeignKey(SuppressionList, on_delete=models.CASCADE,
                                         related_name="entries")
    email = models.CharField(_("email"), max_length=254)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    added_at = models.DateTimeField(_("added at"), default=timezone.now)

    class Meta:
        ordering = ["suppression_list", "email"]
        constraints = [
            models.UniqueConstraint(fields=["suppression_list", "email"],
                                    name="suppression_entry_unique"),
            models.CheckConstraint(condition=models.Q(email=Lower("email")),
                                   name="suppression_email_lowercase"),
        ]
        indexes = [models.Index(fields=["email"], name="suppression_email_idx")]

    def __str__(self) -> str:
        return self.email


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class AudienceImport(models.Model):
    """One uploaded CSV file and what its import (a Celery task) made of it.

    The file lives in the default storage (MEDIA_ROOT) until a real import has read it;
    `result` is the engine's ImportResult as JSON, written once the import has finished.
    """

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, related_name="+")
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    kind = models.CharField(_("kind"), max_length=32)
    options = models.JSONField(_("options"), default=dict, blank=True)
    encoding = models.CharField(_("encoding"), max_length=16, default="auto")
    dry_run = models.BooleanField(_("preview only"), default=False)
    skip_bad_rows = models.BooleanField(_("skip bad rows"), default=False)
    # Emptied once the stored file is deleted (read by a real import, or pruned).
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/", max_length=255,
                            blank=True)
    original_name = models.CharField(_("file name"), max_length=255)
    size = models.BigIntegerField(_("size in bytes"))
    status = models.CharField(_("status"), max_length=16, choices=ImportStatus.choices,
                              default=ImportStatus.QUEUED)
    result = models.JSONField(_("result"), default=dict, blank=True)
    report_name = models.CharField(_("error report"), max_length=80, blank=True)
    failure = models.TextField(_("failure"), blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=ImportStatus.values),
                                   name="audience_import_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} import {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)
