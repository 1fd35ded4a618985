"""Writes for the learn step. Each records a TimelineEvent in its own transaction.

A post-mortem may still be edited after the incident is closed (follow-ups get done later);
the timeline keeps every change either way.
"""

from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from incidents.learn.models import FollowUpAction, PlaybookLesson, PostMortem, PostMortemStatus
from incidents.learn.selectors import follow_ups_initial, postmortem_initial
from incidents.models import EventKind, Incident, Kind
from incidents.signals import incident_closing
from incidents.timeline import Sentence, labels, said, timeline_record, who

User = AbstractBaseUser

POSTMORTEM_FIELDS = ("what_happened", "cause_category", "root_cause", "detection_how",
                     "detection_delay_minutes", "affected_count", "excluded_count",
                     "suppressed_count", "cost", "currency", "compensation", "went_well",
                     "went_badly", "lessons")
# What a finished post-mortem must say.
REQUIRED_TO_FINISH = ("what_happened", "cause_category", "root_cause", "lessons")


def _locked(incident: Incident) -> PostMortem | None:
    return PostMortem.objects.select_for_update().filter(incident=incident).first()


def _record(incident: Incident, actor: User | None, message: Sentence, **data: Any) -> None:
    timeline_record(incident=incident, actor=actor, kind=EventKind.LEARN, message=message,
                    data={"learn": data})


def _start(incident: Incident, actor: User) -> PostMortem:
    """Save the draft written from the record, and copy the plan's follow-ups once."""
    postmortem = postmortem_initial(incident=incident)
    postmortem.updated_by = actor
    postmortem.save()
    drafts = follow_ups_initial(plan=incident.plan_versions.order_by("-number").first())
    owners = get_user_model().objects.in_bulk([f.owner_id for f in drafts])
    for draft in drafts:
        if draft.owner_id in owners:
            FollowUpAction.objects.create(incident=incident, action=draft.action,
                                          owner=owners[draft.owner_id], due_on=draft.due_on)
    _record(incident, actor, said("%(who)s started the post-mortem from the incident's "
                                  "record.", who=who(actor)), action="start")
    return postmortem


