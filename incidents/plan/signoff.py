"""Sign-off of the plan by legal and security, and the one guard every apology send calls.

Who must sign is decided by the incident: a data breach or exposed personal data needs
legal and security; SEV1 needs legal; the lead may ask for more. Requirements only ratchet
up (SignerRequirement rows); lowering the incident asks the dropped signer to approve.
A signature covers the whole outgoing package (incidents/plan/package.py): any change to
the plan, the apology or the audience voids it, and the send guard compares digests.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch, Q
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.language import user_language, users_by_language
from accounts.roles import roles_of
from core.mail import team_mail_send
from incidents.apology.lint import apology_lint
from incidents.apology.models import Apology
from incidents.models import EventKind, Incident, Kind, Severity, Stakeholder, StakeholderRole
from incidents.permissions import incidents_visible_to
from incidents.plan.diff import FieldDiff
from incidents.plan.models import (
    Decision,
    PlanVersion,
    RequirementWhy,
    SignerRequest,
    SignerRequirement,
    SignerRole,
    SignOff,
)
from incidents.plan.package import (
    package_changes,
    package_current,
    package_diff,
    package_parts,
)
from incidents.signals import incident_details_changed
from incidents.timeline import Sentence, actor_name, joined, labels, said, timeline_record, who
from messaging import broadcasts
from messaging.models import Broadcast, BroadcastStatus

User = AbstractBaseUser


# --- Who must sign: requirements only ratchet up ----------------------------------------

def _needed_now(incident: Incident, requested: set[str]) -> dict[str, str]:
    """Role → RequirementWhy from the incident's current fields and the lead's requests."""
    needed: dict[str, str] = {}
    if incident.kind == Kind.DATA_BREACH or incident.pii_exposed:
        why = RequirementWhy.BREACH if incident.kind == Kind.DATA_BREACH else RequirementWhy.PII
        needed[SignerRole.LEGAL] = why
        needed[SignerRole.SECURITY] = why
    if incident.severity == Severity.SEV1:
        needed.setdefault(SignerRole.LEGAL, RequirementWhy.SEV1)
    for role in sorted(requested):
        needed.setdefault(role, RequirementWhy.REQUESTED)
    return needed


def required_signers(incident: Incident,
                     requirements: list[SignerRequirement] | None = None,
                     requested: set[str] | None = None) -> dict[str, str]:
    """Role → why it must sign: the strongest requirement the incident has ever had.

    The live SignerRequirement rows are the record (written when a need first appears,
    released only by a signer of the role); today's fields are added in case a row is
    missing. `requirements` (live rows) and `requested` save queries when the caller
    prefetched them.
    """
    if requirements is None:
        requirements = list(SignerRequirement.objects.filter(incident_id=incident.pk,
                                                             released_at__isnull=True))
    needed: dict[str, str] = {}
    for row in sorted(requirements, key=lambda r: r.role):
        why = str(RequirementWhy(row.why).label)
        if row.drop_requested_at is not None:
            why = _("%(why)s; dropping it waits for %(role)s's approval") % {
                "why": why, "role": _role_label(row.role)}
        needed[row.role] = why
    # The lead's requests are always on the record (signer_requests_set syncs them), so
    # only the incident's own fields are re-checked here, without a query.
    for role, why in _needed_now(incident, requested or set()).items():
        needed.setdefault(role, str(RequirementWhy(why).label))
    return dict(sorted(needed.items(), key=lambda item: SignerRole.values.index(item[0])))


def signer_roles_of(user: User) -> list[str]:
    """The sign-off roles a user may sign as: their legal/security groups, with the right."""
    if not user.is_authenticated or not user.has_perm("incidents.sign_plan"):
        return []
    return [r for r in SignerRole.values if r in roles_of(user)]


def _role_label(role: str) -> str:
    return str(SignerRole(role).label)


def _signers_for(role: str) -> list[User]:
    """Who is asked to sign for a role: the organisation's default signer if configured
    (settings.AMENDS_DEFAULT_SIGNERS), else every active user in that role."""
    UserModel = get_user_model()
    in_role = (UserModel.objects.filter(is_active=True, groups__name=role)
               .order_by("username").distinct())
    default = settings.AMENDS_DEFAULT_SIGNERS.get(role)
    if default:
        chosen = [u for u in in_role.filter(username=default) if signer_roles_of(u)]
        if chosen:
            return chosen
    return [u for u in in_role if role in signer_roles_of(u)]


@receiver(incident_details_changed, dispatch_uid="incidents.plan.signer_requirements")
def signer_requirements_follow(sender=None, *, incident: Incident, actor: User | None,
                               reason: str = "", **kwargs) -> None:
    """A declaration or an edit of the incident's details: the requirements follow."""
    signer_requirements_sync(incident=incident, actor=actor, reason=reason)


