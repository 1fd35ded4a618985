"""Step 6, "Proceed with caution": deliverability after an incident.

Incidents calls deliverability's selectors (the dependency runs incidents ->
deliverability, never back): the 30 days before `declared_at` are the baseline, the
monitoring window runs from `declared_at` for DELIVERABILITY_MONITORING_DAYS. A threshold
crossed in the window raises one alert per threshold per window on the timeline (in the
same transaction that decides it), and the deliverability owner is emailed after commit.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.language import emails_by_language
from core.mail import team_mail_send
from deliverability import charts, resume, selectors, thresholds
from deliverability.formatting import percent_value
from deliverability.selectors import EventFilters, MailOf
from incidents.apology.send import source_ref
from incidents.models import (
    AffectedAudience,
    EventKind,
    Incident,
    StakeholderRole,
    TimelineEvent,
)
from incidents.timeline import joined, label, number, said, said_n, timeline_record
from messaging.models import Broadcast, Campaign

BASELINE_DAYS = 30


@dataclass(frozen=True)
class MonitoringWindow:
    baseline_start: datetime
    start: datetime  # = declared_at = baseline end
    end: datetime
    now: datetime

    @property
    def observed_end(self) -> datetime:
        return min(self.now, self.end)

    @property
    def is_over(self) -> bool:
        return self.now >= self.end

    @property
    def days_left(self) -> int:
        return max(0, (self.end - self.now).days)

    @property
    def bucket(self) -> str:
        return "hour" if self.observed_end - self.start <= timedelta(hours=48) else "day"


def monitoring_window(*, incident: Incident, now: datetime | None = None) -> MonitoringWindow:
    start = incident.declared_at
    return MonitoringWindow(
        baseline_start=start - timedelta(days=BASELINE_DAYS), start=start,
        end=start + timedelta(days=settings.DELIVERABILITY_MONITORING_DAYS),
        now=now or timezone.now())


def incident_event_filters(*, incident: Incident) -> EventFilters:
    """The account's traffic: the sender's reputation is account-wide."""
    return EventFilters()


@dataclass(frozen=True)
class IncidentMail:
    """The incident's own mail: its faulty campaigns' and its apology broadcasts'."""

    filters: EventFilters
    start: datetime  # its first send (a faulty campaign's start), else declared_at


def incident_mail(*, incident: Incident, window: MonitoringWindow) -> IncidentMail:
    campaigns = list(Campaign.objects.filter(
        pk__in=AffectedAudience.campaigns.through.objects.filter(
            affectedaudience__incident=incident).values("campaign_id"))
        .values_list("id", "started_at"))
    broadcasts = Broadcast.objects.filter(source_ref=source_ref(incident))
    # Judged from its first send: the faulty campaign's deliveries mostly precede the
    # declaration, and its complaints would otherwise be divided by almost nothing.
    start = min([when for _, when in campaigns if when] + [window.start])
    return IncidentMail(filters=EventFilters(mail_of=MailOf(
        campaign_ids=tuple(pk for pk, _ in campaigns),
        broadcast_ids=tuple(broadcasts.values_list("id", flat=True)))), start=start)


def _thresholds() -> tuple[thresholds.Threshold, ...]:
    return thresholds.preset(settings.DELIVERABILITY_THRESHOLD_PRESET)


def _alert_key(threshold: thresholds.Threshold, window: MonitoringWindow,
               scope: str = "account") -> str:
    key = f"{threshold.key}@{window.start.isoformat()}"
    return key if scope == "account" else f"{key}/{scope}"


