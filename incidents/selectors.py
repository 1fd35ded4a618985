from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from incidents.models import (
    ChecklistItem,
    EventKind,
    Incident,
    ResponseStep,
    Stakeholder,
    TimelineEvent,
)
from incidents.permissions import incidents_visible_to


@dataclass(frozen=True)
class IncidentFilters:
    status: str = ""
    severity: int | None = None
    kind: str = ""
    q: str = ""


def incident_list(*, user: AbstractBaseUser, filters: IncidentFilters) -> QuerySet[Incident]:
    qs = incidents_visible_to(user).select_related("lead").annotate(
        steps_resolved=Count("steps", filter=Q(steps__status__in=["done", "skipped"])),
    )
    if filters.status == "open":
        qs = qs.filter(closed_at__isnull=True)
    elif filters.status:
        qs = qs.filter(status=filters.status)
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.q:
        qs = qs.filter(Q(title__icontains=filters.q) | Q(summary__icontains=filters.q))
    return qs.order_by("closed_at", "severity", "-declared_at")


def incident_steps(*, incident: Incident) -> list[ResponseStep]:
    steps = list(
        incident.steps.select_related("owner").prefetch_related(
            Prefetch("items", queryset=ChecklistItem.objects.select_related("done_by"))
        )
    )
    for step in steps:
        step.incident = incident  # avoid a query per step for due_at
    return steps


# The timeline's filters: what a reader looking back usually wants to see on its own.
TIMELINE_FILTERS: dict[str, tuple[str, Q]] = {
    "notes": (_("Notes"), Q(kind__in=[EventKind.NOTE, EventKind.CORRECTION])),
    "decisions": (_("Decisions"), Q(kind__in=[
        EventKind.STATUS, EventKind.STEP, EventKind.PLAN, EventKind.SIGNOFF,
        EventKind.BREACH, EventKind.CLOSED, EventKind.REOPENED])),
    "sends": (_("Pauses and sends"), Q(data__has_any_keys=["containment", "broadcast"])),
    "system": (_("By Amends"), Q(actor__isnull=True)),
}


def incident_timeline(*, incident: Incident, limit: int | None = None,
                      before: TimelineEvent | None = None, inclusive: bool = False,
                      show: str = "") -> QuerySet[TimelineEvent]:
    """Newest first; `before` continues after that event (keyset, in the page's order; with
    `inclusive`, from it) and `show` keeps one of TIMELINE_FILTERS."""
    qs = incident.events.select_related("actor", "corrects")
    if show in TIMELINE_FILTERS:
        qs = qs.filter(TIMELINE_FILTERS[show][1])
    if before is not None:
        same_time = (Q(created_at=before.created_at, pk__lte=before.pk) if inclusive
                     else Q(created_at=before.created_at, pk__lt=before.pk))
        qs = qs.filter(Q(created_at__lt=before.created_at) | same_time)
    return qs[:limit] if limit else qs


def incident_stakeholders(*, incident: Incident) -> QuerySet[Stakeholder]:
    return incident.stakeholders.select_related("user")


def assignable_users() -> QuerySet:
    return get_user_model().objects.filter(is_active=True).order_by("first_name", "username")


def open_incident_count(*, user: AbstractBaseUser) -> int:
    return incidents_visible_to(user).filter(closed_at__isnull=True).count()


def incident_last_event_id(*, incident: Incident) -> int:
    """The newest timeline event's id: every state change writes one, so this is the
    incident's version for live pages (one index-only lookup)."""
    last = (TimelineEvent.objects.filter(incident=incident).order_by("-pk")
            .values_list("pk", flat=True).first())
    return last or 0
