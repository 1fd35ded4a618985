from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.sentences import SAID_KEY
from core.sentences import render as render_sentences
from incidents.choices import (  # noqa: F401  (the vocabularies, importable from here too)
    SEVERITY_DEFINITIONS,
    Cause,
    EventKind,
    Kind,
    Severity,
    StakeholderRole,
    Status,
    StepStatus,
)


class Incident(models.Model):
    title = models.CharField(_("title"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    severity = models.PositiveSmallIntegerField(_("severity"), choices=Severity.choices)
    # Derived from step progress by services.incident_refresh_status; stored for filtering.
    status = models.CharField(_("status"), max_length=16, choices=Status.choices,
                              default=Status.DECLARED)
    summary = models.TextField(_("summary"), blank=True)
    cause = models.CharField(_("cause"), max_length=32, choices=Cause.choices, blank=True)
    pii_exposed = models.BooleanField(_("personal data exposed"), default=False)
    restricted = models.BooleanField(
        _("restricted"), default=False,
        help_text=_("Visible only to stakeholders, managers and administrators."),
    )
    lead = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="led_incidents", verbose_name=_("lead"))
    declared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="declared_incidents")
    detected_at = models.DateTimeField(_("detected at"))
    declared_at = models.DateTimeField(_("declared at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        ordering = ["-declared_at", "-id"]
        permissions = [("view_all_incidents", "Can see every incident, restricted ones too")]
        constraints = [
            models.CheckConstraint(condition=Q(severity__gte=1, severity__lte=4),
                                   name="incident_severity_1_to_4"),
            models.CheckConstraint(condition=Q(detected_at__lte=models.F("declared_at")),
                                   name="incident_detected_before_declared"),
        ]
        indexes = [models.Index(fields=["status", "severity"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def severity_definition(self) -> str:
        return SEVERITY_DEFINITIONS[Severity(self.severity)]

    def elapsed(self, now=None) -> timedelta:
        return (self.closed_at or now or timezone.now()) - self.declared_at


class ResponseStep(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=120)
    goal = models.TextField()
    owning_teams = models.CharField(max_length=200)
    risk_impact = models.TextField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                              null=True, blank=True, related_name="owned_steps")
    status = models.CharField(max_length=16, choices=StepStatus.choices,
                              default=StepStatus.NOT_STARTED)
    skip_reason = models.TextField(blank=True)
    target_minutes = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["incident", "number"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "number"], name="step_unique_number"),
            models.CheckConstraint(condition=Q(number__gte=1, number__lte=6),
                                   name="step_number_1_to_6"),
            models.CheckConstraint(
                condition=~Q(status="skipped") | ~Q(skip_reason=""),
                name="step_skip_needs_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number}. {self.title}"

    @property
    def is_resolved(self) -> bool:
        return self.status in (StepStatus.DONE, StepStatus.SKIPPED)

    @property
    def due_at(self):
        if self.target_minutes is None:
            return None
        return self.incident.declared_at + timedelta(minutes=self.target_minutes)

    def is_overdue(self, now=None) -> bool:
        due = self.due_at
        return due is not None and not self.is_resolved and (now or timezone.now()) > due


class ChecklistItem(models.Model):
    step = models.ForeignKey(ResponseStep, on_delete=models.CASCADE, related_name="items")
    text = models.CharField(max_length=300)
    position = models.PositiveIntegerField(default=0)
    done = models.BooleanField(default=False)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                null=True, blank=True, related_name="+")
    done_at = models.DateTimeField(null=True, blank=True)
    from_playbook = models.BooleanField(default=False)

    class Meta:
        ordering = ["step", "position", "id"]

    def __str__(self) -> str:
        return self.text


class Stakeholder(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE,
                                 related_name="stakeholders")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="stakes")
    role = models.CharField(max_length=16, choices=StakeholderRole.choices)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["incident", "role", "id"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "user", "role"],
                                    name="stakeholder_unique_role"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"


class TimelineQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The timeline is append-only: write a correction instead.")

    def delete(self):
        raise TypeError("The timeline is append-only: write a correction instead.")


class TimelineEvent(models.Model):
    """Append-only: who, when, what. A mistake is fixed by a correction event."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    corrects = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="corrections")

    objects = TimelineQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["incident", "-created_at"])]

    def __str__(self) -> str:
        return self.message

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise TypeError("Timeline events cannot be changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Timeline events cannot be deleted.")

    @property
    def text(self) -> str:
        """What happened, in the active language: the stored sentences rendered now.
        Events without them (notes, corrections, rows from before) read as written."""
        parts = self.data.get(SAID_KEY) if isinstance(self.data, dict) else None
        if not parts:
            return self.message
        try:
            return render_sentences(parts)
        except (KeyError, TypeError, ValueError):  # a broken translation: the English record
            return self.message


# Each step's models live in its own package; importing them here registers them with
# the app (they keep the incidents app label, so tables and migrations stay as they are).
from incidents.apology.models import Apology  # noqa: E402,F401
from incidents.assessment.models import (  # noqa: E402,F401
    AffectedAudience,
    AffectedRecipient,
    Answer,
    Assessment,
    AudienceComputation,
    ComputationStatus,
    ExclusionReason,
    PiiField,
)
from incidents.learn.models import (  # noqa: E402,F401
    ExportStatus,
    FollowUpAction,
    PlaybookLesson,
    PostMortem,
    PostMortemExport,
    PostMortemStatus,
)
from incidents.plan.models import (  # noqa: E402,F401
    BreachClock,
    CompensationKind,
    Decision,
    DutyStatus,
    PlanVersion,
    RegulatoryDuty,
    RequirementWhy,
    SignerRequest,
    SignerRequirement,
    SignerRole,
    SignOff,
)
