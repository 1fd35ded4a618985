"""The learn step's records: the post-mortem, its follow-up actions, the lessons the
playbook takes from it, and the PDF exports kept with the incident.

Imported at the end of incidents/models.py so Django registers them with the app.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from incidents.choices import Cause, Kind


class PostMortemStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    FINISHED = "finished", _("Finished")
    SKIPPED = "skipped", _("Skipped")


class PostMortem(models.Model):
    """What happened, why, how it was found, what it cost and what changes."""

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE,
                                    related_name="postmortem")
    status = models.CharField(_("status"), max_length=16, choices=PostMortemStatus.choices,
                              default=PostMortemStatus.DRAFT)
    skip_reason = models.TextField(_("why there is no post-mortem"), blank=True)
    what_happened = models.TextField(_("what happened"), blank=True)
    cause_category = models.CharField(_("cause category"), max_length=32,
                                      choices=Cause.choices, blank=True)
    root_cause = models.TextField(_("root cause"), blank=True)
    detection_how = models.TextField(_("how it was detected"), blank=True)
    # Minutes from the first faulty send to detection; null when nothing says when it left.
    detection_delay_minutes = models.PositiveIntegerField(
        _("detected after (minutes)"), null=True, blank=True)
    affected_count = models.PositiveIntegerField(_("people affected"), default=0)
    excluded_count = models.PositiveIntegerField(_("left out of the apology"), default=0)
    suppressed_count = models.PositiveIntegerField(_("on a suppression list"), default=0)
    cost = models.DecimalField(_("cost"), max_digits=12, decimal_places=2, null=True,
                               blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    compensation = models.TextField(_("compensation"), blank=True)
    went_well = models.TextField(_("what went well"), blank=True)
    went_badly = models.TextField(_("what went badly"), blank=True)
    lessons = models.TextField(_("lessons"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   null=True, blank=True, related_name="+")
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    finished_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(status="skipped") | ~Q(skip_reason=""),
                                   name="postmortem_skip_needs_reason"),
            models.CheckConstraint(
                condition=~Q(status="finished") | Q(finished_at__isnull=False),
                name="postmortem_finished_has_time"),
            models.CheckConstraint(condition=Q(cost__gte=0) | Q(cost__isnull=True),
                                   name="postmortem_cost_not_negative",
                                   violation_error_message=_("The cost cannot be negative.")),
        ]

    def __str__(self) -> str:
        return f"Post-mortem of incident {self.incident_id}"

    @property
    def is_finished(self) -> bool:
        return self.status == PostMortemStatus.FINISHED


class FollowUpAction(models.Model):
    """A change someone owns, with a date; overdue ones show on the managers' summary."""

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE,
                                 related_name="follow_up_actions")
    action = models.CharField(_("action"), max_length=300)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="follow_up_actions", verbose_name=_("owner"))
    due_on = models.DateField(_("due on"))
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_on", "id"]
        indexes = [models.Index(fields=["done_at", "due_on"], name="follow_up_open_due_idx")]

    def __str__(self) -> str:
        return self.action

    def is_overdue(self, today=None) -> bool:
        return self.done_at is None and self.due_on < (today or timezone.localdate())


class PlaybookLesson(models.Model):
    """A lesson adopted into the playbook: declaring an incident of this kind copies it
    onto the step's checklist. Retiring one never touches incidents that already copied it."""

    kind = models.CharField(_("incident kind"), max_length=32, choices=Kind.choices)
    step_number = models.PositiveSmallIntegerField(_("step"))
    text = models.CharField(_("checklist item"), max_length=300)
    source_incident = models.ForeignKey("incidents.Incident", on_delete=models.SET_NULL,
                                        null=True, blank=True, related_name="lessons_adopted")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="+")
    added_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind", "step_number", "added_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(step_number__gte=1, step_number__lte=6),
                                   name="lesson_step_1_to_6"),
            models.UniqueConstraint(fields=["kind", "step_number", "text"],
                                    condition=Q(retired_at__isnull=True),
                                    name="lesson_once_per_kind_step"),
        ]

    def __str__(self) -> str:
        return self.text


class ExportStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RENDERING = "rendering", _("Rendering")
    DONE = "done", _("Ready")
    FAILED = "failed", _("Failed")


class PostMortemExport(models.Model):
    """One PDF export: who asked, when, and the file, kept with the incident."""

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE,
                                 related_name="pdf_exports")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=ExportStatus.choices,
                              default=ExportStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=100, blank=True)
    file = models.FileField(upload_to="postmortems/%Y/%m/", blank=True)
    size = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="export_progress_max"),
            models.CheckConstraint(condition=~Q(status="done") | ~Q(file=""),
                                   name="export_done_has_file"),
        ]

    def __str__(self) -> str:
        return f"PDF of incident {self.incident_id} ({self.status})"


__all__ = ["ExportStatus", "FollowUpAction", "PlaybookLesson", "PostMortem",
           "PostMortemExport", "PostMortemStatus"]