def signer_requirements_sync(*, incident: Incident, actor: User | None,
                             reason: str = "") -> list[str]:
    """Bring the requirement record up to the incident's fields; returns the roles added.

    Runs inside the transaction of the change (declare, edit, request), with the incident
    row locked. A new requirement reaches its signers: they become stakeholders (so a
    restricted incident shows to them) and get an email after commit. A requirement the
    fields no longer call for is *not* dropped: a drop request waits for its signer.
    """
    requested = set(incident.signer_requests.values_list("role", flat=True))
    needed = _needed_now(incident, requested)
    live = {r.role: r for r in SignerRequirement.objects.select_for_update().filter(
        incident=incident, released_at__isnull=True)}
    added = [role for role in needed if role not in live]
    now = timezone.now()
    for role in added:
        SignerRequirement.objects.create(incident=incident, role=role, why=needed[role],
                                         since=now)
        timeline_record(
            incident=incident, actor=actor, kind=EventKind.SIGNOFF,
            message=said("%(role)s must now sign before subscribers are told (%(why)s). "
                         "This stays required even if the incident is reclassified later, "
                         "until %(role)s approves dropping it.",
                         role=SignerRole(role).label, why=RequirementWhy(needed[role]).label),
            data={"requirement": role, "why": needed[role], "action": "add"})
    for role, row in live.items():
        if role in needed and row.drop_requested_at is not None:
            row.drop_requested_at, row.drop_requested_by = None, None
            row.drop_request_reason = ""
            row.save(update_fields=["drop_requested_at", "drop_requested_by",
                                    "drop_request_reason"])
            timeline_record(
                incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                message=said("%(role)s's sign-off is needed again; the request to drop it "
                             "is withdrawn.", role=SignerRole(role).label),
                data={"requirement": role, "action": "drop_withdrawn"})
        elif role not in needed and row.drop_requested_at is None:
            row.drop_requested_at, row.drop_requested_by = now, actor
            row.drop_request_reason = reason.strip()[:500]
            row.save(update_fields=["drop_requested_at", "drop_requested_by",
                                    "drop_request_reason"])
            message = [said("%(who)s lowered the incident so that it would no longer need "
                            "%(role)s's sign-off. It stays required until %(role)s approves "
                            "dropping it.", who=who(actor), role=SignerRole(role).label)]
            if reason.strip():
                message.append(said("Reason given: %(reason)s", reason=reason.strip()))
            timeline_record(incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                            message=message,
                            data={"requirement": role, "action": "drop_requested"})
    if added:
        signers_reach(incident=incident, actor=actor, roles=added)
    return added


def signers_reach(*, incident: Incident, actor: User | None, roles: list[str]) -> list[int]:
    """Make the signers of `roles` stakeholders and email them a link to the sign page."""
    user_ids: list[int] = []
    for role in roles:
        for user in _signers_for(role):
            _stake, created = Stakeholder.objects.get_or_create(
                incident=incident, user=user, role=StakeholderRole(role))
            if created:
                timeline_record(
                    incident=incident, actor=actor, kind=EventKind.STAKEHOLDER,
                    message=said("%(user)s joined as %(role)s signer: their sign-off is "
                                 "required.", user=who(user), role=SignerRole(role).label),
                    data={"user": user.pk, "role": role, "action": "add"})
            user_ids.append(user.pk)
    if user_ids:
        from incidents.plan.tasks import notify_signoff_requested

        ids, pk = sorted(set(user_ids)), incident.pk
        transaction.on_commit(lambda: notify_signoff_requested.delay(pk, ids))
    return user_ids


