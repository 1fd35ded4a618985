from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import BooleanField, Count, ExpressionWrapper, Prefetch, Q, QuerySet
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
    """The incidents a person may see, filtered, open first, then most severe, then newest.

    Open first is explicit (`is_closed`): ordering by `closed_at` puts NULLs — the open
    incidents — last on PostgreSQL. The pk breaks ties so that keyset pages never skip or
    repeat a row.
    """
    qs = incidents_visible_to(user).select_related("lead").annotate(
        is_closed=ExpressionWrapper(Q(closed_at__isnull=False), output_field=BooleanField()))
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
    return qs.order_by(*LIST_ORDER)


LIST_ORDER = ("is_closed", "severity", "-declared_at", "-pk")
# Counting stops here: "1,000+" says enough, and counting further scans every incident.
LIST_COUNT_CAP = 1000


@dataclass(frozen=True)
class ListCursor:
    """A row's place in the list's order, written into the Next/Previous links."""

    closed: bool
    severity: int
    declared_at: datetime
    pk: int

    @classmethod
    def of(cls, incident: Incident) -> "ListCursor":
        return cls(incident.closed_at is not None, incident.severity, incident.declared_at,
                   incident.pk)

    def encode(self) -> str:
        return f"{int(self.closed)}_{self.severity}_{self.declared_at.isoformat()}_{self.pk}"

    @classmethod
    def decode(cls, text: str) -> "ListCursor | None":
        """None for anything malformed: the list then starts from the top."""
        try:
            closed, severity, declared, pk = text.split("_")
            when = datetime.fromisoformat(declared)
            if closed not in ("0", "1") or when.tzinfo is None:
                return None
            return cls(closed == "1", int(severity), when, int(pk))
        except ValueError:
            return None

    def after(self) -> Q:
        """Rows that come after this one in LIST_ORDER."""
        later = (Q(severity__gt=self.severity)
                 | Q(severity=self.severity, declared_at__lt=self.declared_at)
                 | Q(severity=self.severity, declared_at=self.declared_at, pk__lt=self.pk))
        same = Q(closed_at__isnull=not self.closed) & later
        return same if self.closed else Q(closed_at__isnull=False) | same

    def before(self) -> Q:
        """Rows that come before this one in LIST_ORDER."""
        earlier = (Q(severity__lt=self.severity)
                   | Q(severity=self.severity, declared_at__gt=self.declared_at)
                   | Q(severity=self.severity, declared_at=self.declared_at, pk__gt=self.pk))
        same = Q(closed_at__isnull=not self.closed) & earlier
        return Q(closed_at__isnull=True) | same if self.closed else same


@dataclass
class IncidentPage:
    rows: list[Incident]
    total: int  # capped at LIST_COUNT_CAP + 1
    next_cursor: str = ""
    previous_cursor: str = ""

    @property
    def more_than_cap(self) -> bool:
        return self.total > LIST_COUNT_CAP

    @property
    def shown_total(self) -> int:
        return min(self.total, LIST_COUNT_CAP)


def incident_list_page(*, user: AbstractBaseUser, filters: IncidentFilters, size: int,
                       after: str = "", before: str = "") -> IncidentPage:
    """One page of the list by keyset (`after` / `before` a row's cursor), its capped
    count, and each row's resolved steps counted for that page's rows only."""
    qs = incident_list(user=user, filters=filters)
    total = qs.order_by()[:LIST_COUNT_CAP + 1].count()
    after_at, before_at = ListCursor.decode(after), ListCursor.decode(before)
    if before_at is not None:
        # Backwards: the rows just before, read in reverse order and put back.
        reverse = [f[1:] if f.startswith("-") else f"-{f}" for f in LIST_ORDER]
        rows = list(qs.filter(before_at.before()).order_by(*reverse)[:size + 1])
        has_previous, has_next = len(rows) > size, True
        rows = rows[:size][::-1]
    else:
        if after_at is not None:
            qs = qs.filter(after_at.after())
        rows = list(qs[:size + 1])
        has_previous, has_next = after_at is not None, len(rows) > size
        rows = rows[:size]
    resolved = dict(ResponseStep.objects.filter(
        incident__in=[r.pk for r in rows], status__in=["done", "skipped"])
        .values("incident").annotate(n=Count("pk")).values_list("incident", "n"))
    for row in rows:
        row.steps_resolved = resolved.get(row.pk, 0)
    page = IncidentPage(rows=rows, total=total)
    if rows and has_next:
        page.next_cursor = ListCursor.of(rows[-1]).encode()
    if rows and has_previous:
        page.previous_cursor = ListCursor.of(rows[0]).encode()
    return page


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