@transaction.atomic
def postmortem_save(*, incident: Incident, actor: User, **changes: Any) -> PostMortem:
    """Create the post-mortem (drafted from the record) or change its fields; returns it.
    Records which fields changed."""
    unknown = set(changes) - set(POSTMORTEM_FIELDS)
    if unknown:
        raise ValueError(f"not a post-mortem field: {', '.join(sorted(unknown))}")
    Incident.objects.select_for_update().get(pk=incident.pk)
    postmortem = _locked(incident) or _start(incident, actor)
    changed = [name for name, value in changes.items() if getattr(postmortem, name) != value]
    if not changed:
        return postmortem
    for name in changed:
        setattr(postmortem, name, changes[name])
    postmortem.updated_at = timezone.now()
    postmortem.updated_by = actor
    try:
        postmortem.full_clean(exclude=["incident", "updated_by", "finished_by"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
    postmortem.save(update_fields=[*changed, "updated_at", "updated_by"])
    fields = labels(PostMortem._meta.get_field(n).verbose_name for n in changed)
    _record(incident, actor, said("%(who)s edited the post-mortem: %(fields)s.",
                                  who=who(actor), fields=fields), action="edit", fields=changed)
    return postmortem


@transaction.atomic
def postmortem_finish(*, incident: Incident, actor: User) -> PostMortem:
    Incident.objects.select_for_update().get(pk=incident.pk)
    postmortem = _locked(incident)
    if postmortem is None:
        raise ValidationError(_("Save the post-mortem before finishing it."))
    if postmortem.status == PostMortemStatus.FINISHED:
        return postmortem
    missing = [str(PostMortem._meta.get_field(n).verbose_name)
               for n in REQUIRED_TO_FINISH if not getattr(postmortem, n)]
    if missing:
        raise ValidationError(_("Before finishing, fill in: %(fields)s.") % {
            "fields": ", ".join(missing)})
    postmortem.status = PostMortemStatus.FINISHED
    postmortem.skip_reason = ""
    postmortem.finished_at = timezone.now()
    postmortem.finished_by = actor
    postmortem.save(update_fields=["status", "skip_reason", "finished_at", "finished_by"])
    _record(incident, actor, said("%(who)s finished the post-mortem.", who=who(actor)),
            action="finish")
    return postmortem


@transaction.atomic
def postmortem_skip(*, incident: Incident, actor: User, reason: str) -> PostMortem:
    reason = reason.strip()
    if not reason:
        raise ValidationError({"skip_reason": _("Say why this incident needs no "
                                                "post-mortem.")})
    Incident.objects.select_for_update().get(pk=incident.pk)
    postmortem = _locked(incident)
    if postmortem is not None and postmortem.status == PostMortemStatus.FINISHED:
        raise ValidationError(_("The post-mortem is finished; it cannot be skipped."))
    if postmortem is None:
        postmortem = PostMortem(incident=incident)
    postmortem.status = PostMortemStatus.SKIPPED
    postmortem.skip_reason = reason
    postmortem.updated_at = timezone.now()
    postmortem.updated_by = actor
    postmortem.save()
    _record(incident, actor, said("%(who)s skipped the post-mortem: %(reason)s",
                                  who=who(actor), reason=reason), action="skip")
    return postmortem


@receiver(incident_closing, dispatch_uid="incidents.learn.close_requirement")
def incident_close_requirement(sender=None, *, incident: Incident, actor: User,
                               postmortem_skip_reason: str = "", **kwargs) -> None:
    """Closing asks for a finished post-mortem, or a reason to go without one (recorded).
    Receives incident_closing, inside incident_close's transaction."""
    postmortem = PostMortem.objects.filter(incident=incident).first()
    if postmortem is not None and postmortem.status in (PostMortemStatus.FINISHED,
                                                        PostMortemStatus.SKIPPED):
        return
    if not postmortem_skip_reason.strip():
        raise ValidationError({"postmortem_skip_reason": _(
            "Finish the post-mortem before closing, or say why this incident needs none.")})
    postmortem_skip(incident=incident, actor=actor, reason=postmortem_skip_reason)


# --- Follow-up actions ------------------------------------------------------------------------

@transaction.atomic
def follow_up_add(*, incident: Incident, actor: User, action: str, owner: User,
                  due_on: date) -> FollowUpAction:
    action = action.strip()
    if not action:
        raise ValidationError({"action": _("Say what must be done.")})
    if len(action) > 300:
        raise ValidationError({"action": _("Keep a follow-up under 300 characters.")})
    follow_up = FollowUpAction.objects.create(incident=incident, action=action, owner=owner,
                                              due_on=due_on)
    _record(incident, actor, said("%(who)s added a follow-up for %(owner)s, due "
                                  "%(due)s: “%(action)s”.", who=who(actor), owner=who(owner),
                                  due=due_on.isoformat(), action=action),
            action="follow_up_add", follow_up=follow_up.pk)
    return follow_up


@transaction.atomic
def follow_up_set_done(*, follow_up: FollowUpAction, actor: User, done: bool
                       ) -> FollowUpAction:
    follow_up = FollowUpAction.objects.select_for_update().get(pk=follow_up.pk)
    if (follow_up.done_at is not None) == done:
        return follow_up
    follow_up.done_at = timezone.now() if done else None
    follow_up.save(update_fields=["done_at"])
    facts = {"who": who(actor), "action": follow_up.action}
    _record(follow_up.incident, actor,
            said("%(who)s marked the follow-up “%(action)s” done.", **facts) if done
            else said("%(who)s reopened the follow-up “%(action)s”.", **facts),
            action="follow_up_done" if done else "follow_up_reopen",
            follow_up=follow_up.pk)
    return follow_up


# --- The playbook learns -----------------------------------------------------------------------

@transaction.atomic
def lesson_adopt(*, incident: Incident, actor: User, text: str,
                 step_number: int) -> PlaybookLesson:
    """Every future incident of this kind gets the lesson on that step's checklist; past
    incidents keep the checklist they were declared with."""
    text = text.strip()
    if not text:
        raise ValidationError({"text": _("Write the lesson as a checklist item.")})
    if len(text) > 300:
        raise ValidationError({"text": _("Keep a checklist item under 300 characters.")})
    if not 1 <= step_number <= 6:
        raise ValidationError({"step_number": _("Choose one of the six steps.")})
    if PlaybookLesson.objects.filter(kind=incident.kind, step_number=step_number, text=text,
                                     retired_at__isnull=True).exists():
        raise ValidationError({"text": _("The playbook already has this item for step "
                                         "%(n)s.") % {"n": step_number}})
    lesson = PlaybookLesson.objects.create(kind=incident.kind, step_number=step_number,
                                           text=text, source_incident=incident, added_by=actor)
    _record(incident, actor, said("%(who)s added a lesson to the playbook for every "
                                  "“%(kind)s” incident, step %(n)s: “%(text)s”.",
                                  who=who(actor), kind=Kind(incident.kind).label,
                                  n=step_number, text=text),
            action="lesson_adopt", lesson=lesson.pk)
    return lesson
