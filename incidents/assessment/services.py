"""The affected audience of an incident: who got the faulty email, and who of them may
receive the apology.

Computed set-based in SQL — one statement per step, never a Python loop over people —
so that a million recipients take seconds. The SQL is plain enough to run on PostgreSQL
(production, tests) and SQLite (the embedded demo).

Steps of a computation, in one transaction:
1. lock the incident's AffectedAudience row (concurrent recomputations queue up);
2. DELETE the previous snapshot;
3. INSERT … SELECT the recipients of the faulty campaigns within the segments in scope,
   once per person, with the reason each one is excluded (if any);
4. one GROUP BY for the counts, stored on AffectedAudience and written to the timeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.models import Segment, SegmentMembership, Subscriber, SuppressionEntry
from incidents import playbook
from incidents.models import (
    AffectedAudience,
    AffectedRecipient,
    Assessment,
    EventKind,
    ExclusionReason,
    Incident,
    Kind,
)
from incidents.plan.signoff import signoffs_void_for_change
from incidents.services import checklist_item_prove, incident_update
from incidents.timeline import labels, said, timeline_record, who
from messaging.models import Campaign, CampaignRecipient

# Order matters: when several reasons apply, the first one is recorded.
EXCLUSION_ORDER = [ExclusionReason.SUPPRESSED, ExclusionReason.COMPLAINED,
                   ExclusionReason.BOUNCED, ExclusionReason.UNSUBSCRIBED,
                   ExclusionReason.NO_APOLOGY]


def _placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def _recipients_sql(campaign_ids: list[int]) -> tuple[str, list]:
    """One row per person who received any of the campaigns: (subscriber, campaign, sent)."""
    table = CampaignRecipient._meta.db_table
    if len(campaign_ids) == 1:
        return (f"SELECT subscriber_id, campaign_id, sent_at FROM {table} "
                f"WHERE campaign_id = %s", list(campaign_ids))
    # Several campaigns: keep each person's first receipt (a window, still set-based).
    return (f"SELECT subscriber_id, campaign_id, sent_at FROM ("
            f"SELECT subscriber_id, campaign_id, sent_at, ROW_NUMBER() OVER ("
            f"PARTITION BY subscriber_id ORDER BY sent_at, campaign_id) AS rn "
            f"FROM {table} WHERE campaign_id IN ({_placeholders(campaign_ids)})) firsts "
            f"WHERE rn = 1", list(campaign_ids))


def affected_insert_sql(*, incident_id: int, campaign_ids: list[int],
                        segment_ids: list[int], no_apology: bool) -> tuple[str, list]:
    """The INSERT … SELECT that materialises the snapshot. Public for the benchmark."""
    recipients, params = _recipients_sql(campaign_ids)
    membership = SegmentMembership._meta.db_table
    segment_filter = ""
    segment_params: list = []
    if segment_ids:
        segment_filter = f" AND m.segment_id IN ({_placeholders(segment_ids)})"
        segment_params = list(segment_ids)
    sql = f"""
        INSERT INTO {AffectedRecipient._meta.db_table}
            (incident_id, subscriber_id, campaign_id, sent_at, exclusion_reason,
             suppression_list_id)
        SELECT %s, r.subscriber_id, r.campaign_id, r.sent_at,
               CASE WHEN sup.list_id IS NOT NULL THEN %s
                    WHEN s.status = 'complained' THEN %s
                    WHEN s.status = 'bounced' THEN %s
                    WHEN s.status = 'unsubscribed' THEN %s
                    ELSE %s END,
               sup.list_id
        FROM ({recipients}) r
        JOIN {Subscriber._meta.db_table} s ON s.id = r.subscriber_id
        LEFT JOIN (SELECT email, MIN(suppression_list_id) AS list_id
                   FROM {SuppressionEntry._meta.db_table} GROUP BY email) sup
               ON sup.email = LOWER(s.email)
        WHERE EXISTS (SELECT 1 FROM {membership} m
                      WHERE m.subscriber_id = r.subscriber_id{segment_filter})
    """
    all_params = [incident_id, ExclusionReason.SUPPRESSED.value,
                  ExclusionReason.COMPLAINED.value, ExclusionReason.BOUNCED.value,
                  ExclusionReason.UNSUBSCRIBED.value,
                  ExclusionReason.NO_APOLOGY.value if no_apology else "",
                  *params, *segment_params]
    return sql, all_params


def _counts(incident_id: int) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT exclusion_reason, COUNT(*) FROM {AffectedRecipient._meta.db_table} "
            f"WHERE incident_id = %s GROUP BY exclusion_reason", [incident_id])
        return {reason: count for reason, count in cursor.fetchall()}


def _summary_counts(counts: dict[str, int]) -> dict:
    return {"reached": sum(counts.values()), "affected": counts.get("", 0),
            "excluded": {r: counts[r] for r in counts if r}}


@transaction.atomic
def affected_audience_compute(*, incident: Incident, actor: AbstractBaseUser | None,
                              campaigns: Iterable[Campaign | int],
                              segments: Iterable[Segment | int] = ()) -> AffectedAudience:
    """Choose the scope and (re)materialise the snapshot, replacing the previous one.

    `segments` empty means every segment the campaigns hit: a recipient counts when they
    belong to at least one segment.
    """
    campaign_ids = sorted({c if isinstance(c, int) else c.pk for c in campaigns})
    segment_ids = sorted({s if isinstance(s, int) else s.pk for s in segments})
    if not campaign_ids:
        raise ValidationError({"campaigns": _("Choose at least one faulty campaign.")})
    found = set(Campaign.objects.filter(pk__in=campaign_ids).values_list("pk", flat=True))
    if missing := [c for c in campaign_ids if c not in found]:
        raise ValidationError({"campaigns": _("Unknown campaign(s): %(ids)s.") % {
            "ids": ", ".join(map(str, missing))}})
    found = set(Segment.objects.filter(pk__in=segment_ids).values_list("pk", flat=True))
    if missing := [s for s in segment_ids if s not in found]:
        raise ValidationError({"segments": _("Unknown segment(s): %(ids)s.") % {
            "ids": ", ".join(map(str, missing))}})
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.closed_at is not None:
        raise ValidationError(_("The incident is closed; reopen it to recompute."))
    audience, _created = AffectedAudience.objects.get_or_create(incident=incident)
    before = _summary_counts(_counts(incident.pk)) if audience.computed_at else None

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AffectedRecipient._meta.db_table} "
                       f"WHERE incident_id = %s", [incident.pk])
        sql, params = affected_insert_sql(
            incident_id=incident.pk, campaign_ids=campaign_ids, segment_ids=segment_ids,
            no_apology=incident.kind == Kind.SUPPRESSION_SEND)
        cursor.execute(sql, params)
    after = _summary_counts(_counts(incident.pk))

    audience.campaigns.set(campaign_ids)
    audience.segments.set(segment_ids)
    audience.computed_at = timezone.now()
    audience.computed_by = actor
    audience.reached_count = after["reached"]
    audience.affected_count = after["affected"]
    audience.excluded_counts = after["excluded"]
    audience.save(update_fields=["computed_at", "computed_by", "reached_count",
                                 "affected_count", "excluded_counts"])
    names = ", ".join(Campaign.objects.filter(pk__in=campaign_ids)
                      .order_by("name").values_list("name", flat=True))
    message = [said("%(who)s computed the affected audience of %(campaigns)s: %(reached)s "
                    "reached, %(affected)s in the apology audience, %(excluded)s "
                    "excluded.", who=who(actor), campaigns=names, reached=after["reached"],
                    affected=after["affected"],
                    excluded=after["reached"] - after["affected"])]
    if before is not None:
        message.append(said("Before: %(reached)s reached, %(affected)s in the apology "
                            "audience.", reached=before["reached"],
                            affected=before["affected"]))
    timeline_record(incident=incident, actor=actor, kind=EventKind.UPDATED,
                    message=message,
                    data={"audience": {"campaigns": campaign_ids,
                                       "segments": segment_ids,
                                       "before": before, "after": after}})
    proof = said("The affected audience is computed: %(reached)s reached.",
                 reached=after["reached"])
    change = said("The affected audience changed (%(affected)s people)",
                  affected=after["affected"])
    checklist_item_prove(incident=incident, step_number=3, text=playbook.PROOF_AUDIENCE,
                         proof=proof)
    # Who gets the apology is part of what legal and security sign.
    signoffs_void_for_change(incident=incident, actor=actor, change=change,
                             why="affected audience recomputed")
    return audience


# --- Reads -----------------------------------------------------------------------------

@dataclass
class SegmentRow:
    segment: Segment
    reached: int
    affected: int


@dataclass
class AudienceSummary:
    audience: AffectedAudience | None
    campaigns: list[Campaign] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    per_segment: list[SegmentRow] = field(default_factory=list)
    excluded: list[tuple[str, str, int]] = field(default_factory=list)
    suppressed_by_list: list[tuple[str, int]] = field(default_factory=list)

    @property
    def computed(self) -> bool:
        return bool(self.audience and self.audience.computed_at)

    @property
    def reached(self) -> int:
        return self.audience.reached_count if self.audience else 0

    @property
    def affected(self) -> int:
        return self.audience.affected_count if self.audience else 0


def affected_audience_summary(*, incident: Incident) -> AudienceSummary:
    audience = AffectedAudience.objects.filter(incident=incident).first()
    if audience is None or audience.computed_at is None:
        return AudienceSummary(audience=audience)
    campaigns = list(audience.campaigns.all())
    segments = list(audience.segments.all())
    counts = audience.excluded_counts or {}
    excluded = [(r.value, r.label, counts[r.value]) for r in EXCLUSION_ORDER
                if counts.get(r.value)]
    membership = SegmentMembership._meta.db_table
    affected_table = AffectedRecipient._meta.db_table
    seg_filter, params = "", [incident.pk]
    if segments:
        seg_filter = f" AND m.segment_id IN ({_placeholders(segments)})"
        params += [s.pk for s in segments]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT m.segment_id, COUNT(*), "
            f"SUM(CASE WHEN a.exclusion_reason = '' THEN 1 ELSE 0 END) "
            f"FROM {affected_table} a JOIN {membership} m ON m.subscriber_id = a.subscriber_id "
            f"WHERE a.incident_id = %s{seg_filter} GROUP BY m.segment_id", params)
        rows = cursor.fetchall()
        cursor.execute(
            f"SELECT suppression_list_id, COUNT(*) FROM {affected_table} "
            f"WHERE incident_id = %s AND suppression_list_id IS NOT NULL "
            f"GROUP BY suppression_list_id", [incident.pk])
        by_list = dict(cursor.fetchall())
    names = Segment.objects.in_bulk([r[0] for r in rows])
    per_segment = sorted((SegmentRow(names[sid], reached, affected or 0)
                          for sid, reached, affected in rows),
                         key=lambda row: (-row.reached, row.segment.name))
    from audiences.models import SuppressionList

    lists = SuppressionList.objects.in_bulk(list(by_list))
    suppressed_by_list = sorted(((lists[pk].name, n) for pk, n in by_list.items()),
                                key=lambda item: item[0])
    return AudienceSummary(audience=audience, campaigns=campaigns, segments=segments,
                           per_segment=per_segment, excluded=excluded,
                           suppressed_by_list=suppressed_by_list)


def campaigns_for_scope() -> list[Campaign]:
    """Campaigns one may pick as faulty: those that reached someone, newest first."""
    return list(Campaign.objects.exclude(status="draft").select_related("esp_account"))


@dataclass
class Receipt:
    campaign: Campaign
    sent_at: datetime
    esp_message_id: str


@dataclass
class LookupAnswer:
    email: str
    subscriber: Subscriber | None
    receipts: list[Receipt]
    row: AffectedRecipient | None
    computed: bool = True

    @property
    def received(self) -> bool:
        return bool(self.receipts)

    @property
    def in_apology_audience(self) -> bool:
        return self.row is not None and self.row.in_apology_audience


def affected_audience_lookup(*, incident: Incident, email: str) -> LookupAnswer:
    """Did this person get the bad email, when, and will they get the apology?"""
    email = email.strip()
    audience = AffectedAudience.objects.filter(incident=incident).first()
    computed = bool(audience and audience.computed_at)
    subscriber = Subscriber.objects.filter(email__iexact=email).first()
    if subscriber is None:
        return LookupAnswer(email=email, subscriber=None, receipts=[], row=None,
                            computed=computed)
    campaign_ids = list(audience.campaigns.values_list("pk", flat=True)) if audience else []
    receipts = [Receipt(r.campaign, r.sent_at, r.esp_message_id) for r in
                CampaignRecipient.objects.filter(subscriber=subscriber,
                                                 campaign_id__in=campaign_ids)
                .select_related("campaign").order_by("sent_at")]
    row = (AffectedRecipient.objects.filter(incident=incident, subscriber=subscriber)
           .select_related("suppression_list").first())
    return LookupAnswer(email=subscriber.email, subscriber=subscriber, receipts=receipts,
                        row=row, computed=computed)


def affected_recipients(*, incident: Incident):
    """The apology audience: people in the snapshot with no exclusion reason."""
    return (Subscriber.objects.filter(
        pk__in=AffectedRecipient.objects.filter(incident=incident, exclusion_reason="")
        .values("subscriber_id")))


# --- The rest of the assessment --------------------------------------------------------

ASSESSMENT_FIELDS = ("pii_fields", "compensation_per_person", "currency", "other_costs",
                     "legal_involved", "law_enforcement_involved", "notes")


@transaction.atomic
def assessment_update(*, incident: Incident, actor: AbstractBaseUser, pii_exposed: bool,
                      **values) -> Assessment:
    unknown = set(values) - set(ASSESSMENT_FIELDS)
    if unknown:
        raise ValueError(f"not assessment fields: {', '.join(sorted(unknown))}")
    compensation = values.get("compensation_per_person")
    if compensation is not None and Decimal(compensation) < 0:
        raise ValidationError({"compensation_per_person": _(
            "Compensation cannot be negative.")})
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.closed_at is not None:
        raise ValidationError(_("The incident is closed; reopen it to change the assessment."))
    assessment, _created = Assessment.objects.get_or_create(incident=incident)
    changed = [name for name, value in values.items() if getattr(assessment, name) != value]
    for name in changed:
        setattr(assessment, name, values[name])
    if changed:
        assessment.updated_at = timezone.now()
        assessment.updated_by = actor
        assessment.save(update_fields=[*changed, "updated_at", "updated_by"])
        timeline_record(incident=incident, actor=actor, kind=EventKind.UPDATED,
                        message=said("%(who)s updated the assessment: %(fields)s.",
                                     who=who(actor),
                                     fields=labels(Assessment._meta.get_field(n).verbose_name
                                                   for n in changed)),
                        data={"assessment": changed})
    if incident.pii_exposed != pii_exposed:
        incident_update(incident=incident, actor=actor, pii_exposed=pii_exposed)
    return assessment


def assessment_for(*, incident: Incident) -> Assessment:
    """The saved assessment, or an unsaved blank one to show."""
    return Assessment.objects.filter(incident=incident).first() or Assessment(incident=incident)


def estimated_cost(*, assessment: Assessment, affected: int) -> Decimal | None:
    if assessment.compensation_per_person is None:
        return None
    return assessment.compensation_per_person * affected


# --- The war room panel ------------------------------------------------------------------

class AssessmentPanel:
    """Everything step 3's panel shows, computed only when the template reads it (the war
    room context is built for every htmx update, most of which never show this panel)."""

    def __init__(self, incident: Incident) -> None:
        self.incident = incident

    @property
    def no_apology(self) -> bool:
        return self.incident.kind == Kind.SUPPRESSION_SEND

    @cached_property
    def summary(self) -> AudienceSummary:
        return affected_audience_summary(incident=self.incident)

    @cached_property
    def campaigns(self) -> list[Campaign]:
        return campaigns_for_scope()

    @cached_property
    def segments(self) -> list[Segment]:
        return list(Segment.objects.all())

    @cached_property
    def chosen_campaigns(self) -> set[int]:
        return {c.pk for c in self.summary.campaigns}

    @cached_property
    def chosen_segments(self) -> set[int]:
        return {s.pk for s in self.summary.segments}

    @cached_property
    def assessment(self) -> Assessment:
        return assessment_for(incident=self.incident)

    @cached_property
    def estimated_cost(self) -> Decimal | None:
        return estimated_cost(assessment=self.assessment, affected=self.summary.affected)

    @property
    def pii_choices(self):
        from incidents.models import PiiField

        chosen = set(self.assessment.pii_fields or [])
        return [(value, label, value in chosen) for value, label in PiiField.choices]

    @property
    def answer_choices(self):
        from incidents.models import Answer

        return Answer.choices
