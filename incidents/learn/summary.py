"""The managers' crisis summary: one row per incident, the period's headline figures beside
the period before, and the monthly trend of the response times.

Query cost is fixed, whatever the number of incidents: the table is one annotated query
per page (sign-off, breach clock, alert and audience are subqueries, not per-row lookups)
plus one prefetch of the page's steps; the figures and the trend come from one query (a
row per incident, step figures as correlated subqueries) folded in Python, so medians
stay portable to the embedded SQLite.
"""

from __future__ import annotations

import statistics
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    Func,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    prefetch_related_objects,
)
from django.db.models.functions import Cast, Coalesce, Concat
from django.db.models.lookups import GreaterThan
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from incidents.models import (
    EventKind,
    Incident,
    ResponseStep,
    Severity,
    StepStatus,
    TimelineEvent,
)
from incidents.permissions import incidents_visible_to
from incidents.plan.breach import needs_breach_clock
from incidents.plan.models import (
    BreachClock,
    Decision,
    DutyStatus,
    PlanVersion,
    RegulatoryDuty,
    SignerRequest,
    SignerRequirement,
    SignerRole,
    SignOff,
)
from incidents.plan.signoff import required_signers
from messaging.models import Broadcast, BroadcastStatus

PERIODS: dict[str, tuple[int, str]] = {
    "7d": (7, gettext_lazy("Last 7 days")),
    "30d": (30, gettext_lazy("Last 30 days")),
    "90d": (90, gettext_lazy("Last 90 days")),
    "365d": (365, gettext_lazy("Last 12 months")),
}
DEFAULT_PERIOD = "30d"
TREND_MONTHS = 12

# Sort key → ORDER BY; "-key" reverses. The last column breaks ties so pages are stable.
SORTS: dict[str, tuple[str, ...]] = {
    "severity": ("severity", "-declared_at"),
    "age": ("-declared_at",),
    "title": ("title",),
    "kind": ("kind", "-declared_at"),
    "lead": ("lead__first_name", "lead__username", "-declared_at"),
    "affected": ("reached", "-declared_at"),
}
DEFAULT_SORT = "severity"


@dataclass(frozen=True)
class SummaryFilters:
    state: str = ""  # "open", "closed" or "" for both
    period: str = DEFAULT_PERIOD
    kind: str = ""
    severity: int | None = None
    lead: int | None = None  # user id
    sort: str = DEFAULT_SORT


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    previous_start: datetime

    @property
    def previous_end(self) -> datetime:
        return self.start


def period_bounds(key: str, now: datetime) -> Period:
    days = PERIODS.get(key, PERIODS[DEFAULT_PERIOD])[0]
    start = now - timedelta(days=days)
    return Period(start=start, end=now, previous_start=start - timedelta(days=days))


def _scoped(user: AbstractBaseUser, filters: SummaryFilters) -> QuerySet[Incident]:
    qs = incidents_visible_to(user)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.lead:
        qs = qs.filter(lead_id=filters.lead)
    return qs


def _apology_started_at() -> Subquery:
    """When the incident's apology began to reach subscribers (its broadcast started).
    Broadcasts name their incident as "incident:<id>" (incidents.apology.send.source_ref)."""
    ref = Concat(Value("incident:"), Cast(OuterRef("pk"), CharField()),
                 output_field=CharField())
    return Subquery(Broadcast.objects.filter(source_ref=ref, started_at__isnull=False)
                    .exclude(status=BroadcastStatus.CANCELLED)
                    .order_by("started_at").values("started_at")[:1],
                    output_field=DateTimeField())


def _live_decision(role: str) -> Subquery:
    return Subquery(SignOff.objects.filter(
        incident=OuterRef("pk"), version_id=OuterRef("latest_plan_id"), role=role,
        voided_at__isnull=True).values("decision")[:1])


# --- The table -----------------------------------------------------------------------------