@transaction.atomic
def signer_requirement_drop(*, incident: Incident, actor: User, role: str,
                            reason: str) -> SignerRequirement:
    """A signer of `role` approves dropping their role's sign-off, with a reason."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if role not in signer_roles_of(actor):
        raise PermissionDenied(_("Only %(role)s can approve dropping %(role)s's sign-off.")
                               % {"role": _role_label(role) if role in SignerRole.values
                                  else role})
    row = SignerRequirement.objects.select_for_update().filter(
        incident=incident, role=role, released_at__isnull=True).first()
    if row is None:
        raise ValidationError(_("%(role)s's sign-off is not required here.") % {
            "role": _role_label(role)})
    requested = set(incident.signer_requests.values_list("role", flat=True))
    still = _needed_now(incident, requested).get(role)
    if still is not None:
        raise ValidationError(_("%(role)s's sign-off is still needed: %(why)s.") % {
            "role": _role_label(role), "why": RequirementWhy(still).label})
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why %(role)s's sign-off is no longer "
                                           "needed.") % {"role": _role_label(role)}})
    row.released_at, row.released_by, row.release_reason = timezone.now(), actor, reason
    row.save(update_fields=["released_at", "released_by", "release_reason"])
    timeline_record(incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                    message=said("%(who)s (%(role)s) approved dropping %(role)s's "
                                 "sign-off: %(reason)s", who=who(actor),
                                 role=SignerRole(role).label, reason=reason),
                    data={"requirement": role, "action": "released"})
    return row


# --- The state of the sign-off --------------------------------------------------------

@dataclass(frozen=True)
class RoleState:
    role: str
    label: str
    why: str
    signoff: SignOff | None  # the live decision on the current version, if any
    # The live decision was on another package (something changed since): it does not count.
    stale_parts: tuple[str, ...] = ()

    @property
    def stale(self) -> bool:
        return bool(self.stale_parts)

    @property
    def approved(self) -> bool:
        return (self.signoff is not None and not self.stale
                and self.signoff.decision == Decision.APPROVED)

    @property
    def rejected(self) -> bool:
        return (self.signoff is not None and not self.stale
                and self.signoff.decision == Decision.REJECTED)


@dataclass(frozen=True)
class SignoffState:
    version: PlanVersion | None
    roles: list[RoleState]
    allowed: bool
    reasons: list[str]
    voided: list[SignOff]  # signatures that stopped counting, newest first
    package: dict = field(default_factory=dict)
    digest: str = ""

    @property
    def required(self) -> bool:
        return bool(self.roles)

    def for_role(self, role: str) -> RoleState | None:
        return next((r for r in self.roles if r.role == role), None)


def signoff_state(incident: Incident) -> SignoffState:
    """Read everything from the database, never from the instance's cached relations, so a
    stale object in a long-running task cannot let a send through."""
    incident = Incident.objects.get(pk=incident.pk)
    needed = required_signers(incident)
    parts = package_parts(incident=incident)
    version = parts.plan
    snapshot, digest = package_current(parts=parts)
    live = {}
    if version is not None:
        live = {s.role: s for s in SignOff.objects.select_related("signer").filter(
            version=version, voided_at__isnull=True)}
    roles = []
    for role, why in needed.items():
        signed = live.get(role)
        stale: tuple[str, ...] = ()
        if signed is not None and signed.package_digest != digest:
            stale = tuple(package_changes(old=signed.package, new=snapshot)) or (
                _("the package"),)
        roles.append(RoleState(role, _role_label(role), why, signed, stale))
    reasons: list[str] = []
    if incident.kind == Kind.SUPPRESSION_SEND:
        reasons.append(_("This incident mailed a suppression list: an apology would mail "
                         "those people again. Do not send one."))
    if roles and version is None:
        reasons.append(_("No plan has been written yet; %(roles)s must sign it before "
                         "subscribers are told.") % {
            "roles": _(" and ").join(r.label for r in roles)})
    elif version is not None:
        for r in roles:
            if r.stale:
                reasons.append(_("%(role)s signed an earlier package; since then %(parts)s "
                                 "changed, so %(role)s must sign again.") % {
                    "role": r.label, "parts": ", ".join(r.stale_parts)})
            elif r.signoff is None:
                reasons.append(_("%(role)s has not signed plan version %(n)s yet (needed: "
                                 "%(why)s).") % {"role": r.label, "n": version.number,
                                                 "why": r.why})
            elif r.rejected:
                reasons.append(_("%(role)s rejected plan version %(n)s: %(reason)s") % {
                    "role": r.label, "n": version.number, "reason": r.signoff.reason})
    if version is not None and parts.apology is not None:
        reasons += _plan_and_email_disagree(incident, version, parts.apology)
    voided = list(SignOff.objects.select_related("signer", "version")
                  .filter(incident=incident, voided_at__isnull=False)[:10])
    return SignoffState(version, roles, not reasons, reasons, voided, snapshot, digest)


PLAN_RULES = frozenset({"plan_mismatch", "no_action_promise"})


def _plan_and_email_disagree(incident: Incident, version: PlanVersion,
                             apology: Apology) -> list[str]:
    """The linter's plan ↔ email errors (coupon, amounts, dates, "no action needed"): part of
    the guard, so every sending path refuses an email that contradicts the signed plan."""
    return [str(f.message) for f in apology_lint(apology=apology, incident=incident,
                                                 audience=None, plan=version)
            if f.code in PLAN_RULES]


def apology_send_allowed(incident: Incident) -> tuple[bool, list[str]]:
    """The single check before any apology reaches subscribers (page, task or API)."""
    state = signoff_state(incident)
    return state.allowed, state.reasons


class ApologyBlocked(PermissionDenied):
    """Raised when an apology may not be sent; `reasons` says why, in plain words."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(" ".join(reasons))


