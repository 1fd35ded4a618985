"""Reads for the learn step: the post-mortem (saved, or drafted from the record), follow-ups,
the lessons the playbook has adopted, and the PDF exports."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Min, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from incidents.assessment.models import AffectedAudience, Assessment, ExclusionReason
from incidents.learn.models import (
    FollowUpAction,
    PlaybookLesson,
    PostMortem,
    PostMortemExport,
    PostMortemStatus,
)
from incidents.models import EventKind, Incident, ResponseStep, StepStatus
from incidents.permissions import incidents_visible_to
from incidents.plan.models import CompensationKind, PlanVersion

# Timeline kinds that tell the story; checklist ticks and notes stay in the full timeline.
STORY_KINDS = (EventKind.DECLARED, EventKind.STATUS, EventKind.ALERT, EventKind.SIGNOFF,
               EventKind.BREACH, EventKind.CLOSED, EventKind.REOPENED, EventKind.CORRECTION)
STORY_LIMIT = 20


def playbook_lessons_for(*, kind: str) -> dict[int, list[str]]:
    """Adopted lessons per step number, for declaring a new incident of this kind."""
    lessons: dict[int, list[str]] = {}
    for number, text in (PlaybookLesson.objects.filter(kind=kind, retired_at__isnull=True)
                         .order_by("step_number", "added_at", "id")
                         .values_list("step_number", "text")):
        lessons.setdefault(number, []).append(text)
    return lessons


def playbook_lessons(*, incident: Incident) -> QuerySet[PlaybookLesson]:
    """Lessons this incident gave the playbook."""
    return PlaybookLesson.objects.filter(source_incident=incident).select_related("added_by")


def postmortem_for(*, incident: Incident) -> PostMortem | None:
    return (PostMortem.objects.select_related("updated_by", "finished_by")
            .filter(incident=incident).first())


def postmortem_is_settled(*, incident: Incident) -> bool:
    """Finished or skipped with a reason: what closing an incident asks for."""
    return PostMortem.objects.filter(
        incident=incident,
        status__in=[PostMortemStatus.FINISHED, PostMortemStatus.SKIPPED]).exists()


def follow_ups_for(*, incident: Incident) -> QuerySet[FollowUpAction]:
    return incident.follow_up_actions.select_related("owner")


def follow_ups_overdue(*, user: AbstractBaseUser, today: date | None = None
                       ) -> QuerySet[FollowUpAction]:
    """Open follow-ups past their date, on incidents the user may see (for the summary)."""
    today = today or timezone.localdate()
    return (FollowUpAction.objects
            .filter(incident__in=incidents_visible_to(user), done_at__isnull=True,
                    due_on__lt=today)
            .select_related("owner", "incident"))


def exports_for(*, incident: Incident, limit: int = 10) -> list[PostMortemExport]:
    return list(incident.pdf_exports.select_related("requested_by")[:limit])


# --- Drafting from the record ---------------------------------------------------------------

@dataclass(frozen=True)
class DraftFollowUp:
    action: str
    owner_id: int
    owner_name: str
    due_on: date


def duration_text(delta: timedelta | None) -> str:
    """“2 d 4 h”, “3 h 05 min”, “12 min”; an em dash when unknown."""
    if delta is None:
        return "—"
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)s d %(h)s h") % {"d": days, "h": hours}
    if hours:
        return _("%(h)s h %(m)02d min") % {"h": hours, "m": mins}
    return ngettext("%(m)s min", "%(m)s min", mins) % {"m": mins}


def _minutes(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None or end < start:
        return None
    return int((end - start).total_seconds() // 60)


def _story(incident: Incident) -> str:
    events = (incident.events.filter(kind__in=STORY_KINDS).order_by("created_at", "id")
              .only("created_at", "message", "data")[:STORY_LIMIT])
    tz = timezone.get_current_timezone()
    # In the writer's language: each event's sentence read now (TimelineEvent.text).
    lines = [f"- {e.created_at.astimezone(tz):%d %b %H:%M}: {e.text}" for e in events]
    return "\n".join(filter(None, [incident.summary.strip(), "\n".join(lines)]))


def _steps_review(steps: list[ResponseStep]) -> tuple[str, str]:
    well, badly = [], []
    for step in steps:
        if step.status == StepStatus.SKIPPED:
            badly.append(_("Step %(n)s (%(title)s) was skipped: %(reason)s") % {
                "n": step.number, "title": step.title, "reason": step.skip_reason})
            continue
        taken = _minutes(step.incident.declared_at, step.done_at)
        if taken is None or step.target_minutes is None:
            continue
        values = {"n": step.number, "title": step.title, "taken": taken,
                  "target": step.target_minutes}
        if taken <= step.target_minutes:
            well.append(_("Step %(n)s (%(title)s) done after %(taken)s min, within its "
                          "target of %(target)s min.") % values)
        else:
            badly.append(_("Step %(n)s (%(title)s) done after %(taken)s min, past its "
                           "target of %(target)s min.") % values)
    return "\n".join(f"- {line}" for line in well), "\n".join(f"- {line}" for line in badly)


def postmortem_initial(*, incident: Incident) -> PostMortem:
    """An unsaved draft written from the record (timeline, figures, plan), so the lead
    edits rather than starts from a blank page."""
    audience = AffectedAudience.objects.filter(incident=incident).first()
    assessment = Assessment.objects.filter(incident=incident).first()
    plan = incident.plan_versions.order_by("-number").first()
    steps = list(incident.steps.all())
    for step in steps:
        step.incident = incident
    excluded = dict(audience.excluded_counts or {}) if audience else {}
    affected = audience.affected_count if audience else 0
    first_send = None
    if audience is not None:
        first_send = audience.campaigns.aggregate(m=Min("started_at"))["m"]
    delay = _minutes(first_send, incident.detected_at)
    tz = timezone.get_current_timezone()
    detection = _("Detected at %(detected)s; declared %(lag)s later by %(who)s.") % {
        "detected": f"{incident.detected_at.astimezone(tz):%d %b %Y %H:%M}",
        "lag": duration_text(incident.declared_at - incident.detected_at),
        "who": incident.declared_by.get_full_name() or incident.declared_by.get_username()}
    cost = None
    currency = "EUR"
    if assessment is not None:
        currency = assessment.currency
        if assessment.compensation_per_person is not None:
            cost = (assessment.compensation_per_person * affected).quantize(Decimal("0.01"))
    compensation = ""
    if plan is not None and plan.compensation_kind != CompensationKind.NONE:
        compensation = f"{CompensationKind(plan.compensation_kind).label}: " + " — ".join(
            filter(None, [plan.compensation_value, plan.compensation_eligibility]))
    well, badly = _steps_review(steps)
    return PostMortem(
        incident=incident, status=PostMortemStatus.DRAFT, what_happened=_story(incident),
        cause_category=incident.cause,
        root_cause=assessment.notes if assessment is not None else "",
        detection_how=detection, detection_delay_minutes=delay, affected_count=affected,
        excluded_count=sum(excluded.values()),
        suppressed_count=excluded.get(ExclusionReason.SUPPRESSED, 0)
        + excluded.get(ExclusionReason.NO_APOLOGY, 0),
        cost=cost, currency=currency, compensation=compensation, went_well=well,
        went_badly=badly, lessons=plan.process_changes if plan is not None else "")


def follow_ups_initial(*, plan: PlanVersion | None) -> list[DraftFollowUp]:
    """The plan's follow-up actions, to be copied once when the post-mortem is first saved."""
    if plan is None:
        return []
    return [DraftFollowUp(action=row["action"], owner_id=row["owner"],
                          owner_name=row.get("owner_name", ""),
                          due_on=date.fromisoformat(row["due"]))
            for row in plan.follow_ups or [] if row.get("owner") and row.get("due")]
