"""Step 4 and its guards: the versioned plan, sign-offs on a version, and the breach clock.

Imported at the end of incidents/models.py so Django finds the models in the app.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ImmutableQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Plan versions are immutable: write a new version instead.")

    def delete(self):
        raise TypeError("Plan versions are immutable: write a new version instead.")


class CompensationKind(models.TextChoices):
    NONE = "none", _("None")
    DISCOUNT = "discount", _("Discount")
    COUPON = "coupon", _("Coupon code")
    CREDIT = "credit", _("Account credit")
    FREE_SERVICE = "free_service", _("Free service (e.g. credit monitoring)")
    OTHER = "other", _("Other")


class PlanVersion(models.Model):
    """One immutable snapshot of an incident's plan. An edit writes version n + 1."""

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE,
                                 related_name="plan_versions")
    number = models.PositiveIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    internal_steps = models.TextField(_("internal steps"), blank=True)
    subscriber_message = models.TextField(_("what subscribers are told"), blank=True)
    subscriber_action_required = models.BooleanField(_("subscribers must act"), default=False)
    subscriber_actions = models.TextField(_("what subscribers must do"), blank=True)
    compensation_kind = models.CharField(_("compensation"), max_length=16,
                                         choices=CompensationKind.choices,
                                         default=CompensationKind.NONE)
    compensation_value = models.CharField(_("compensation value"), max_length=200, blank=True)
    compensation_eligibility = models.TextField(_("who qualifies"), blank=True)
    process_changes = models.TextField(_("process and system changes"), blank=True)
    # [{"action": str, "owner": user id, "owner_name": str, "due": "YYYY-MM-DD"}]; a list
    # inside the snapshot keeps a version self-contained and as immutable as the rest.
    follow_ups = models.JSONField(_("follow-up actions"), default=list, blank=True)
    note = models.CharField(_("what changed"), max_length=300, blank=True)

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["incident", "-number"]
        permissions = [("sign_plan", "Can sign off (approve or reject) an incident plan")]
        constraints = [
            models.UniqueConstraint(fields=["incident", "number"],
                                    name="plan_version_unique_number"),
            models.CheckConstraint(
                condition=Q(subscriber_action_required=False) | ~Q(subscriber_actions=""),
                name="plan_action_required_says_what",
                violation_error_message=_("Subscribers must act: say what they must do.")),
        ]

    def __str__(self) -> str:
        return f"plan v{self.number} of incident #{self.incident_id}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise TypeError("Plan versions cannot be changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Plan versions cannot be deleted.")


class SignerRole(models.TextChoices):
    LEGAL = "legal", _("Legal")
    SECURITY = "security", _("Security")


class Decision(models.TextChoices):
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class SignOff(models.Model):
    """A signer's decision on one plan version. Voided, never deleted, when it stops
    counting (the plan was edited, or the same role signed the version again)."""

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE,
                                 related_name="signoffs")
    version = models.ForeignKey(PlanVersion, on_delete=models.PROTECT,
                                related_name="signoffs")
    role = models.CharField(max_length=16, choices=SignerRole.choices)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="signoffs")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    reason = models.TextField(blank=True)
    signed_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)
    # What the signature covers: the whole outgoing package (plan version, apology content
    # in every locale, sender, coupon, brand template, audience definition and count), as
    # the snapshot the signer saw and its digest. The send guard compares the digest with
    # the package's at the moment of sending (incidents/plan/package.py).
    package = models.JSONField(default=dict, blank=True)
    package_digest = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-signed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(decision="rejected") | ~Q(reason=""),
                                   name="signoff_reject_needs_reason",
                                   violation_error_message=_("A rejection needs a reason.")),
            models.CheckConstraint(condition=Q(voided_at__isnull=True) | ~Q(void_reason=""),
                                   name="signoff_void_says_why"),
            models.UniqueConstraint(fields=["version", "role"],
                                    condition=Q(voided_at__isnull=True),
                                    name="signoff_one_live_per_version_role"),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.decision} v{self.version.number}"

    @property
    def is_live(self) -> bool:
        return self.voided_at is None


class SignerRequest(models.Model):
    """The lead asked for a signer the incident's kind and severity do not require."""

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE,
                                 related_name="signer_requests")
    role = models.CharField(max_length=16, choices=SignerRole.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "role"], name="signer_request_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} requested on #{self.incident_id}"


