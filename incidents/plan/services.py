"""Step 4, the plan: every edit writes a new immutable PlanVersion; any two compare."""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from incidents.models import EventKind, Incident
from incidents.plan.diff import PLAN_FIELDS
from incidents.plan.models import CompensationKind, PlanVersion
from incidents.timeline import actor_name, labels, said, timeline_record, who

User = AbstractBaseUser

TEXT_FIELDS = ("internal_steps", "subscriber_message", "subscriber_actions",
               "compensation_value", "compensation_eligibility", "process_changes")


@dataclass(frozen=True)
class FollowUp:
    action: str
    owner: User
    due: date


def _follow_up_rows(follow_ups: list[FollowUp]) -> list[dict]:
    rows = []
    for i, f in enumerate(follow_ups, start=1):
        action = (f.action or "").strip()
        if not action:
            raise ValidationError({"follow_ups": _("Follow-up %(n)s: say what must be done.")
                                   % {"n": i}})
        if f.owner is None:
            raise ValidationError({"follow_ups": _("Follow-up %(n)s (“%(action)s”): choose "
                                                   "an owner.") % {"n": i, "action": action}})
        if f.due is None:
            raise ValidationError({"follow_ups": _("Follow-up %(n)s (“%(action)s”): give a "
                                                   "due date.") % {"n": i, "action": action}})
        rows.append({"action": action, "owner": f.owner.pk, "owner_name": actor_name(f.owner),
                     "due": f.due.isoformat()})
    return rows


def plan_latest(*, incident: Incident) -> PlanVersion | None:
    return incident.plan_versions.select_related("author").order_by("-number").first()


@transaction.atomic
def plan_version_create(*, incident: Incident, actor: User, internal_steps: str = "",
                        subscriber_message: str = "", subscriber_action_required: bool = False,
                        subscriber_actions: str = "",
                        compensation_kind: str = CompensationKind.NONE,
                        compensation_value: str = "", compensation_eligibility: str = "",
                        process_changes: str = "", follow_ups: list[FollowUp] | None = None,
                        note: str = "") -> PlanVersion:
    """Write the next version of the plan. An edit voids every live signature on the
    versions before it (and tells the signers); an unchanged plan writes nothing."""
    from incidents.plan.signoff import signoffs_void_for_edit

    # The incident row is the lock: two people saving at once get versions n and n + 1.
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.closed_at is not None:
        raise ValidationError(_("The incident is closed; reopen it to change the plan."))
    content = {
        "internal_steps": internal_steps.strip(),
        "subscriber_message": subscriber_message.strip(),
        "subscriber_action_required": bool(subscriber_action_required),
        "subscriber_actions": subscriber_actions.strip(),
        "compensation_kind": compensation_kind or CompensationKind.NONE,
        "compensation_value": compensation_value.strip(),
        "compensation_eligibility": compensation_eligibility.strip(),
        "process_changes": process_changes.strip(),
        "follow_ups": _follow_up_rows(follow_ups or []),
    }
    errors: dict[str, str] = {}
    if content["compensation_kind"] not in CompensationKind.values:
        errors["compensation_kind"] = _("Unknown kind of compensation.")
    elif content["compensation_kind"] != CompensationKind.NONE:
        if not content["compensation_value"]:
            errors["compensation_value"] = _("Say what the compensation is worth.")
        if not content["compensation_eligibility"]:
            errors["compensation_eligibility"] = _("Say who qualifies for the compensation.")
    if content["subscriber_action_required"] and not content["subscriber_actions"]:
        errors["subscriber_actions"] = _("Subscribers must act: say what they must do.")
    if not content["internal_steps"] and not content["subscriber_message"]:
        errors["internal_steps"] = _("A plan needs internal steps or a message to "
                                     "subscribers.")
    if errors:
        raise ValidationError(errors)

    latest = plan_latest(incident=incident)
    if latest is not None and all(getattr(latest, k) == v for k, v in content.items()):
        return latest
    version = PlanVersion.objects.create(
        incident=incident, number=(latest.number + 1) if latest else 1, author=actor,
        note=note.strip()[:300], **content)
    if latest is None:
        message = [said("%(who)s wrote the plan (version 1).", who=who(actor))]
        changed: list[str] = []
    else:
        changed = [name for name, _label in PLAN_FIELDS
                   if getattr(latest, name) != content[name]]
        message = [said("%(who)s edited the plan: version %(n)s (changed: %(fields)s).",
                        who=who(actor), n=version.number,
                        fields=labels(label for name, label in PLAN_FIELDS
                                      if name in changed))]
    if version.note:
        message.append(said("Note: %(note)s", note=version.note))
    timeline_record(incident=incident, actor=actor, kind=EventKind.PLAN,
                    message=message,
                    data={"version": version.number, "changed": changed})
    signoffs_void_for_edit(incident=incident, version=version, actor=actor)
    return version


# --- Reading and comparing ---------------------------------------------------------------