def require_signoff_for_send(incident: Incident) -> None:
    """Raise ApologyBlocked unless every required signature approves the current package.

    Call it inside the sending transaction, after locking the incident row
    (`Incident.objects.select_for_update()`), so an edit cannot slip in between: the digest
    of the package (plan, apology, brand template, audience) is computed here, at the
    moment of sending, and compared with each signature's.
    """
    allowed, reasons = apology_send_allowed(incident)
    if not allowed:
        raise ApologyBlocked(reasons)


# --- Writes ------------------------------------------------------------------------------

@transaction.atomic
def signoff_record(*, incident: Incident, version: PlanVersion, actor: User, decision: str,
                   reason: str = "", role: str = "", digest: str = "") -> SignOff:
    """Approve or reject the outgoing package (plan version + apology + audience) as legal
    or security. `digest` is the package the signer read; if it changed since, nothing is
    recorded. One decision per signer per package: the same decision twice is refused."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.closed_at is not None:
        raise ValidationError(_("The incident is closed; reopen it to sign the plan."))
    roles = signer_roles_of(actor)
    if not roles:
        raise PermissionDenied(_("Only legal or security can sign a plan."))
    if not role:
        if len(roles) > 1:
            raise ValidationError({"role": _("Say whether you sign as legal or security.")})
        role = roles[0]
    if role not in roles:
        raise PermissionDenied(_("You cannot sign as %(role)s.") % {"role": role})
    if decision not in Decision.values:
        raise ValidationError({"decision": _("Choose approve or reject.")})
    reason = reason.strip()
    if decision == Decision.REJECTED and not reason:
        raise ValidationError({"reason": _("Say why you reject the plan.")})
    latest = incident.plan_versions.order_by("-number").first()
    if version.incident_id != incident.pk or latest is None or latest.pk != version.pk:
        raise ValidationError(_("Plan version %(n)s is no longer current; read version "
                                "%(latest)s and sign that.") % {
            "n": version.number, "latest": latest.number if latest else "-"})
    snapshot, current = package_current(incident=incident)
    if digest and digest != current:
        raise ValidationError(_("What goes out changed while you were reading it; nothing "
                                "was recorded. Read the changes and decide again."))
    earlier = SignOff.objects.filter(version=version, role=role, voided_at__isnull=True).first()
    if earlier is not None and earlier.package_digest == current \
            and earlier.decision == decision:
        if decision == Decision.APPROVED:
            raise ValidationError(_("%(who)s already approved this package for %(role)s; "
                                    "withdraw that approval to change it.") % {
                "who": actor_name(earlier.signer), "role": _role_label(role)})
        raise ValidationError(_("%(who)s already rejected this package for %(role)s.") % {
            "who": actor_name(earlier.signer), "role": _role_label(role)})
    now = timezone.now()
    # Changing one's mind on the same package: the earlier decision stays on record, void.
    SignOff.objects.filter(version=version, role=role, voided_at__isnull=True).update(
        voided_at=now, void_reason="superseded by a new decision")
    signoff = SignOff.objects.create(incident=incident, version=version, role=role,
                                     signer=actor, decision=decision, reason=reason,
                                     signed_at=now, package=snapshot, package_digest=current)
    # The package (apology, audience) is named by its digest in the event's data and
    # stored whole on the SignOff.
    facts = {"who": who(actor), "role": SignerRole(role).label, "n": version.number}
    if decision == Decision.APPROVED:
        message = said("%(who)s (%(role)s) approved plan version %(n)s.", **facts)
    else:
        message = said("%(who)s (%(role)s) rejected plan version %(n)s. Reason: %(reason)s",
                       reason=reason, **facts)
    timeline_record(incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                    message=message,
                    data={"version": version.number, "role": role, "decision": decision,
                          "signoff": signoff.pk, "digest": current})
    allowed, _reasons = apology_send_allowed(incident)
    if allowed and required_signers(incident):
        # Attributed to the signer whose decision completed the set (the war room's
        # timeline template cannot show an event without an actor yet).
        timeline_record(incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                        message=said("Every required sign-off approves plan version %(n)s: "
                                     "the apology may be sent.", n=version.number),
                        data={"version": version.number, "cleared": True})
    return signoff


@transaction.atomic
def signoff_withdraw(*, incident: Incident, actor: User, role: str = "") -> SignOff:
    """A signer takes back their own live decision; a send under way pauses."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    roles = signer_roles_of(actor)
    if role:
        roles = [r for r in roles if r == role]
    signed = SignOff.objects.select_related("version").filter(
        incident=incident, signer=actor, role__in=roles, voided_at__isnull=True).first()
    if signed is None:
        raise ValidationError(_("You have no decision to withdraw."))
    signed.voided_at, signed.void_reason = timezone.now(), "withdrawn by the signer"
    signed.save(update_fields=["voided_at", "void_reason"])
    timeline_record(
        incident=incident, actor=actor, kind=EventKind.SIGNOFF,
        message=said("%(who)s (%(role)s) withdrew their decision (%(decision)s) on plan "
                     "version %(n)s.", who=who(actor), role=SignerRole(signed.role).label,
                     decision=Decision(signed.decision).label, n=signed.version.number),
        data={"signoff": signed.pk, "voided": True, "withdrawn": True})
    _pause_running_send(incident, actor, said("%(who)s (%(role)s) withdrew their sign-off",
                                              who=who(actor),
                                              role=SignerRole(signed.role).label))
    return signed


