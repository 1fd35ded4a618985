"""Writes to an incident. Every state change records a TimelineEvent in the same
transaction; notifications leave only after commit."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.language import emails_by_language
from core.mail import team_mail_send
from incidents import playbook
from incidents.learn.selectors import playbook_lessons_for
from incidents.models import (
    ChecklistItem,
    EventKind,
    Incident,
    Kind,
    ResponseStep,
    Severity,
    Stakeholder,
    StakeholderRole,
    Status,
    StepStatus,
    TimelineEvent,
)
from incidents.signals import incident_closing, incident_details_changed
from incidents.timeline import (
    Sentence,
    in_log_language,
    label,
    labels,
    said,
    said_n,
    text,
    timeline_record,
    who,
)

User = AbstractBaseUser


# --- Declaration and details -------------------------------------------------------------

@transaction.atomic
def incident_declare(*, actor: User, title: str, kind: str, severity: int,
                     detected_at: datetime, summary: str = "", pii_exposed: bool = False,
                     lead: User | None = None) -> Incident:
    now = timezone.now()
    if detected_at > now:
        raise ValidationError({"detected_at": _("Detection time cannot be in the future.")})
    if kind not in Kind.values:
        raise ValidationError({"kind": _("Unknown incident kind.")})
    if severity not in Severity.values:
        raise ValidationError({"severity": _("Severity must be SEV1 to SEV4.")})
    lead = lead or actor
    incident = Incident.objects.create(
        title=title.strip(), kind=kind, severity=severity, summary=summary.strip(),
        pii_exposed=pii_exposed or kind == Kind.DATA_BREACH,
        restricted=playbook.is_restricted_kind(kind), lead=lead, declared_by=actor,
        detected_at=detected_at, declared_at=now,
    )
    with in_log_language():
        steps = ResponseStep.objects.bulk_create(
            ResponseStep(
                incident=incident, number=d.number, title=str(d.title), goal=str(d.goal),
                owning_teams=str(d.owning_teams), risk_impact=str(d.risk_impact),
                target_minutes=d.targets.get(severity), owner=lead if d.number <= 2 else None,
            )
            for d in playbook.STEPS
        )
        # The playbook's items, then the lessons earlier incidents of this kind adopted.
        lessons = playbook_lessons_for(kind=kind)
        ChecklistItem.objects.bulk_create(
            ChecklistItem(step=step, text=text, position=i, from_playbook=True)
            for step in steps
            for i, text in enumerate([*playbook.checklist_for(kind, step.number),
                                      *lessons.get(step.number, [])])
        )
        Stakeholder.objects.create(incident=incident, user=lead, role=StakeholderRole.LEAD)
    timeline_record(
        incident=incident, actor=actor, kind=EventKind.DECLARED,
        message=said("%(who)s declared a %(sev)s incident: %(kind)s. Lead: %(lead)s.",
                     who=who(actor), sev=Severity(severity).label, kind=Kind(kind).label,
                     lead=who(lead)),
        data={"kind": kind, "severity": severity, "lead": lead.pk},
    )
    incident_details_changed.send(sender=Incident, incident=incident, actor=actor, reason="")
    return incident


EDITABLE_FIELDS = ("title", "summary", "severity", "cause", "pii_exposed", "kind", "lead")


@transaction.atomic
def incident_update(*, incident: Incident, actor: User, reason: str = "",
                    **changes: Any) -> list[str]:
    """Change details; returns the names of fields that really changed.

    Sign-off requirements only ratchet up: raising kind, severity or personal data adds
    signers; lowering them asks the dropped signers to approve (`reason` goes with it)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    changed: list[str] = []
    diff: dict[str, list[Any]] = {}
    for name, value in changes.items():
        old = getattr(incident, name)
        if old == value:
            continue
        setattr(incident, name, value)
        changed.append(name)
        diff[name] = [getattr(old, "pk", old), getattr(value, "pk", value)]
    if not changed:
        return []
    if "kind" in changed:
        incident.restricted = incident.restricted or playbook.is_restricted_kind(incident.kind)
        changed.append("restricted")
        if incident.kind == Kind.DATA_BREACH and not incident.pii_exposed:
            incident.pii_exposed = True
            changed.append("pii_exposed")
    incident.save(update_fields=changed)
    if "lead" in changed:
        Stakeholder.objects.get_or_create(incident=incident, user=incident.lead,
                                          role=StakeholderRole.LEAD)
    timeline_record(incident=incident, actor=actor, kind=EventKind.UPDATED,
                    message=said("%(who)s changed %(fields)s.", who=who(actor),
                                 fields=labels(Incident._meta.get_field(n).verbose_name
                                               for n in diff)),
                    data={"changes": diff})
    incident_details_changed.send(sender=Incident, incident=incident, actor=actor,
                                  reason=reason)
    return changed


