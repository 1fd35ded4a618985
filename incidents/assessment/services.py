"""The affected audience of an incident: who got the faulty email, and who of them may
receive the apology.

Computed set-based in SQL — one statement per step, never a Python loop over people —
so that a million recipients take seconds. The SQL is plain enough to run on PostgreSQL
(production, tests) and SQLite (the embedded demo).

Steps of a computation, in one transaction:
1. lock the incident's AffectedAudience row (concurrent recomputations and the send queue
   up; the incident itself is locked only for the short ending, step 4);
2. DELETE the previous snapshot;
3. INSERT … SELECT the recipients of the faulty campaigns within the segments in scope,
   once per person, with the reason each one is excluded (if any) — in chunks by ranges of
   subscriber id, so a caller can show progress and cancel between two chunks;
4. one GROUP BY for the counts, stored on AffectedAudience and written to the timeline.
A cancelled or failed computation rolls back whole: the previous snapshot stays.

From the war room it runs in a Celery task (`affected_audience_request` queues an
AudienceComputation; `affected_audience_run` is the task's work), never in the request.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.models import Segment, SegmentMembership, Subscriber, SuppressionEntry
from incidents import playbook
from incidents.models import (
    AffectedAudience,
    AffectedRecipient,
    Assessment,
    AudienceComputation,
    ComputationStatus,
    EventKind,
    ExclusionReason,
    Incident,
    Kind,
)
from incidents.plan.signoff import signoffs_void_for_change
from incidents.services import checklist_item_prove, incident_update
from incidents.timeline import labels, said, timeline_record, who
from messaging.models import Campaign, CampaignRecipient

log = logging.getLogger(__name__)

# Order matters: when several reasons apply, the first one is recorded.
EXCLUSION_ORDER = [ExclusionReason.SUPPRESSED, ExclusionReason.COMPLAINED,
                   ExclusionReason.BOUNCED, ExclusionReason.UNSUBSCRIBED,
                   ExclusionReason.NO_APOLOGY]


def _placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def _recipients_sql(campaign_ids: list[int],
                    subscribers: tuple[int, int] | None = None) -> tuple[str, list]:
    """One row per person who received any of the campaigns: (subscriber, campaign, sent);
    `subscribers` keeps one range of subscriber ids (inclusive)."""
    table = CampaignRecipient._meta.db_table
    where, params = "", []
    if subscribers is not None:
        where, params = " AND subscriber_id BETWEEN %s AND %s", list(subscribers)
    if len(campaign_ids) == 1:
        return (f"SELECT subscriber_id, campaign_id, sent_at FROM {table} "
                f"WHERE campaign_id = %s{where}", [*campaign_ids, *params])
    # Several campaigns: keep each person's first receipt (a window, still set-based; a
    # range of subscribers holds every receipt of each of them, so chunks agree).
    return (f"SELECT subscriber_id, campaign_id, sent_at FROM ("
            f"SELECT subscriber_id, campaign_id, sent_at, ROW_NUMBER() OVER ("
            f"PARTITION BY subscriber_id ORDER BY sent_at, campaign_id) AS rn "
            f"FROM {table} WHERE campaign_id IN ({_placeholders(campaign_ids)}){where}) "
            f"firsts WHERE rn = 1", [*campaign_ids, *params])


def affected_insert_sql(*, incident_id: int, campaign_ids: list[int],
                        segment_ids: list[int], no_apology: bool,
                        subscribers: tuple[int, int] | None = None) -> tuple[str, list]:
    """The INSERT … SELECT that materialises the snapshot (or the part of it within one
    range of subscriber ids). Public for the benchmark."""
    recipients, params = _recipients_sql(campaign_ids, subscribers)
    membership = SegmentMembership._meta.db_table
    # Each address's lowest list, by index per person (not a GROUP BY of every suppressed
    # address, which each chunk would redo).
    suppression = SuppressionEntry._meta.db_table
    segment_filter = ""
    segment_params: list = []
    if segment_ids:
        segment_filter = f" AND m.segment_id IN ({_placeholders(segment_ids)})"
        segment_params = list(segment_ids)
    # The range on subscribers too, or the planner scans all of them for every chunk.
    subscriber_filter, subscriber_params = "", []
    if subscribers is not None:
        subscriber_filter, subscriber_params = " AND s.id BETWEEN %s AND %s", list(subscribers)
    sql = f"""
        INSERT INTO {AffectedRecipient._meta.db_table}
            (incident_id, subscriber_id, campaign_id, sent_at, exclusion_reason,
             suppression_list_id)
        SELECT %s, r.subscriber_id, r.campaign_id, r.sent_at,
               CASE WHEN sup.suppression_list_id IS NOT NULL THEN %s
                    WHEN s.status = 'complained' THEN %s
                    WHEN s.status = 'bounced' THEN %s
                    WHEN s.status = 'unsubscribed' THEN %s
                    ELSE %s END,
               sup.suppression_list_id
        FROM ({recipients}) r
        JOIN {Subscriber._meta.db_table} s ON s.id = r.subscriber_id
        LEFT JOIN {suppression} sup
               ON sup.email = LOWER(s.email)
              AND NOT EXISTS (SELECT 1 FROM {suppression} lower_list
                              WHERE lower_list.email = sup.email
                                AND lower_list.suppression_list_id < sup.suppression_list_id)
        WHERE EXISTS (SELECT 1 FROM {membership} m
                      WHERE m.subscriber_id = r.subscriber_id{segment_filter}){subscriber_filter}
    """
    all_params = [incident_id, ExclusionReason.SUPPRESSED.value,
                  ExclusionReason.COMPLAINED.value, ExclusionReason.BOUNCED.value,
                  ExclusionReason.UNSUBSCRIBED.value,
                  ExclusionReason.NO_APOLOGY.value if no_apology else "",
                  *params, *segment_params, *subscriber_params]
    return sql, all_params


# A chunk spans at least this many subscriber ids, and there are at most CHUNKS_MAX: enough
# steps for a progress bar that moves, few enough that each statement stays set-based.
CHUNK_MIN_IDS = 10_000
CHUNKS_MAX = 50


def subscriber_ranges(campaign_ids: list[int]) -> list[tuple[int, int]]:
    """Ranges of subscriber ids (inclusive) that split the campaigns' recipients into
    chunks: one indexed MIN/MAX, no scan."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MIN(subscriber_id), MAX(subscriber_id) FROM "
            f"{CampaignRecipient._meta.db_table} WHERE campaign_id IN "
            f"({_placeholders(campaign_ids)})", campaign_ids)
        low, high = cursor.fetchone()
    if low is None:
        return []
    chunks = min(CHUNKS_MAX, max(1, math.ceil((high - low + 1) / CHUNK_MIN_IDS)))
    width = math.ceil((high - low + 1) / chunks)
    return [(start, min(high, start + width - 1)) for start in range(low, high + 1, width)]