def signoffs_void_for_edit(*, incident: Incident, version: PlanVersion, actor: User) -> int:
    """Void every live signature on versions before `version`; runs inside the edit."""
    change = said("The plan changed (version %(new)s)", new=version.number)
    return signoffs_void_for_change(incident=incident, actor=actor, change=change,
                                    why=f"plan edited to version {version.number}")


def signoffs_void_for_change(*, incident: Incident, actor: User | None, change: Sentence,
                             why: str) -> int:
    """Void every live signature whose package is no longer what would go out.

    Runs inside the transaction of the change (plan edit, apology edit, audience
    recomputed), with the incident row locked. One timeline event per voided signature;
    the signers are emailed after commit; a send under way pauses and says why.
    """
    _snapshot, current = package_current(incident=incident)
    stale = list(SignOff.objects.select_related("signer", "version")
                 .filter(incident=incident, voided_at__isnull=True)
                 .exclude(package_digest=current))
    if not stale:
        return 0
    now = timezone.now()
    SignOff.objects.filter(pk__in=[s.pk for s in stale]).update(voided_at=now,
                                                               void_reason=why[:300])
    for s in stale:
        facts = {"change": change, "signer": who(s.signer), "role": SignerRole(s.role).label,
                 "old": s.version.number}
        message = (said("%(change)s, so the approval of %(signer)s (%(role)s) on version "
                        "%(old)s is void; they are asked to sign again.", **facts)
                   if s.decision == Decision.APPROVED else
                   said("%(change)s, so the rejection by %(signer)s (%(role)s) on version "
                        "%(old)s is void; they are asked to sign again.", **facts))
        timeline_record(incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                        message=message,
                        data={"signoff": s.pk, "voided": True, "digest": current})
    _pause_running_send(incident, actor, change)
    ids = [s.pk for s in stale]

    from incidents.plan.tasks import notify_signoffs_voided

    transaction.on_commit(lambda: notify_signoffs_voided.delay(ids))
    return len(stale)