def summary_rows(*, user: AbstractBaseUser, filters: SummaryFilters,
                 now: datetime | None = None) -> QuerySet[Incident]:
    """Incidents live at some point in the period (declared before its end, not closed
    before its start), scoped to the user, with everything a row shows annotated."""
    period = period_bounds(filters.period, now or timezone.now())
    qs = _scoped(user, filters).filter(declared_at__lte=period.end).filter(
        Q(closed_at__isnull=True) | Q(closed_at__gte=period.start))
    if filters.state == "open":
        qs = qs.filter(closed_at__isnull=True)
    elif filters.state == "closed":
        qs = qs.filter(closed_at__isnull=False)
    pending = RegulatoryDuty.objects.filter(incident=OuterRef("pk"),
                                            status=DutyStatus.PENDING)
    qs = qs.select_related("lead").annotate(
        reached=Coalesce(F("affected_audience__reached_count"), 0),
        latest_plan_id=Subquery(PlanVersion.objects.filter(incident=OuterRef("pk"))
                                .order_by("-number").values("pk")[:1],
                                output_field=IntegerField()),
        legal_decision=_live_decision(SignerRole.LEGAL),
        security_decision=_live_decision(SignerRole.SECURITY),
        requested_legal=Exists(SignerRequest.objects.filter(incident=OuterRef("pk"),
                                                            role=SignerRole.LEGAL)),
        requested_security=Exists(SignerRequest.objects.filter(incident=OuterRef("pk"),
                                                               role=SignerRole.SECURITY)),
        breach_aware=Exists(BreachClock.objects.filter(incident=OuterRef("pk"))),
        duty_pending=Exists(pending),
        duty_notified=Exists(RegulatoryDuty.objects.filter(incident=OuterRef("pk"),
                                                           status=DutyStatus.NOTIFIED)),
        next_deadline=Subquery(pending.filter(deadline_at__isnull=False)
                               .order_by("deadline_at").values("deadline_at")[:1]),
        deliverability_alert=Exists(TimelineEvent.objects.filter(
            incident=OuterRef("pk"), kind=EventKind.ALERT,
            data__has_key="deliverability_alert")),
    ).prefetch_related(Prefetch("steps", queryset=ResponseStep.objects.select_related("owner")))
    key = filters.sort.lstrip("-")
    order = SORTS.get(key, SORTS[DEFAULT_SORT])
    if filters.sort.startswith("-"):
        order = tuple(o[1:] if o.startswith("-") else f"-{o}" for o in order)
    return qs.order_by(*order, "-id")


