from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, Q, QuerySet

from incidents.models import ChecklistItem, Incident, ResponseStep, Stakeholder, TimelineEvent
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


def incident_timeline(*, incident: Incident, limit: int | None = None
                      ) -> QuerySet[TimelineEvent]:
    qs = incident.events.select_related("actor", "corrects")
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
