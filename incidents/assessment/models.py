"""Step 3's records: the affected audience (who got the faulty mail, and who of them is
left out of the apology, and why) and the assessment answers."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ExclusionReason(models.TextChoices):
    """Why someone who got the faulty email is left out of the apology audience.

    When several apply, the first in this order is recorded (see incidents.assessment.services).
    """

    SUPPRESSED = "suppressed", _("On a suppression list")
    COMPLAINED = "complained", _("Complained (marked as spam)")
    BOUNCED = "bounced", _("Hard-bounced")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed since")
    NO_APOLOGY = "no_apology", _("Suppression-list send: no apology goes out")


class AffectedAudience(models.Model):
    """The scope of the damage: faulty campaigns and the segments in scope.

    No segments chosen means every segment the campaigns hit. The materialised rows are
    AffectedRecipient; the counts here are those of the last computation.
    """

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE,
                                    related_name="affected_audience")
    campaigns = models.ManyToManyField("messaging.Campaign", related_name="+",
                                       verbose_name=_("faulty campaigns"))
    segments = models.ManyToManyField("audiences.Segment", blank=True, related_name="+",
                                      verbose_name=_("segments in scope"))
    computed_at = models.DateTimeField(_("computed at"), null=True, blank=True)
    computed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    reached_count = models.PositiveIntegerField(_("reached"), default=0)
    affected_count = models.PositiveIntegerField(_("apology audience"), default=0)
    excluded_counts = models.JSONField(_("excluded per reason"), default=dict, blank=True)
    # Stored once when computed, so no page aggregates a million rows to show them:
    # [[segment_id, reached, affected], …] and {suppression_list_id: count}.
    segment_counts = models.JSONField(_("counts per segment"), default=list, blank=True)
    suppression_list_counts = models.JSONField(_("counts per suppression list"),
                                               default=dict, blank=True)

    def __str__(self) -> str:
        return f"Audience of incident {self.incident_id}"


class ComputationStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting for a worker")
    RUNNING = "running", _("Computing")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


ACTIVE_COMPUTATION = [ComputationStatus.QUEUED, ComputationStatus.RUNNING]


class AudienceComputation(models.Model):
    """One request to (re)compute an incident's affected audience in the background.

    The scope is kept here until a worker takes it; at most one per incident is queued or
    running at a time (the database refuses a second). Progress lives in the cache: the
    computation is one transaction, so nothing it writes is visible before it ends.
    """

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE,
                                 related_name="audience_computations")
    campaign_ids = models.JSONField(default=list)
    segment_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=ComputationStatus.choices,
                              default=ComputationStatus.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.ForeignKey(settings.AUTH_USER_MODEL,
                                            on_delete=models.SET_NULL, null=True,
                                            blank=True, related_name="+")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident"],
                                    condition=Q(status__in=["queued", "running"]),
                                    name="audience_computation_one_at_a_time"),
        ]

    def __str__(self) -> str:
        return f"Audience computation {self.pk} of incident {self.incident_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_COMPUTATION


class AffectedRecipient(models.Model):
    """One person who received a faulty campaign within the scope (once, however many
    segments or campaigns). Blank exclusion_reason: in the apology audience."""

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE,
                                 related_name="affected_recipients")
    subscriber = models.ForeignKey("audiences.Subscriber", on_delete=models.CASCADE,
                                   related_name="+")
    campaign = models.ForeignKey("messaging.Campaign", on_delete=models.CASCADE,
                                 related_name="+", help_text=_("The first faulty campaign "
                                                               "that reached them."))
    sent_at = models.DateTimeField()
    exclusion_reason = models.CharField(max_length=16, choices=ExclusionReason.choices,
                                        blank=True)
    suppression_list = models.ForeignKey("audiences.SuppressionList",
                                         on_delete=models.SET_NULL, null=True, blank=True,
                                         related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "subscriber"],
                                    name="affected_recipient_once"),
        ]
        indexes = [models.Index(fields=["incident", "exclusion_reason"],
                                name="affected_incident_reason_idx")]

    def __str__(self) -> str:
        return f"{self.subscriber_id} ({self.exclusion_reason or 'affected'})"

    @property
    def in_apology_audience(self) -> bool:
        return not self.exclusion_reason


class PiiField(models.TextChoices):
    EMAIL = "email", _("Email address")
    NAME = "name", _("Name")
    ADDRESS = "address", _("Postal address")
    PHONE = "phone", _("Phone number")
    BIRTHDATE = "birthdate", _("Date of birth")
    PURCHASES = "purchases", _("Purchase history")
    PAYMENT = "payment", _("Payment details")
    PASSWORD = "password", _("Password or credentials")
    OTHER = "other", _("Other personal data")


class Answer(models.TextChoices):
    UNKNOWN = "unknown", _("Not decided yet")
    YES = "yes", _("Yes")
    NO = "no", _("No")


class Assessment(models.Model):
    """Step 3's answers beyond the audience: what leaked, what it costs, who must know."""

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE,
                                    related_name="assessment")
    pii_fields = models.JSONField(_("personal data exposed"), default=list, blank=True)
    compensation_per_person = models.DecimalField(
        _("compensation per affected person"), max_digits=10, decimal_places=2,
        null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    other_costs = models.TextField(_("other costs"), blank=True)
    legal_involved = models.CharField(_("must legal be involved?"), max_length=8,
                                      choices=Answer.choices, default=Answer.UNKNOWN)
    law_enforcement_involved = models.CharField(
        _("must law enforcement be involved?"), max_length=8, choices=Answer.choices,
        default=Answer.UNKNOWN)
    notes = models.TextField(_("why"), blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(compensation_per_person__gte=0),
                                   name="assessment_compensation_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Assessment of incident {self.incident_id}"