def _counts(incident_id: int) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT exclusion_reason, COUNT(*) FROM {AffectedRecipient._meta.db_table} "
            f"WHERE incident_id = %s GROUP BY exclusion_reason", [incident_id])
        return {reason: count for reason, count in cursor.fetchall()}


def breakdown_counts(incident_id: int, segment_ids: list[int]) -> tuple[list, dict]:
    """Per segment (reached, in the apology audience) and per suppression list: computed
    with the snapshot and stored on it, never on a page load."""
    membership = SegmentMembership._meta.db_table
    affected_table = AffectedRecipient._meta.db_table
    seg_filter, params = "", [incident_id]
    if segment_ids:
        seg_filter = f" AND m.segment_id IN ({_placeholders(segment_ids)})"
        params += segment_ids
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT m.segment_id, COUNT(*), "
            f"SUM(CASE WHEN a.exclusion_reason = '' THEN 1 ELSE 0 END) "
            f"FROM {affected_table} a JOIN {membership} m ON m.subscriber_id = a.subscriber_id "
            f"WHERE a.incident_id = %s{seg_filter} GROUP BY m.segment_id", params)
        per_segment = [[sid, reached, int(affected or 0)]
                       for sid, reached, affected in cursor.fetchall()]
        cursor.execute(
            f"SELECT suppression_list_id, COUNT(*) FROM {affected_table} "
            f"WHERE incident_id = %s AND suppression_list_id IS NOT NULL "
            f"GROUP BY suppression_list_id", [incident_id])
        by_list = {str(pk): n for pk, n in cursor.fetchall()}
    return per_segment, by_list


def _summary_counts(counts: dict[str, int]) -> dict:
    return {"reached": sum(counts.values()), "affected": counts.get("", 0),
            "excluded": {r: counts[r] for r in counts if r}}


def affected_audience_scope(*, campaigns: Iterable[Campaign | int],
                            segments: Iterable[Segment | int] = ()
                            ) -> tuple[list[int], list[int]]:
    """The scope's campaign and segment ids, checked; ValidationError names what is wrong."""
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
    return campaign_ids, segment_ids


Progress = Callable[[int, int], None]