@transaction.atomic
def deliverability_check(*, incident: Incident, now: datetime | None = None
                         ) -> list[TimelineEvent]:
    """Raise an alert for each threshold crossed, once per window and scope: the account's
    traffic since the incident, and the incident's own mail since its first send."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    window = monitoring_window(incident=incident, now=now)
    filters = incident_event_filters(incident=incident)
    own = incident_mail(incident=incident, window=window)
    scopes = [("account", selectors.delivery_totals(
                  start=window.start, end=window.observed_end, filters=filters)),
              ("own", selectors.delivery_totals(
                  start=own.start, end=window.observed_end, filters=own.filters))]
    hits = [(scope, totals, t) for scope, totals in scopes
            for t in thresholds.crossed(_thresholds(), totals)]
    if not hits:
        return []
    already = set(incident.events.filter(kind=EventKind.ALERT,
                                         data__has_key="deliverability_alert")
                  .values_list("data__deliverability_alert", flat=True))
    baseline = None
    raised = []
    for scope, totals, threshold in hits:
        key = _alert_key(threshold, window, scope)
        if key in already:
            continue
        if baseline is None:
            baseline = selectors.delivery_totals(start=window.baseline_start,
                                                 end=window.start, filters=filters)
        denominator = thresholds.RATE_DENOMINATOR[threshold.metric]
        volume = totals[denominator]
        # The counted messages as one phrase: each language words "1,200 sent messages".
        counted = (said_n("%(n)s sent message", "%(n)s sent messages", volume, n=volume)
                   if denominator == "sent" else
                   said_n("%(n)s delivered message", "%(n)s delivered messages", volume,
                          n=volume))
        values = {
            "metric": thresholds.METRICS[threshold.metric],
            "rate": number(percent_value(totals[threshold.metric]), 2),
            "threshold": threshold.label,
            "limit": number(percent_value(threshold.limit), 2), "volume": counted,
            "baseline": (joined([number(percent_value(baseline[threshold.metric]), 2), "%"],
                                sep=" ")
                         if baseline[threshold.metric] is not None
                         else label(gettext_lazy("no data")))}
        if scope == "account":
            message = said(
                "Deliverability alert: %(metric)s at %(rate).2f %% since the incident "
                "crosses “%(threshold)s” (%(limit).2f %%) over %(volume)s; baseline "
                "%(baseline)s.", **values)
        else:
            message = said(
                "Deliverability alert on this incident's own mail (its campaigns and "
                "apology): %(metric)s at %(rate).2f %% crosses “%(threshold)s” "
                "(%(limit).2f %%) over %(volume)s; account baseline %(baseline)s.", **values)
        event = timeline_record(
            incident=incident, actor=None, kind=EventKind.ALERT, message=message,
            data={"deliverability_alert": key, "metric": threshold.metric,
                  "level": threshold.level, "limit": threshold.limit,
                  "rate": totals[threshold.metric], "volume": totals[denominator],
                  "baseline": baseline[threshold.metric], "scope": scope,
                  "window_start": window.start.isoformat()})
        from incidents.monitoring.tasks import notify_deliverability_owner

        transaction.on_commit(lambda pk=event.pk: notify_deliverability_owner.delay(pk))
        raised.append(event)
    return raised


def deliverability_check_open_incidents(*, now: datetime | None = None) -> int:
    """Periodic: check every open incident still inside its monitoring window."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.DELIVERABILITY_MONITORING_DAYS)
    raised = 0
    for incident in Incident.objects.filter(closed_at__isnull=True, declared_at__gte=since):
        raised += len(deliverability_check(incident=incident, now=now))
    return raised


def deliverability_owners(*, incident: Incident) -> list:
    """Step 6's owner and the incident's deliverability stakeholders."""
    people = {}
    step = incident.steps.select_related("owner").filter(number=6).first()
    if step and step.owner:
        people[step.owner.pk] = step.owner
    for stake in incident.stakeholders.select_related("user").filter(
            role=StakeholderRole.DELIVERABILITY):
        people.setdefault(stake.user_id, stake.user)
    return [u for u in people.values() if u.is_active and u.email]


def deliverability_alert_notify(*, event: TimelineEvent) -> int:
    incident = event.incident
    groups = emails_by_language(deliverability_owners(incident=incident))
    link = f"{settings.AMENDS_BASE_URL.rstrip('/')}/incidents/{incident.pk}/#step-6"
    for language, recipients in groups.items():
        with translation.override(language):
            subject = _("[Deliverability] %(title)s: a threshold was crossed") % {
                "title": incident.title}
            body = "\n\n".join([
                event.text,
                _("Follow the cautious-resume plan in step 6: hold back further volume and "
                  "review before the next send."),
                link,
            ])
        team_mail_send(subject=subject, body=body + "\n", recipients=recipients,
                       language=language)
    return sum(len(r) for r in groups.values())


# --- The step 6 panel ------------------------------------------------------------------------