def person_name(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@dataclass(frozen=True)
class StepCell:
    number: int
    title: str
    state: str  # a StepStatus value, or "overdue"
    label: str
    owner: str
    started_at: datetime | None
    done_at: datetime | None
    due_at: datetime | None
    late: bool  # resolved after its time target
    key: str = ""  # "<incident id>-<step number>", for element ids
    owner_text: str = ""  # the tooltip's lines, ready to show
    when_text: str = ""

    @property
    def heading(self) -> str:
        return f"{self.number}. {self.title}"


@dataclass(frozen=True)
class SignoffCell:
    state: str  # "not_needed", "no_plan", "waiting", "rejected", "approved"
    label: str
    detail: str


@dataclass(frozen=True)
class BreachCell:
    state: str  # "", "unknown", "pending", "counting", "overdue", "notified", "not_needed"
    label: str
    deadline: datetime | None = None


@dataclass(frozen=True)
class SummaryRow:
    incident: Incident
    steps: list[StepCell]
    current: StepCell | None
    signoff: SignoffCell
    breach: BreachCell
    age: timedelta
    overdue_count: int = 0

    @property
    def key(self) -> str:
        return str(self.incident.pk)

    @property
    def affected(self) -> int:
        return self.incident.reached

    @property
    def alert(self) -> bool:
        return self.incident.deliverability_alert


STEP_LABELS = {
    StepStatus.NOT_STARTED: gettext_lazy("Not started"),
    StepStatus.IN_PROGRESS: gettext_lazy("In progress"),
    StepStatus.DONE: gettext_lazy("Done"),
    StepStatus.SKIPPED: gettext_lazy("Skipped"),
    "overdue": gettext_lazy("Overdue"),
}


def _short(moment: datetime) -> str:
    # ISO-like and unambiguous in every language; Django's localised date_format costs
    # ~50 µs a call, and a page has 150 of these.
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def step_cell(step: ResponseStep, now: datetime) -> StepCell:
    """One step as the summary shows it: overdue wins over "in progress" or "not started".
    The tooltip's text is composed here, once, rather than by template tags per cell."""
    due = step.due_at
    state = "overdue" if step.is_overdue(now) else step.status
    late = bool(step.is_resolved and due and step.done_at and step.done_at > due)
    owner = person_name(step.owner)
    if step.done_at:
        when = _("Done at %(when)s") % {"when": _short(step.done_at)}
        if late:
            when += " · " + _("after its time target")
    elif due and state == "overdue":
        when = _("Overdue since %(when)s") % {"when": _short(due)}
    elif due:
        when = _("Due by %(when)s") % {"when": _short(due)}
    else:
        when = _("No time target")
    return StepCell(number=step.number, title=step.title, state=state,
                    label=str(STEP_LABELS[state]), owner=owner, started_at=step.started_at,
                    done_at=step.done_at, due_at=due, late=late,
                    key=f"{step.incident_id}-{step.number}",
                    owner_text=_("Owner: %(who)s") % {"who": owner} if owner
                    else _("No owner yet"), when_text=when)


def signoff_cell(incident: Incident) -> SignoffCell:
    requested = {role for role, asked in ((SignerRole.LEGAL, incident.requested_legal),
                                          (SignerRole.SECURITY, incident.requested_security))
                 if asked}
    needed = required_signers(incident, getattr(incident, "live_requirements", None),
                              requested=requested)
    if not needed:
        return SignoffCell("not_needed", _("Not needed"), "")
    labels = {r: str(SignerRole(r).label) for r in needed}
    if incident.latest_plan_id is None:
        return SignoffCell("no_plan", _("No plan yet"),
                           _("Needs %(roles)s") % {"roles": ", ".join(labels.values())})
    decisions = {SignerRole.LEGAL: incident.legal_decision,
                 SignerRole.SECURITY: incident.security_decision}
    rejected = [labels[r] for r in needed if decisions.get(r) == Decision.REJECTED]
    if rejected:
        return SignoffCell("rejected", _("Rejected"),
                           _("Rejected by %(roles)s") % {"roles": ", ".join(rejected)})
    waiting = [labels[r] for r in needed if decisions.get(r) != Decision.APPROVED]
    if waiting:
        return SignoffCell("waiting", _("%(done)s of %(all)s signed") % {
            "done": len(needed) - len(waiting), "all": len(needed)},
            _("Waiting for %(roles)s") % {"roles": ", ".join(waiting)})
    return SignoffCell("approved", _("Approved"), ", ".join(labels.values()))


def breach_cell(incident: Incident, now: datetime) -> BreachCell:
    if not needs_breach_clock(incident):
        return BreachCell("", "")
    if not incident.breach_aware:
        return BreachCell("unknown", _("Awareness not recorded"))
    if incident.next_deadline is not None:
        if incident.next_deadline < now:
            return BreachCell("overdue", _("Overdue"), incident.next_deadline)
        return BreachCell("counting", _("Time left"), incident.next_deadline)
    if incident.duty_pending:
        return BreachCell("pending", _("Notice pending"))
    if incident.duty_notified:
        return BreachCell("notified", _("Notified"))
    return BreachCell("not_needed", _("No notice needed"))


def summary_row(incident: Incident, now: datetime) -> SummaryRow:
    steps = [step_cell(s, now) for s in incident.steps.all()]
    current = next((c for c in steps if c.state not in (StepStatus.DONE, StepStatus.SKIPPED)),
                   None)
    return SummaryRow(incident=incident, steps=steps,
                      current=None if incident.closed_at else current,
                      signoff=signoff_cell(incident), breach=breach_cell(incident, now),
                      age=incident.elapsed(now),
                      overdue_count=sum(c.state == "overdue" for c in steps))


def summary_page_rows(incidents: Iterable[Incident], now: datetime) -> list[SummaryRow]:
    incidents = list(incidents)
    # The sign-off record of the whole page in one query (its requirements only ratchet up).
    prefetch_related_objects(incidents, Prefetch(
        "signer_requirements", queryset=SignerRequirement.objects.filter(
            released_at__isnull=True), to_attr="live_requirements"))
    return [summary_row(i, now) for i in incidents]


# --- Headline figures and the trend ------------------------------------------------------------

class Fact(NamedTuple):
    """One incident's milestones and figures, folded into the headline and the trend (a
    tuple: a thousand of them are built per request)."""
    severity: int
    declared_at: datetime
    closed_at: datetime | None
    contained_at: datetime | None
    notified_at: datetime | None
    late_steps: int
    reached: int
    apology_audience: int
    per_person: Decimal | None
    currency: str


class PlusMinutes(Func):
    """A timestamp plus a whole number of minutes, on PostgreSQL and on the embedded SQLite
    (Django's duration arithmetic refuses integer × interval on SQLite)."""

    arity = 2
    output_field = DateTimeField()

    def _parts(self, compiler, connection):
        when, when_params = compiler.compile(self.source_expressions[0])
        minutes, minutes_params = compiler.compile(self.source_expressions[1])
        return when, minutes, (*when_params, *minutes_params)

    def as_sql(self, compiler, connection, **extra_context):
        when, minutes, params = self._parts(compiler, connection)
        return f"({when} + {minutes} * interval '1 minute')", params

    def as_sqlite(self, compiler, connection, **extra_context):
        when, minutes, params = self._parts(compiler, connection)
        return f"datetime({when}, '+' || {minutes} || ' minutes')", params


def _facts(*, user: AbstractBaseUser, filters: SummaryFilters, since: datetime,
           now: datetime) -> list[Fact]:
    """Incidents declared since `since`, or still open, or closed since `since`, in one
    query: the step figures are correlated subqueries on the (incident, number) index, so
    no step row travels and nothing is grouped."""
    due = PlusMinutes(OuterRef("declared_at"), F("target_minutes"))
    finished = Coalesce(F("done_at"), OuterRef("closed_at"), Value(now),
                        output_field=DateTimeField())
    steps = ResponseStep.objects.filter(incident=OuterRef("pk"))
    late = (steps.filter(target_minutes__isnull=False).filter(GreaterThan(finished, due))
            .order_by().values("incident").annotate(n=Count("pk")).values("n"))
    rows = (_scoped(user, filters)
            .filter(Q(declared_at__gte=since) | Q(closed_at__isnull=True)
                    | Q(closed_at__gte=since))
            .annotate(contained_at=Subquery(steps.filter(number=2, status=StepStatus.DONE)
                                            .values("done_at")[:1]),
                      late_steps=Coalesce(Subquery(late, output_field=IntegerField()), 0),
                      notified_at=_apology_started_at(),
                      reached=Coalesce(F("affected_audience__reached_count"), 0),
                      apology_audience=Coalesce(F("affected_audience__affected_count"), 0),
                      per_person=F("assessment__compensation_per_person"),
                      currency=Coalesce(F("assessment__currency"), Value("")))
            .order_by()
            .values_list("severity", "declared_at", "closed_at", "contained_at",
                         "notified_at", "late_steps", "reached", "apology_audience",
                         "per_person", "currency"))
    return [Fact(*row) for row in rows]


def _within(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def _median_hours(values: list[timedelta]) -> float | None:
    if not values:
        return None
    return statistics.median(v.total_seconds() for v in values) / 3600


MILESTONES = ("contained_at", "notified_at", "closed_at")


@dataclass(frozen=True)
class Figures:
    open_by_severity: dict[int, int]
    median_hours: dict[str, float | None]  # per milestone
    overdue_steps: int
    affected: int
    incidents: int
    compensation: dict[str, Decimal]  # per currency


def _figures(facts: list[Fact], start: datetime, end: datetime) -> Figures:
    """Medians over incidents whose milestone fell in [start, end); counts and costs over
    incidents declared in it; "open" as at `end`."""
    open_by = {s.value: 0 for s in Severity}
    medians: dict[str, list[timedelta]] = {m: [] for m in MILESTONES}
    overdue = affected = declared = 0
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for f in facts:
        if f.declared_at < end and (f.closed_at is None or f.closed_at >= end):
            open_by[f.severity] += 1
        for m in MILESTONES:
            moment = getattr(f, m)
            if _within(moment, start, end):
                medians[m].append(moment - f.declared_at)
        if _within(f.declared_at, start, end):
            declared += 1
            overdue += f.late_steps
            affected += f.reached
            if f.per_person is not None:
                cost[f.currency or "EUR"] += f.per_person * f.apology_audience
    return Figures(open_by_severity=open_by,
                   median_hours={m: _median_hours(v) for m, v in medians.items()},
                   overdue_steps=overdue, affected=affected, incidents=declared,
                   compensation=dict(sorted(cost.items())))


@dataclass(frozen=True)
class TrendMonth:
    month: datetime  # first day of the month, local time
    median_hours: dict[str, float | None]


def _month_start(moment: datetime) -> datetime:
    local = timezone.localtime(moment)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _trend(facts: list[Fact], now: datetime) -> list[TrendMonth]:
    """Each milestone lands in the month (local time) it happened in: one pass, a binary
    search over the month starts per milestone."""
    months = [_month_start(now)]
    while len(months) < TREND_MONTHS:
        months.insert(0, _month_start(months[0] - timedelta(days=1)))
    values: list[dict[str, list[timedelta]]] = [{m: [] for m in MILESTONES} for _ in months]
    for f in facts:
        for m, moment in zip(MILESTONES, (f.contained_at, f.notified_at, f.closed_at),
                             strict=True):
            if moment is not None and moment >= months[0]:
                values[bisect_right(months, moment) - 1][m].append(moment - f.declared_at)
    return [TrendMonth(month, {m: _median_hours(v) for m, v in bucket.items()})
            for month, bucket in zip(months, values, strict=True)]


@dataclass(frozen=True)
class Headline:
    period: Period
    current: Figures
    previous: Figures
    trend: list[TrendMonth]


def summary_headline(*, user: AbstractBaseUser, filters: SummaryFilters,
                     now: datetime | None = None) -> Headline:
    now = now or timezone.now()
    period = period_bounds(filters.period, now)
    trend_start = _month_start(now)
    for _month in range(TREND_MONTHS - 1):
        trend_start = _month_start(trend_start - timedelta(days=1))
    facts = _facts(user=user, filters=filters, since=min(period.previous_start, trend_start),
                   now=now)
    return Headline(period=period,
                    current=_figures(facts, period.start, now + timedelta(microseconds=1)),
                    previous=_figures(facts, period.previous_start, period.start),
                    trend=_trend(facts, now))


# --- What the page polls ------------------------------------------------------------------------

def summary_version(*, user: AbstractBaseUser, now: datetime | None = None) -> str:
    """Changes whenever anything is recorded on a visible incident (every step change writes
    a timeline event) and once a minute, so clocks and overdue marks move too. One query."""
    now = now or timezone.now()
    latest = TimelineEvent.objects.filter(
        incident__in=incidents_visible_to(user)).aggregate(latest=Max("id"))["latest"]
    return f"{latest or 0}-{int(now.timestamp()) // 60}"


__all__ = ["DEFAULT_PERIOD", "DEFAULT_SORT", "PERIODS", "SORTS", "BreachCell", "Figures",
           "Headline", "Period", "SignoffCell", "StepCell", "SummaryFilters", "SummaryRow",
           "TrendMonth", "period_bounds", "person_name", "summary_headline",
           "summary_page_rows", "summary_row", "summary_rows", "summary_version"]
