"""The breach clock: when the organisation became aware, and the regulatory duties it starts.

A duty's deadline is stored on its row when the duty is created, recomputed only while the
duty is still pending (the awareness time was corrected), and frozen from the moment a
notice or a decision is recorded. Lateness is judged at that moment and kept.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from incidents.models import EventKind, Incident, Kind
from incidents.plan.jurisdictions import BY_CODE
from incidents.plan.models import BreachClock, DutyStatus, RegulatoryDuty
from incidents.timeline import in_log_language, label, moment, said, text, timeline_record, who

User = AbstractBaseUser


def needs_breach_clock(incident: Incident) -> bool:
    return incident.kind == Kind.DATA_BREACH or incident.pii_exposed


def _when(value: datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z")


def _sync_duties(*, incident: Incident, jurisdictions: list[str], aware_at: datetime,
                 now: datetime) -> tuple[list, list, list]:
    """Create missing duties and move pending deadlines; returns (created, moved, frozen)."""
    existing = {(d.jurisdiction, d.code): d for d in incident.duties.select_for_update()}
    created: list[RegulatoryDuty] = []
    moved: list[tuple[RegulatoryDuty, datetime | None, bool]] = []
    frozen: list[RegulatoryDuty] = []
    for code in jurisdictions:
        for duty in BY_CODE[code].duties:
            deadline = aware_at + timedelta(hours=duty.hours) if duty.hours else None
            row = existing.get((code, duty.code))
            if row is None:
                created.append(RegulatoryDuty.objects.create(
                    incident=incident, jurisdiction=code, code=duty.code,
                    title=str(duty.title), audience=duty.audience,
                    legal_basis=duty.legal_basis, deadline_at=deadline,
                    deadline_text=str(duty.deadline_text)))
            elif row.deadline_at != deadline:
                if row.status == DutyStatus.PENDING:
                    moved.append((row, row.deadline_at, row.is_overdue(now)))
                    row.deadline_at = deadline
                    row.save(update_fields=["deadline_at"])
                else:
                    frozen.append(row)  # decided: its deadline is history now
    return created, moved, frozen


@transaction.atomic
def breach_awareness_record(*, incident: Incident, actor: User, aware_at: datetime,
                            jurisdictions: list[str]) -> BreachClock:
    """Start (or correct) the clock and create the duties of the chosen jurisdictions."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if not needs_breach_clock(incident):
        raise ValidationError(_("The breach clock is for data breaches and incidents that "
                                "exposed personal data."))
    now = timezone.now()
    if aware_at > now:
        raise ValidationError({"aware_at": _("The moment of awareness cannot be in the "
                                             "future.")})
    unknown = [c for c in jurisdictions if c not in BY_CODE]
    if unknown or not jurisdictions:
        raise ValidationError({"jurisdictions": _("Choose at least one known jurisdiction "
                                                  "(unknown: %(codes)s).") % {
            "codes": ", ".join(unknown) or "-"}})
    clock = BreachClock.objects.filter(incident=incident).first()
    previous = clock.aware_at if clock else None
    if clock is None:
        clock = BreachClock.objects.create(incident=incident, aware_at=aware_at,
                                           recorded_by=actor, recorded_at=now)
    elif previous != aware_at:
        clock.aware_at, clock.recorded_by, clock.recorded_at = aware_at, actor, now
        clock.save(update_fields=["aware_at", "recorded_by", "recorded_at"])

    with in_log_language():  # titles are stored: one language for the record
        created, moved, frozen = _sync_duties(incident=incident, jurisdictions=jurisdictions,
                                              aware_at=aware_at, now=now)

    if previous is None:
        first = said("%(who)s recorded that we became aware of the breach at %(when)s.",
                     who=who(actor), when=moment(aware_at))
    elif previous != aware_at:
        first = said("%(who)s corrected the moment of awareness from %(old)s to %(when)s.",
                     who=who(actor), when=moment(aware_at), old=moment(previous))
    else:
        first = said("%(who)s updated the jurisdictions of the breach clock.", who=who(actor))
    message = [first]
    # Duty titles and deadline texts are stored in English from the catalogue of
    # jurisdictions: labels, translated when read.
    for row in created:
        message.append(said("Duty: %(title)s (%(basis)s), %(due)s.", title=label(row.title),
                            basis=row.legal_basis,
                            due=said("due %(when)s", when=moment(row.deadline_at))
                            if row.deadline_at else label(row.deadline_text, lower=True)))
    for row, old, was_overdue in moved:
        message.append(said("Deadline of %(title)s (%(basis)s) moved from %(old)s to "
                            "%(new)s.", title=label(row.title), basis=row.legal_basis,
                            old=moment(old) if old else text("-"),
                            new=moment(row.deadline_at) if row.deadline_at else text("-")))
        if was_overdue:
            message.append(said("It was already overdue when it moved."))
    for row in frozen:
        message.append(said("%(title)s (%(basis)s) was already decided: its deadline of "
                            "%(when)s stays.", title=label(row.title), basis=row.legal_basis,
                            when=moment(row.deadline_at)))
    if created or moved or previous != aware_at:
        kind = EventKind.ALERT if any(m[2] for m in moved) else EventKind.BREACH
        timeline_record(incident=incident, actor=actor, kind=kind, message=message,
                        data={"aware_at": aware_at.isoformat(),
                              "jurisdictions": sorted(jurisdictions),
                              "created": [r.pk for r in created],
                              "moved": [m[0].pk for m in moved]})
    return clock