PANEL_METRICS = ("complaint_rate", "bounce_rate", "hard_bounce_rate", "unsubscribe_rate",
                 "delivered_rate")
CHART_METRICS = ("complaint_rate", "bounce_rate", "unsubscribe_rate")


@dataclass(frozen=True)
class MetricRow:
    metric: str
    label: str
    baseline: float | None
    window: float | None
    limits: list[thresholds.Threshold]
    crossed: list[thresholds.Threshold]
    own: float | None = None  # the incident's own mail
    own_crossed: tuple[thresholds.Threshold, ...] = ()


class DeliverabilityPanel:
    """Everything the step 6 panel shows, computed only when the template reads it."""

    def __init__(self, incident: Incident, now: datetime | None = None) -> None:
        self.incident = incident
        self.window = monitoring_window(incident=incident, now=now)
        self.filters = incident_event_filters(incident=incident)
        self.thresholds = _thresholds()
        self.preset = thresholds.PRESET_LABELS.get(settings.DELIVERABILITY_THRESHOLD_PRESET,
                                                   settings.DELIVERABILITY_THRESHOLD_PRESET)

    @cached_property
    def baseline(self) -> dict:
        return selectors.delivery_totals(start=self.window.baseline_start,
                                         end=self.window.start, filters=self.filters)

    @cached_property
    def totals(self) -> dict:
        return selectors.delivery_totals(start=self.window.start,
                                         end=self.window.observed_end, filters=self.filters)

    @cached_property
    def own(self) -> IncidentMail:
        return incident_mail(incident=self.incident, window=self.window)

    @cached_property
    def own_totals(self) -> dict:
        """The incident's own mail (its campaigns and apology), since its first send."""
        return selectors.delivery_totals(start=self.own.start, end=self.window.observed_end,
                                         filters=self.own.filters)

    @cached_property
    def has_events(self) -> bool:
        return bool(sum(self.baseline[k] for k in selectors.COUNTS)
                    + sum(self.totals[k] for k in selectors.COUNTS))

    @cached_property
    def rows(self) -> list[MetricRow]:
        crossed = thresholds.crossed(self.thresholds, self.totals)
        own_crossed = thresholds.crossed(self.thresholds, self.own_totals)
        return [MetricRow(
            metric=m, label=str(thresholds.METRICS[m]), baseline=self.baseline[m],
            window=self.totals[m], limits=[t for t in self.thresholds if t.metric == m],
            crossed=[t for t in crossed if t.metric == m], own=self.own_totals[m],
            own_crossed=tuple(t for t in own_crossed if t.metric == m))
            for m in PANEL_METRICS]

    @cached_property
    def series(self) -> list[dict]:
        """Seven days before the incident (daily, for context), then the window so far
        (hourly for its first two days, daily after). Two grouped queries."""
        before = selectors.delivery_series(start=self.window.start - timedelta(days=7),
                                           end=self.window.start, bucket="day",
                                           filters=self.filters)
        after = selectors.delivery_series(start=self.window.start,
                                          end=self.window.observed_end,
                                          bucket=self.window.bucket, filters=self.filters)
        for row in before:
            row["before"], row["fmt"] = True, "day"
        for row in after:
            row["before"], row["fmt"] = False, self.window.bucket
        return before + after

    @cached_property
    def charts(self) -> list[str]:
        out = []
        for metric in CHART_METRICS:
            denominator = thresholds.RATE_DENOMINATOR[metric]
            out.append(charts.rate_chart_svg(
                title=str(thresholds.METRICS[metric]),
                points=[charts.Point(when=row["bucket"], rate=row[metric],
                                     volume=row[denominator], before=row["before"],
                                     bucket=row["fmt"]) for row in self.series],
                baseline=self.baseline[metric],
                thresholds=[(t.label, t.limit) for t in self.thresholds if t.metric == metric]))
        return out

    @cached_property
    def normal_daily_volume(self) -> int | None:
        sent = self.baseline["sent"]
        return round(sent / BASELINE_DAYS) if sent else None

    @cached_property
    def resume_plan(self) -> list[resume.ResumeDay]:
        return resume.cautious_resume_plan(normal_daily_volume=self.normal_daily_volume)


def deliverability_panel(*, incident: Incident) -> DeliverabilityPanel:
    return DeliverabilityPanel(incident)