def _pause_running_send(incident: Incident, actor: User | None, change: Sentence) -> None:
    """An apology already being sent stops before its next batch when what it sends is no
    longer signed. (The broadcast's source_ref is the one apology.send gives it.)"""
    running = Broadcast.objects.filter(source_ref=f"incident:{incident.pk}",
                                       status=BroadcastStatus.SENDING).first()
    if running is None:
        return
    broadcasts.broadcast_pause(broadcast=running)
    timeline_record(
        incident=incident, actor=actor, kind=EventKind.ALERT,
        message=said("Sending the apology is paused: %(change)s after it was signed, so the "
                     "signatures no longer cover what is being sent. Once the signers approve "
                     "again, resume it.", change=change),
        data={"broadcast": running.pk, "paused": True, "reason": "package_changed"})


@transaction.atomic
def signer_requests_set(*, incident: Incident, actor: User, roles: set[str]) -> None:
    """The lead asks for extra signers (or withdraws the request)."""
    unknown = set(roles) - set(SignerRole.values)
    if unknown:
        raise ValidationError({"roles": _("Unknown signer role: %(r)s.") % {
            "r": ", ".join(sorted(unknown))}})
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    current = set(incident.signer_requests.values_list("role", flat=True))
    added, removed = set(roles) - current, current - set(roles)
    if not added and not removed:
        return
    SignerRequest.objects.filter(incident=incident, role__in=removed).delete()
    SignerRequest.objects.bulk_create(
        SignerRequest(incident=incident, role=r, requested_by=actor) for r in sorted(added))
    parts = []
    if added:
        parts.append(said("asked for sign-off by %(roles)s",
                          roles=labels(SignerRole(r).label for r in sorted(added))))
    if removed:
        parts.append(said("withdrew the request for %(roles)s",
                          roles=labels(SignerRole(r).label for r in sorted(removed))))
    timeline_record(incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                    message=said("%(who)s %(what)s.", who=who(actor),
                                 what=joined(parts, sep=gettext_noop("; "))),
                    data={"requested": sorted(roles)})
    signer_requirements_sync(incident=incident, actor=actor)


def signoff_review_url(incident_id: int) -> str:
    """The page where a signer reads the package, what changed, and decides."""
    return settings.AMENDS_BASE_URL.rstrip("/") + reverse("incidents:signoff-review",
                                                          args=[incident_id])


def signoffs_voided_notify(*, signoff_ids: list[int]) -> int:
    """Email each signer whose signature an edit voided; returns how many were sent."""
    sent = 0
    stale = [s for s in SignOff.objects.select_related("signer", "incident", "version")
             .filter(pk__in=signoff_ids) if s.signer.email and s.signer.is_active]
    users_by_language(s.signer for s in stale)  # each signer's language, in one query
    for s in stale:
        language = user_language(s.signer)
        with translation.override(language):
            subject = _("[Amends] Sign again: what goes out for “%(title)s” changed") % {
                "title": s.incident.title}
            body = _("Your decision (%(decision)s) on plan version %(n)s is void because "
                     "what goes out changed (%(why)s). Please read the changes and sign "
                     "again.") % {"decision": Decision(s.decision).label,
                                  "n": s.version.number, "why": s.void_reason}
        team_mail_send(subject=subject,
                       body=f"{body}\n\n{signoff_review_url(s.incident_id)}\n",
                       recipients=[s.signer.email], language=language)
        sent += 1
    return sent