class RequirementWhy(models.TextChoices):
    BREACH = "breach", _("a data breach")
    PII = "pii", _("personal data exposed")
    SEV1 = "sev1", _("SEV1")
    REQUESTED = "requested", _("requested by the lead")


class SignerRequirement(models.Model):
    """A sign-off the incident needs. Requirements only ratchet up: one is written the first
    time the incident's kind, personal data, severity or the lead's request needs a role,
    and it stays when those are lowered, until a signer of that role approves dropping it
    (with a reason). Released rows stay as the record."""

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE,
                                 related_name="signer_requirements")
    role = models.CharField(max_length=16, choices=SignerRole.choices)
    why = models.CharField(max_length=16, choices=RequirementWhy.choices)
    since = models.DateTimeField(default=timezone.now)
    # A lowering edit asks to drop it; only a signer of the role can approve that.
    drop_requested_at = models.DateTimeField(null=True, blank=True)
    drop_requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                          null=True, blank=True, related_name="+")
    drop_request_reason = models.CharField(max_length=500, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    null=True, blank=True, related_name="+")
    release_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["incident", "role", "-since"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "role"],
                                    condition=Q(released_at__isnull=True),
                                    name="signer_requirement_one_live_per_role"),
            models.CheckConstraint(
                condition=Q(released_at__isnull=True) | (Q(released_by__isnull=False)
                                                         & ~Q(release_reason="")),
                name="signer_requirement_release_has_signer_and_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} required on #{self.incident_id} ({self.why})"


# --- The breach clock ----------------------------------------------------------------------

class BreachClock(models.Model):
    """When the organisation became aware of a breach: the start of every regulatory clock."""

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE,
                                    related_name="breach_clock")
    aware_at = models.DateTimeField(_("became aware at"))
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"aware of #{self.incident_id} at {self.aware_at:%Y-%m-%d %H:%M}"


class DutyStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    NOTIFIED = "notified", _("Notified")
    NOT_NEEDED = "not_needed", _("Decided not needed")


class RegulatoryDuty(models.Model):
    """One obligation from the jurisdictions table, with its deadline computed once.

    `deadline_at` is written when the duty is created (or the awareness time is corrected
    while it is still pending) and never again after a notice is recorded; `was_late` is
    set at that moment and never cleared, so no later edit can hide a late filing.
    """

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE,
                                 related_name="duties")
    jurisdiction = models.CharField(max_length=16)
    code = models.CharField(max_length=32)
    title = models.CharField(max_length=200)
    audience = models.CharField(max_length=16)
    legal_basis = models.CharField(max_length=200)
    deadline_at = models.DateTimeField(null=True, blank=True)
    deadline_text = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=DutyStatus.choices,
                              default=DutyStatus.PENDING)
    notified_at = models.DateTimeField(null=True, blank=True)
    reference = models.CharField(max_length=200, blank=True)
    was_late = models.BooleanField(default=False)
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 null=True, blank=True, related_name="+")
    decision_reason = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["incident", "deadline_at", "jurisdiction", "code"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "jurisdiction", "code"],
                                    name="duty_unique_per_incident"),
            models.CheckConstraint(
                condition=~Q(status="notified") | (Q(notified_at__isnull=False)
                                                   & ~Q(reference="")),
                name="duty_notified_has_date_and_reference",
                violation_error_message=_("A notice needs its date and reference.")),
            models.CheckConstraint(
                condition=~Q(status="not_needed") | (Q(approver__isnull=False)
                                                     & ~Q(decision_reason="")),
                name="duty_not_needed_has_approver_and_reason",
                violation_error_message=_("“Not needed” needs a named approver and a "
                                          "reason.")),
        ]

    def __str__(self) -> str:
        return f"{self.jurisdiction}:{self.code} on #{self.incident_id}"

    def is_overdue(self, now=None) -> bool:
        if self.status != DutyStatus.PENDING or self.deadline_at is None:
            return False
        return (now or timezone.now()) > self.deadline_at


__all__ = ["BreachClock", "CompensationKind", "Decision", "DutyStatus", "PlanVersion",
           "RegulatoryDuty", "RequirementWhy", "SignOff", "SignerRequest",
           "SignerRequirement", "SignerRole"]