def _pending_duty(incident: Incident, duty_id: int) -> RegulatoryDuty:
    duty = (RegulatoryDuty.objects.select_for_update()
            .filter(pk=duty_id, incident=incident).first())
    if duty is None:
        raise ValidationError(_("No such duty on this incident."))
    if duty.status != DutyStatus.PENDING:
        raise ValidationError(_("“%(title)s” is already decided (%(status)s); it cannot be "
                                "changed.") % {"title": duty.title,
                                               "status": duty.get_status_display()})
    return duty


@transaction.atomic
def duty_mark_notified(*, incident: Incident, duty_id: int, actor: User, notified_at: datetime,
                       reference: str) -> RegulatoryDuty:
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    duty = _pending_duty(incident, duty_id)
    reference = reference.strip()
    if not reference:
        raise ValidationError({"reference": _("Give the notice's reference (case number, "
                                              "letter id...).")})
    now = timezone.now()
    if notified_at > now:
        raise ValidationError({"notified_at": _("The notice cannot be dated in the future.")})
    clock = BreachClock.objects.get(incident=incident)
    if notified_at < clock.aware_at:
        raise ValidationError({"notified_at": _("The notice cannot predate the moment of "
                                                "awareness (%(when)s).") % {
            "when": _when(clock.aware_at)}})
    duty.status = DutyStatus.NOTIFIED
    duty.notified_at = notified_at
    duty.reference = reference
    duty.recorded_by = actor
    duty.decided_at = now
    duty.was_late = duty.deadline_at is not None and notified_at > duty.deadline_at
    duty.save(update_fields=["status", "notified_at", "reference", "recorded_by",
                             "decided_at", "was_late"])
    message = [said("%(who)s recorded the notice “%(title)s” (%(basis)s) sent at %(when)s, "
                    "reference %(ref)s.", who=who(actor), title=label(duty.title),
                    basis=duty.legal_basis, when=moment(notified_at), ref=reference)]
    if duty.was_late:
        message.append(said("LATE: the deadline was %(deadline)s.",
                            deadline=moment(duty.deadline_at)))
    timeline_record(incident=incident, actor=actor,
                    kind=EventKind.ALERT if duty.was_late else EventKind.BREACH,
                    message=message,
                    data={"duty": duty.pk, "status": duty.status, "late": duty.was_late})
    return duty


@transaction.atomic
def duty_mark_not_needed(*, incident: Incident, duty_id: int, actor: User, approver: User,
                         reason: str) -> RegulatoryDuty:
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    duty = _pending_duty(incident, duty_id)
    reason = reason.strip()
    if approver is None:
        raise ValidationError({"approver": _("Name who approved this decision.")})
    if not reason:
        raise ValidationError({"reason": _("Write why no notice is needed.")})
    duty.status = DutyStatus.NOT_NEEDED
    duty.approver = approver
    duty.decision_reason = reason
    duty.recorded_by = actor
    duty.decided_at = timezone.now()
    duty.save(update_fields=["status", "approver", "decision_reason", "recorded_by",
                             "decided_at"])
    timeline_record(incident=incident, actor=actor, kind=EventKind.BREACH,
                    message=said("%(who)s recorded that “%(title)s” (%(basis)s) is not "
                                 "needed, approved by %(approver)s: %(reason)s", who=who(actor),
                                 title=label(duty.title), basis=duty.legal_basis,
                                 approver=who(approver), reason=reason),
                    data={"duty": duty.pk, "status": duty.status,
                          "approver": approver.pk})
    return duty


# --- Reading -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BreachView:
    applies: bool
    clock: BreachClock | None
    duties: list[RegulatoryDuty]
    next_deadline: RegulatoryDuty | None  # the earliest pending duty with a deadline
    overdue: list[RegulatoryDuty]

    @property
    def late_filings(self) -> list[RegulatoryDuty]:
        return [d for d in self.duties if d.was_late]


def breach_view(*, incident: Incident, now: datetime | None = None) -> BreachView:
    if not needs_breach_clock(incident):
        return BreachView(False, None, [], None, [])
    now = now or timezone.now()
    clock = BreachClock.objects.filter(incident=incident).first()
    duties = list(incident.duties.select_related("approver", "recorded_by"))
    pending = sorted((d for d in duties if d.status == DutyStatus.PENDING and d.deadline_at),
                     key=lambda d: d.deadline_at)
    return BreachView(True, clock, duties, pending[0] if pending else None,
                      [d for d in pending if d.is_overdue(now)])