def signoff_request_notify(*, incident_id: int, user_ids: list[int]) -> int:
    """Email each signer asked to sign an incident; returns how many were sent."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return 0
    sent = 0
    signers = list(get_user_model().objects.filter(pk__in=user_ids, is_active=True)
                   .exclude(email=""))
    users_by_language(signers)  # each signer's language, in one query
    for user in signers:  # one email each: signers do not see each other's addresses
        language = user_language(user)
        with translation.override(language):
            subject = _("[Amends] Your sign-off is needed: “%(title)s”") % {
                "title": incident.title}
            body = _("%(kind)s, %(sev)s. Before subscribers are told, your sign-off is "
                     "required. Read the plan, the apology and the audience, then approve "
                     "or reject them on this page:") % {
                "kind": Kind(incident.kind).label, "sev": Severity(incident.severity).label}
        team_mail_send(subject=subject,
                       body=f"{body}\n\n{signoff_review_url(incident.pk)}\n",
                       recipients=[user.email], language=language)
        sent += 1
    return sent


# --- The signer's page ---------------------------------------------------------------------

@dataclass(frozen=True)
class SignoffReview:
    state: SignoffState
    my_roles: list[str]
    roles: list[RoleState]  # the required roles this user signs for
    last_signed: SignOff | None  # the last package this user decided on (void or not)
    diff: list[FieldDiff]
    drops: list[SignerRequirement]  # lowering requests waiting for this user's roles

    @property
    def changed(self) -> list[FieldDiff]:
        return [d for d in self.diff if d.changed]


def signoff_review(*, incident: Incident, user: User) -> SignoffReview:
    state = signoff_state(incident)
    my_roles = signer_roles_of(user)
    last = (SignOff.objects.filter(incident_id=incident.pk, signer_id=user.pk)
            .exclude(package={}).select_related("version").order_by("-signed_at", "-id")
            .first())
    drops = list(SignerRequirement.objects.filter(
        incident_id=incident.pk, released_at__isnull=True, drop_requested_at__isnull=False,
        role__in=my_roles).select_related("drop_requested_by"))
    return SignoffReview(
        state=state, my_roles=my_roles, roles=[r for r in state.roles if r.role in my_roles],
        last_signed=last, diff=package_diff(old=last.package if last else None,
                                            new=state.package),
        drops=drops)


# --- The signer's inbox -----------------------------------------------------------------

@dataclass(frozen=True)
class InboxItem:
    incident: Incident
    version: PlanVersion
    roles: list[str]


def signoff_inbox(*, user: User) -> list[InboxItem]:
    """Open incidents this user can see whose current plan waits for their signature."""
    roles = signer_roles_of(user)
    if not roles:
        return []
    wanted = Q(signer_requests__role__in=roles) | Q(
        signer_requirements__role__in=roles, signer_requirements__released_at__isnull=True)
    if SignerRole.LEGAL in roles:
        wanted |= Q(severity=Severity.SEV1)
    wanted |= Q(kind=Kind.DATA_BREACH) | Q(pii_exposed=True)
    candidates = (incidents_visible_to(user).filter(closed_at__isnull=True)
                  .filter(wanted).filter(plan_versions__isnull=False).distinct()
                  .prefetch_related(
                      "signer_requests", "plan_versions",
                      Prefetch("signer_requirements", queryset=SignerRequirement.objects
                               .filter(released_at__isnull=True), to_attr="live_requirements"),
                      Prefetch("signoffs", queryset=SignOff.objects.filter(
                          voided_at__isnull=True), to_attr="live_signoffs")))
    items = []
    for incident in candidates:  # a fixed number of queries, however many incidents
        requested = {r.role for r in incident.signer_requests.all()}
        needed = required_signers(incident, incident.live_requirements, requested)
        version = max(incident.plan_versions.all(), key=lambda v: v.number)
        signed = {s.role for s in incident.live_signoffs if s.version_id == version.pk}
        waiting = [r for r in roles if r in needed and r not in signed]
        if waiting:
            items.append(InboxItem(incident, version, waiting))
    return items


def signoff_inbox_count(*, user: User) -> int:
    return len(signoff_inbox(user=user))