@transaction.atomic
def affected_audience_compute(*, incident: Incident, actor: AbstractBaseUser | None,
                              campaigns: Iterable[Campaign | int],
                              segments: Iterable[Segment | int] = (),
                              progress: Progress | None = None) -> AffectedAudience:
    """Choose the scope and (re)materialise the snapshot, replacing the previous one.

    `segments` empty means every segment the campaigns hit: a recipient counts when they
    belong to at least one segment. `progress(done, total)` is called before the first
    chunk and after each step; whatever it raises rolls the whole computation back.
    """
    campaign_ids, segment_ids = affected_audience_scope(campaigns=campaigns,
                                                        segments=segments)
    incident = Incident.objects.get(pk=incident.pk)
    _refuse_if_closed(incident)
    # The audience row stays locked until the end: a second computation and the send
    # (apology_send_start locks it first too) wait for the new snapshot. The incident is
    # locked only for the short ending below, so the war room's other writes (sign-off,
    # plan, steps) do not wait out a million-row computation.
    AffectedAudience.objects.get_or_create(incident=incident)
    audience = AffectedAudience.objects.select_for_update().get(incident=incident)
    # The stored counts of the last computation (no GROUP BY over the old snapshot).
    before = ({"reached": audience.reached_count, "affected": audience.affected_count,
               "excluded": dict(audience.excluded_counts or {})}
              if audience.computed_at else None)

    ranges = subscriber_ranges(campaign_ids)
    total = len(ranges) + 1  # the chunks, then the counts
    if progress:
        progress(0, total)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AffectedRecipient._meta.db_table} "
                       f"WHERE incident_id = %s", [incident.pk])
        for done, subscribers in enumerate(ranges, start=1):
            sql, params = affected_insert_sql(
                incident_id=incident.pk, campaign_ids=campaign_ids, segment_ids=segment_ids,
                no_apology=incident.kind == Kind.SUPPRESSION_SEND, subscribers=subscribers)
            cursor.execute(sql, params)
            if progress:
                progress(done, total)
    after = _summary_counts(_counts(incident.pk))
    # NO KEY: rows that merely point at the incident (timeline events, notes) do not wait.
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    _refuse_if_closed(incident)  # again: it may have been closed while the rows went in

    audience.campaigns.set(campaign_ids)
    audience.segments.set(segment_ids)
    audience.computed_at = timezone.now()
    audience.computed_by = actor
    audience.reached_count = after["reached"]
    audience.affected_count = after["affected"]
    audience.excluded_counts = after["excluded"]
    audience.segment_counts, audience.suppression_list_counts = breakdown_counts(
        incident.pk, segment_ids)
    if progress:
        progress(total, total)
    audience.save(update_fields=["computed_at", "computed_by", "reached_count",
                                 "affected_count", "excluded_counts", "segment_counts",
                                 "suppression_list_counts"])
    message = [said("%(who)s computed the affected audience of %(campaigns)s: %(reached)s "
                    "reached, %(affected)s in the apology audience, %(excluded)s "
                    "excluded.", who=who(actor), campaigns=_campaign_names(campaign_ids),
                    reached=after["reached"],
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


# --- In the background (the war room's path) ------------------------------------------

# Progress of a running computation: the computation is one transaction, so it can only be
# seen from outside through the cache (Redis in production, files in the embedded run).
PROGRESS_KEY = "incidents:audience-progress:{run}"
PROGRESS_TTL = 24 * 3600
# A running computation that has reported nothing for this long has lost its worker:
# Cancel then ends it at once instead of waiting for a check that never comes.
STALE_AFTER = 600


class ComputationCancelled(Exception):
    """Raised between two chunks when someone asked to cancel: rolls the work back."""


def _progress_write(run_id: int, done: int, total: int) -> None:
    cache.set(PROGRESS_KEY.format(run=run_id),
              {"done": done, "total": total, "at": time.time()}, PROGRESS_TTL)


def _campaign_names(campaign_ids: list[int]) -> str:
    return ", ".join(Campaign.objects.filter(pk__in=campaign_ids).order_by("name")
                     .values_list("name", flat=True))


def _refuse_if_closed(incident: Incident) -> None:
    if incident.closed_at is not None:
        raise ValidationError(_("The incident is closed; reopen it to recompute."))


@transaction.atomic
def affected_audience_request(*, incident: Incident, actor: AbstractBaseUser,
                              campaigns: Iterable[Campaign | int],
                              segments: Iterable[Segment | int] = ()) -> AudienceComputation:
    """Check the scope and queue its computation; returns at once. One at a time per
    incident: a second request while one is queued or running is refused."""
    campaign_ids, segment_ids = affected_audience_scope(campaigns=campaigns,
                                                        segments=segments)
    _refuse_if_closed(incident)
    try:
        with transaction.atomic():  # the partial unique constraint is the referee
            run = AudienceComputation.objects.create(
                incident=incident, campaign_ids=campaign_ids, segment_ids=segment_ids,
                requested_by=actor)
    except IntegrityError:
        raise ValidationError(_(
            "The affected audience is already being computed for this incident: wait "
            "for it to finish, or cancel it first.")) from None
    _progress_write(run.pk, 0, 0)
    timeline_record(
        incident=incident, actor=actor, kind=EventKind.UPDATED,
        message=said("%(who)s started computing the affected audience of %(campaigns)s.",
                     who=who(actor), campaigns=_campaign_names(campaign_ids)),
        data={"audience_run": {"run": run.pk, "status": "started",
                               "campaigns": campaign_ids, "segments": segment_ids}})
    from incidents.assessment.tasks import compute_affected_audience

    transaction.on_commit(lambda: compute_affected_audience.delay(run.pk))
    return run


def _run_end(run: AudienceComputation, *, status: str, actor: AbstractBaseUser | None,
             message: list, error: str = "") -> bool:
    """Record how a run that did not finish ended; False if it had already ended."""
    with transaction.atomic():
        ended = AudienceComputation.objects.filter(
            pk=run.pk, status__in=[ComputationStatus.QUEUED, ComputationStatus.RUNNING],
        ).update(status=status, finished_at=timezone.now(), error=error)
        if ended:
            timeline_record(incident=run.incident, actor=actor, kind=EventKind.UPDATED,
                            message=message,
                            data={"audience_run": {"run": run.pk, "status": status}})
    cache.delete(PROGRESS_KEY.format(run=run.pk))
    return bool(ended)


def _cancelled_sentences(by: AbstractBaseUser | None, incident: Incident) -> list:
    return [said("%(who)s cancelled the computation of the affected audience.", who=who(by)),
            _kept_sentence(incident)]


def _kept_sentence(incident: Incident):
    audience = AffectedAudience.objects.filter(incident=incident,
                                               computed_at__isnull=False).first()
    if audience is None:
        return said("No affected audience has been computed yet.")
    return said("The previous one is kept: %(reached)s reached, %(affected)s in the apology "
                "audience.", reached=audience.reached_count,
                affected=audience.affected_count)


def affected_audience_run(*, run_id: int) -> str | None:
    """The task's work: claim the queued run, compute with progress, and record how it
    ended. Returns the final status, or None when there was nothing to do."""
    claimed = AudienceComputation.objects.filter(
        pk=run_id, status=ComputationStatus.QUEUED).update(
        status=ComputationStatus.RUNNING, started_at=timezone.now())
    if not claimed:
        return None  # gone, cancelled while queued, or another worker has it
    run = AudienceComputation.objects.select_related(
        "incident", "requested_by", "cancel_requested_by").get(pk=run_id)

    def progress(done: int, total: int) -> None:
        _progress_write(run_id, done, total)
        # READ COMMITTED: each check sees a cancel committed since the last one.
        if AudienceComputation.objects.filter(
                pk=run_id, cancel_requested_at__isnull=False).exists():
            raise ComputationCancelled

    try:
        with transaction.atomic():
            affected_audience_compute(incident=run.incident, actor=run.requested_by,
                                      campaigns=run.campaign_ids, segments=run.segment_ids,
                                      progress=progress)
            AudienceComputation.objects.filter(pk=run_id).update(
                status=ComputationStatus.DONE, finished_at=timezone.now())
    except ComputationCancelled:
        run.refresh_from_db(fields=["cancel_requested_by"])
        by = run.cancel_requested_by
        _run_end(run, status=ComputationStatus.CANCELLED, actor=by,
                 message=_cancelled_sentences(by, run.incident))
        return ComputationStatus.CANCELLED
    except Exception as exc:
        if not isinstance(exc, ValidationError):
            log.exception("affected audience computation %s failed", run_id)
        error = error_text_of(exc)
        message = [said("Computing the affected audience failed: %(error)s", error=error),
                   _kept_sentence(run.incident)]
        _run_end(run, status=ComputationStatus.FAILED, actor=None, message=message,
                 error=error)
        return ComputationStatus.FAILED
    cache.delete(PROGRESS_KEY.format(run=run_id))
    return ComputationStatus.DONE


def error_text_of(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@transaction.atomic
def affected_audience_cancel(*, incident: Incident, actor: AbstractBaseUser
                             ) -> AudienceComputation:
    """Ask the running computation to stop at its next chunk (it rolls back and records
    the cancellation); one still queued, or one whose worker is gone, ends here."""
    run = (AudienceComputation.objects.select_for_update()
           .filter(incident=incident, status__in=[ComputationStatus.QUEUED,
                                                  ComputationStatus.RUNNING]).first())
    if run is None:
        raise ValidationError(_("No computation of the affected audience is running."))
    if run.cancel_requested_at is not None and not _is_stale(run):
        return run
    run.cancel_requested_at, run.cancel_requested_by = timezone.now(), actor
    run.save(update_fields=["cancel_requested_at", "cancel_requested_by"])
    if run.status == ComputationStatus.QUEUED or _is_stale(run):
        _run_end(run, status=ComputationStatus.CANCELLED, actor=actor,
                 message=_cancelled_sentences(actor, incident))
        run.refresh_from_db()
    return run


# A run still queued after this long may have lost its task message (a worker that died
# holding it, a broker restarted empty): the watchdog sends it again.
QUEUE_AGAIN_AFTER = 60
REQUEUED_KEY = "incidents:audience-requeued:{run}:{at}"


def affected_audience_watchdog() -> list[int]:
    """Queue again the runs that have waited for a worker for QUEUE_AGAIN_AFTER seconds,
    each at most once in that time. A second message for a run whose first is merely
    late is harmless: claiming the run is conditional, so the later task finds nothing to
    do. Returns the runs queued again."""
    from incidents.assessment.tasks import compute_affected_audience

    waiting = AudienceComputation.objects.filter(
        status=ComputationStatus.QUEUED, cancel_requested_at__isnull=True,
        requested_at__lt=timezone.now() - timedelta(seconds=QUEUE_AGAIN_AFTER),
    ).values_list("pk", "requested_at")
    again = [pk for pk, at in waiting
             if cache.add(REQUEUED_KEY.format(run=pk, at=at.timestamp()), 1,
                          QUEUE_AGAIN_AFTER)]
    for pk in again:
        compute_affected_audience.delay(pk)
    if again:
        log.warning("audience computations queued again (their task looked lost): %s", again)
    return again


def _is_stale(run: AudienceComputation) -> bool:
    if run.status != ComputationStatus.RUNNING:
        return False
    seen = (cache.get(PROGRESS_KEY.format(run=run.pk)) or {}).get("at")
    if seen is None:
        seen = (run.started_at or run.requested_at).timestamp()
    return time.time() - seen > STALE_AFTER


@dataclass
class RunState:
    """What step 3 shows of the latest background computation."""

    run: AudienceComputation
    done: int = 0
    total: int = 0

    @property
    def is_active(self) -> bool:
        return self.run.is_active

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


def affected_audience_run_state(*, incident: Incident) -> RunState | None:
    """The incident's latest computation (one query) with its progress (one cache read)."""
    run = (AudienceComputation.objects.filter(incident=incident).order_by("-pk")
           .select_related("requested_by").first())
    if run is None:
        return None
    state = RunState(run=run)
    if run.is_active:
        progress = cache.get(PROGRESS_KEY.format(run=run.pk)) or {}
        state.done, state.total = progress.get("done", 0), progress.get("total", 0)
    return state


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
    names = Segment.objects.in_bulk([sid for sid, _r, _a in audience.segment_counts])
    per_segment = sorted((SegmentRow(names[sid], reached, affected)
                          for sid, reached, affected in audience.segment_counts
                          if sid in names),
                         key=lambda row: (-row.reached, row.segment.name))
    from audiences.models import SuppressionList

    by_list = {int(pk): n for pk, n in audience.suppression_list_counts.items()}
    lists = SuppressionList.objects.in_bulk(list(by_list)) if by_list else {}
    suppressed_by_list = sorted(((lists[pk].name, n) for pk, n in by_list.items()
                                 if pk in lists), key=lambda item: item[0])
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
    subscriber = Subscriber.objects.with_email(email).first()
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
        # The run is read first: a run ends in the transaction that stores its counts, so a
        # page that reads it as ended also sees the counts. Read the other way round, a run
        # ending between the two reads left a page with neither the bar nor the counts.
        self.run  # noqa: B018
        return affected_audience_summary(incident=self.incident)

    @cached_property
    def run(self) -> RunState | None:
        return affected_audience_run_state(incident=self.incident)

    @property
    def run_ended_unseen(self) -> bool:
        """The latest computation was cancelled or failed after the counts shown."""
        run, audience = self.run, self.summary.audience
        if run is None or run.is_active or run.run.status == ComputationStatus.DONE:
            return False
        return not (audience and audience.computed_at
                    and audience.computed_at > (run.run.finished_at or run.run.requested_at))

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