def derive_status(incident: Incident, steps: list[ResponseStep]) -> str:
    if incident.closed_at is not None:
        return Status.CLOSED
    by_number = {s.number: s for s in steps}
    reached = 0
    for number in range(1, 7):
        if not by_number[number].is_resolved:
            break
        reached = number
    if reached == 5 and by_number[6].status == StepStatus.IN_PROGRESS:
        return Status.MONITORING
    return {0: Status.DECLARED, 1: Status.DECLARED, 2: Status.CONTAINED,
            3: Status.ASSESSED, 4: Status.PLANNED, 5: Status.NOTIFIED,
            6: Status.MONITORING}[reached]


def incident_refresh_status(*, incident: Incident, actor: User | None) -> str:
    """Recompute the derived status; record it on the timeline when it moves."""
    new = derive_status(incident, list(incident.steps.all()))
    if new != incident.status:
        old = incident.status
        incident.status = new
        incident.save(update_fields=["status"])
        timeline_record(incident=incident, actor=actor, kind=EventKind.STATUS,
                        message=said("Status moved from %(old)s to %(new)s.",
                                     old=Status(old).label, new=Status(new).label),
                        data={"from": old, "to": new})
    return new


@transaction.atomic
def incident_close(*, incident: Incident, actor: User, postmortem_skip_reason: str = "") -> None:
    """Needs every step resolved, and a finished post-mortem or a reason to skip it."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.closed_at is not None:
        raise ValidationError(_("This incident is already closed."))
    open_steps = [s for s in incident.steps.all() if not s.is_resolved]
    if open_steps:
        raise ValidationError(
            _("Finish or skip every step before closing (open: %(steps)s).")
            % {"steps": ", ".join(str(s.number) for s in open_steps)})
    incident_closing.send(sender=Incident, incident=incident, actor=actor,
                          postmortem_skip_reason=postmortem_skip_reason)
    incident.closed_at = timezone.now()
    incident.save(update_fields=["closed_at"])
    timeline_record(incident=incident, actor=actor, kind=EventKind.CLOSED,
                    message=said("%(who)s closed the incident.", who=who(actor)))
    incident_refresh_status(incident=incident, actor=actor)


@transaction.atomic
def incident_reopen(*, incident: Incident, actor: User, reason: str) -> None:
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.closed_at is None:
        raise ValidationError(_("This incident is open."))
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the incident is reopened.")})
    incident.closed_at = None
    incident.save(update_fields=["closed_at"])
    timeline_record(incident=incident, actor=actor, kind=EventKind.REOPENED,
                    message=said("%(who)s reopened the incident: %(reason)s", who=who(actor),
                                 reason=reason.strip()))
    incident_refresh_status(incident=incident, actor=actor)


# --- Steps -------------------------------------------------------------------------------

def _locked_step(step: ResponseStep) -> ResponseStep:
    step = ResponseStep.objects.select_for_update().select_related("incident").get(pk=step.pk)
    if step.incident.closed_at is not None:
        raise ValidationError(_("The incident is closed; reopen it to change steps."))
    return step


@transaction.atomic
def step_set_status(*, step: ResponseStep, actor: User | None, status: str,
                    skip_reason: str = "", note: str | Sentence = "") -> ResponseStep:
    """Move a step. Done with checklist items still open needs a `note` saying why (for
    Amends itself, a sentence saying what proved it done)."""
    step = _locked_step(step)
    if status not in StepStatus.values:
        raise ValidationError({"status": _("Unknown step status.")})
    skip_reason = skip_reason.strip()
    note = note if isinstance(note, Sentence) else note.strip()
    if status == StepStatus.SKIPPED and not skip_reason:
        raise ValidationError({"skip_reason": _("Say why this step is skipped.")})
    open_items = (step.items.filter(done=False).count()
                  if status == StepStatus.DONE and step.status != StepStatus.DONE else 0)
    if open_items and not note:
        raise ValidationError({"note": ngettext(
            "%(n)s checklist item is still open: say why the step is done anyway.",
            "%(n)s checklist items are still open: say why the step is done anyway.",
            open_items) % {"n": open_items}})
    if status == step.status and skip_reason == step.skip_reason:
        return step
    now = timezone.now()
    old = step.status
    step.status = status
    step.skip_reason = skip_reason if status == StepStatus.SKIPPED else ""
    if status != StepStatus.NOT_STARTED and step.started_at is None:
        step.started_at = now
    if status == StepStatus.NOT_STARTED:
        step.started_at = None
    step.done_at = now if status in (StepStatus.DONE, StepStatus.SKIPPED) else None
    step.save(update_fields=["status", "skip_reason", "started_at", "done_at"])
    message: list[Sentence | str] = [
        said("%(who)s set step %(n)s (%(title)s) to %(status)s.", who=who(actor),
             n=step.number, title=label(step.title), status=StepStatus(status).label)]
    if status == StepStatus.SKIPPED:
        message.append(said("Reason: %(reason)s", reason=skip_reason))
    elif open_items:
        message.append(said_n("%(n)s item left open: %(note)s",
                              "%(n)s items left open: %(note)s", open_items,
                              n=open_items, note=note))
    elif note:
        message.append(note)
    timeline_record(incident=step.incident, actor=actor, kind=EventKind.STEP,
                    message=message,
                    data={"step": step.number, "from": old, "to": status,
                          "open_items": open_items})
    incident_refresh_status(incident=step.incident, actor=actor)
    return step


@transaction.atomic
def step_assign_owner(*, step: ResponseStep, actor: User, owner: User | None) -> ResponseStep:
    step = _locked_step(step)
    if step.owner_id == (owner.pk if owner else None):
        return step
    step.owner = owner
    step.save(update_fields=["owner"])
    if owner is None:
        message = said("%(who)s removed the owner of step %(n)s.", who=who(actor),
                       n=step.number)
    else:
        message = said("%(who)s made %(owner)s owner of step %(n)s.", who=who(actor),
                       owner=who(owner), n=step.number)
    timeline_record(incident=step.incident, actor=actor, kind=EventKind.OWNER,
                    message=message,
                    data={"step": step.number, "owner": owner.pk if owner else None})
    return step


def _item_text(value: str, item: ChecklistItem) -> dict:
    # A playbook item's text is its English msgid (translated when read); anything a person
    # wrote or reworded reads as written (gettext leaves a text it does not know alone).
    return label(value) if item.from_playbook else text(value)


def _start_if_idle(step: ResponseStep, actor: User) -> None:
    # Working on a checklist means the step has begun.
    if step.status == StepStatus.NOT_STARTED:
        step_set_status(step=step, actor=actor, status=StepStatus.IN_PROGRESS)


# --- Checklists --------------------------------------------------------------------------

def _clean_item_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValidationError({"text": _("An item needs some text.")})
    if len(text) > 300:
        raise ValidationError({"text": _("Keep an item under 300 characters.")})
    return text


@transaction.atomic
def checklist_item_add(*, step: ResponseStep, actor: User, text: str) -> ChecklistItem:
    step = _locked_step(step)
    text = _clean_item_text(text)
    last = step.items.aggregate(m=Max("position"))["m"]
    item = ChecklistItem.objects.create(step=step, text=text,
                                        position=0 if last is None else last + 1)
    timeline_record(incident=step.incident, actor=actor, kind=EventKind.CHECKLIST,
                    message=said("%(who)s added to step %(n)s: “%(text)s”.", who=who(actor),
                                 n=step.number, text=text),
                    data={"step": step.number, "item": item.pk, "action": "add"})
    return item


@transaction.atomic
def checklist_item_edit(*, item: ChecklistItem, actor: User, text: str) -> ChecklistItem:
    step = _locked_step(item.step)
    item = ChecklistItem.objects.get(pk=item.pk)
    text = _clean_item_text(text)
    if text == item.text:
        return item
    old = item.text
    item.text = text
    item.save(update_fields=["text"])
    timeline_record(incident=step.incident, actor=actor, kind=EventKind.CHECKLIST,
                    message=said("%(who)s reworded an item of step %(n)s: “%(old)s” → "
                                 "“%(new)s”.", who=who(actor), n=step.number,
                                 old=_item_text(old, item), new=text),
                    data={"step": step.number, "item": item.pk, "action": "edit",
                          "from": old, "to": text})
    return item


@transaction.atomic
def checklist_item_set_done(*, item: ChecklistItem, actor: User | None, done: bool,
                            proof: str | Sentence = "") -> ChecklistItem:
    step = _locked_step(item.step)
    item = ChecklistItem.objects.get(pk=item.pk)
    if item.done == done:
        return item
    item.done = done
    item.done_by = actor if done else None
    item.done_at = timezone.now() if done else None
    item.save(update_fields=["done", "done_by", "done_at"])
    facts = {"who": who(actor), "text": _item_text(item.text, item), "n": step.number}
    message: list[Sentence | str] = [
        said("%(who)s ticked “%(text)s” (step %(n)s).", **facts) if done
        else said("%(who)s unticked “%(text)s” (step %(n)s).", **facts)]
    if proof:
        message.append(proof)
    timeline_record(incident=step.incident, actor=actor, kind=EventKind.CHECKLIST,
                    message=message,
                    data={"step": step.number, "item": item.pk,
                          "action": "tick" if done else "untick"})
    if done:
        _start_if_idle(step, actor)
    return item


@transaction.atomic
def checklist_item_prove(*, incident: Incident, step_number: int, text: str,
                         proof: Sentence) -> ChecklistItem | None:
    """Tick, as Amends, the playbook item an action has just proved done (the pause, the
    audience, the send), saying what proved it. Items edited or already ticked stay as
    people left them."""
    with in_log_language():
        wanted = str(text)
    item = (ChecklistItem.objects.select_related("step")
            .filter(step__incident=incident, step__number=step_number, from_playbook=True,
                    text=wanted, done=False).first())
    if item is None:
        return None
    return checklist_item_set_done(item=item, actor=None, done=True, proof=proof)


@transaction.atomic
def step_complete_by_proof(*, incident: Incident, step_number: int, proof: Sentence) -> None:
    """Amends marks a step done when its work is proved done (the apology went out)."""
    step = ResponseStep.objects.get(incident=incident, number=step_number)
    if step.status not in (StepStatus.DONE, StepStatus.SKIPPED):
        step_set_status(step=step, actor=None, status=StepStatus.DONE, note=proof)


@transaction.atomic
def checklist_item_move(*, item: ChecklistItem, actor: User, offset: int) -> ChecklistItem:
    """Move an item up (offset -1) or down (+1) within its step."""
    step = _locked_step(item.step)
    items = list(step.items.all())
    index = next(i for i, it in enumerate(items) if it.pk == item.pk)
    target = index + offset
    if offset not in (-1, 1) or not 0 <= target < len(items):
        return items[index]
    items[index], items[target] = items[target], items[index]
    for position, it in enumerate(items):
        if it.position != position:
            it.position = position
    ChecklistItem.objects.bulk_update(items, ["position"])
    moved = items[target]
    timeline_record(incident=step.incident, actor=actor, kind=EventKind.CHECKLIST,
                    message=said("%(who)s moved “%(text)s” to position %(pos)s in step "
                                 "%(n)s.", who=who(actor), text=_item_text(moved.text, moved),
                                 pos=target + 1, n=step.number),
                    data={"step": step.number, "item": moved.pk, "action": "move",
                          "position": target})
    return moved


# --- Stakeholders ------------------------------------------------------------------------

@transaction.atomic
def stakeholder_add(*, incident: Incident, actor: User, user: User, role: str) -> Stakeholder:
    if role not in StakeholderRole.values:
        raise ValidationError({"role": _("Unknown stakeholder role.")})
    stake, created = Stakeholder.objects.get_or_create(incident=incident, user=user, role=role)
    if created:
        timeline_record(incident=incident, actor=actor, kind=EventKind.STAKEHOLDER,
                        message=said("%(who)s added %(user)s as %(role)s.", who=who(actor),
                                     user=who(user), role=StakeholderRole(role).label),
                        data={"user": user.pk, "role": role, "action": "add"})
    return stake


@transaction.atomic
def stakeholder_remove(*, stakeholder: Stakeholder, actor: User) -> None:
    incident = stakeholder.incident
    if stakeholder.role == StakeholderRole.LEAD and stakeholder.user_id == incident.lead_id:
        raise ValidationError(_("Choose another lead before removing this one."))
    user, role = stakeholder.user, stakeholder.role
    stakeholder.delete()
    timeline_record(incident=incident, actor=actor, kind=EventKind.STAKEHOLDER,
                    message=said("%(who)s removed %(user)s (%(role)s).", who=who(actor),
                                 user=who(user), role=StakeholderRole(role).label),
                    data={"user": user.pk, "role": role, "action": "remove"})


# --- Notes and corrections -------------------------------------------------------------

@transaction.atomic
def timeline_note_add(*, incident: Incident, actor: User, message: str) -> TimelineEvent:
    message = message.strip()
    if not message:
        raise ValidationError({"message": _("Write something in the note.")})
    return timeline_record(incident=incident, actor=actor, kind=EventKind.NOTE,
                           message=message)


@transaction.atomic
def timeline_correct(*, event: TimelineEvent, actor: User, message: str) -> TimelineEvent:
    message = message.strip()
    if not message:
        raise ValidationError({"message": _("Say what the correct account is.")})
    return timeline_record(incident=event.incident, actor=actor, kind=EventKind.CORRECTION,
                           message=message, corrects=event)


# --- Background work ---------------------------------------------------------------------

def timeline_event_notify(*, event: TimelineEvent) -> int:
    """Email the incident's stakeholders (not the actor) about one event; returns count."""
    incident = event.incident
    # One message per language the people read in; the entry itself stays as recorded.
    groups = emails_by_language(s.user for s in incident.stakeholders.select_related("user")
                                if s.user_id != event.actor_id)
    link = f"{settings.AMENDS_BASE_URL.rstrip('/')}/incidents/{incident.pk}/"
    for language, recipients in groups.items():
        with translation.override(language):
            subject = _("[%(sev)s] %(title)s: %(kind)s") % {
                "sev": Severity(incident.severity).label, "title": incident.title,
                "kind": EventKind(event.kind).label}
            body = f"{event.text}\n\n{link}\n"
        team_mail_send(subject=subject, body=body, recipients=recipients, language=language)
    return sum(len(r) for r in groups.values())


@transaction.atomic
def steps_flag_overdue(*, now: datetime | None = None) -> int:
    """Write one alert per step that has passed its time target; returns how many."""
    now = now or timezone.now()
    flagged = 0
    candidates = (ResponseStep.objects.select_for_update(skip_locked=True, of=("self",))
                  .select_related("incident")
                  .filter(incident__closed_at__isnull=True, overdue_notified_at__isnull=True,
                          target_minutes__isnull=False)
                  .exclude(status__in=[StepStatus.DONE, StepStatus.SKIPPED]))
    for step in candidates:
        if not step.is_overdue(now):
            continue
        step.overdue_notified_at = now
        step.save(update_fields=["overdue_notified_at"])
        timeline_record(incident=step.incident, actor=None, kind=EventKind.ALERT,
                        message=said("Step %(n)s (%(title)s) is past its target of "
                                     "%(minutes)s minutes.", n=step.number,
                                     title=label(step.title), minutes=step.target_minutes),
                        data={"step": step.number, "due_at": step.due_at.isoformat()})
        flagged += 1
    return flagged

