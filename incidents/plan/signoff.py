"""Sign-off of the plan by legal and security, and the one guard every apology send calls.

Who must sign is decided by the incident: a data breach or exposed personal data needs
legal and security; SEV1 needs legal; the lead may ask for more. A signature is on one
plan version; editing the plan voids it.
"""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Prefetch, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import roles_of
from incidents.models import EventKind, Incident, Kind, Severity
from incidents.permissions import incidents_visible_to
from incidents.plan.models import Decision, PlanVersion, SignerRequest, SignerRole, SignOff
from incidents.timeline import actor_name, in_log_language, timeline_record

User = AbstractBaseUser


# --- Who must sign ---------------------------------------------------------------------

def required_signers(incident: Incident,
                     requested: set[str] | None = None) -> dict[str, str]:
    """Role → why it must sign. `requested` saves a query when the caller has it."""
    if requested is None:
        requested = set(incident.signer_requests.values_list("role", flat=True))
    needed: dict[str, str] = {}
    if incident.kind == Kind.DATA_BREACH or incident.pii_exposed:
        why = _("a data breach") if incident.kind == Kind.DATA_BREACH else _(
            "personal data exposed")
        needed[SignerRole.LEGAL] = why
        needed[SignerRole.SECURITY] = why
    if incident.severity == Severity.SEV1:
        needed.setdefault(SignerRole.LEGAL, _("SEV1"))
    for role in sorted(requested):
        needed.setdefault(role, _("requested by the lead"))
    return needed


def signer_roles_of(user: User) -> list[str]:
    """The sign-off roles a user may sign as: their legal/security groups, with the right."""
    if not user.is_authenticated or not user.has_perm("incidents.sign_plan"):
        return []
    return [r for r in SignerRole.values if r in roles_of(user)]


def _role_label(role: str) -> str:
    return str(SignerRole(role).label)


# --- The state of the sign-off --------------------------------------------------------

@dataclass(frozen=True)
class RoleState:
    role: str
    label: str
    why: str
    signoff: SignOff | None  # the live decision on the current version, if any

    @property
    def approved(self) -> bool:
        return self.signoff is not None and self.signoff.decision == Decision.APPROVED

    @property
    def rejected(self) -> bool:
        return self.signoff is not None and self.signoff.decision == Decision.REJECTED


@dataclass(frozen=True)
class SignoffState:
    version: PlanVersion | None
    roles: list[RoleState]
    allowed: bool
    reasons: list[str]
    voided: list[SignOff]  # signatures that stopped counting, newest first

    @property
    def required(self) -> bool:
        return bool(self.roles)


def signoff_state(incident: Incident) -> SignoffState:
    """Read everything from the database, never from the instance's cached relations, so a
    stale object in a long-running task cannot let a send through."""
    incident = Incident.objects.get(pk=incident.pk)
    needed = required_signers(incident)
    version = incident.plan_versions.order_by("-number").first()
    live = {}
    if version is not None:
        live = {s.role: s for s in SignOff.objects.select_related("signer").filter(
            version=version, voided_at__isnull=True)}
    roles = [RoleState(role, _role_label(role), why, live.get(role))
             for role, why in needed.items()]
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
            if r.signoff is None:
                reasons.append(_("%(role)s has not signed plan version %(n)s yet (needed: "
                                 "%(why)s).") % {"role": r.label, "n": version.number,
                                                 "why": r.why})
            elif r.rejected:
                reasons.append(_("%(role)s rejected plan version %(n)s: %(reason)s") % {
                    "role": r.label, "n": version.number, "reason": r.signoff.reason})
    voided = list(SignOff.objects.select_related("signer", "version")
                  .filter(incident=incident, voided_at__isnull=False)[:10])
    return SignoffState(version, roles, not reasons, reasons, voided)


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
    """Raise ApologyBlocked unless every required signature approves the current plan.

    Call it inside the sending transaction, after locking the incident row
    (`Incident.objects.select_for_update()`), so an edit cannot slip in between.
    """
    allowed, reasons = apology_send_allowed(incident)
    if not allowed:
        raise ApologyBlocked(reasons)


# --- Writes ------------------------------------------------------------------------------

@transaction.atomic
def signoff_record(*, incident: Incident, version: PlanVersion, actor: User, decision: str,
                   reason: str = "", role: str = "") -> SignOff:
    """Approve or reject one plan version as legal or security."""
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
    now = timezone.now()
    # Changing one's mind on the same version: the earlier decision stays on record, void.
    SignOff.objects.filter(version=version, role=role, voided_at__isnull=True).update(
        voided_at=now, void_reason="superseded by a new decision")
    signoff = SignOff.objects.create(incident=incident, version=version, role=role,
                                     signer=actor, decision=decision, reason=reason,
                                     signed_at=now)
    with in_log_language():
        if decision == Decision.APPROVED:
            message = _("%(who)s (%(role)s) approved plan version %(n)s.")
        else:
            message = _("%(who)s (%(role)s) rejected plan version %(n)s. Reason: %(reason)s")
        timeline_record(incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                        message=message % {"who": actor_name(actor), "role": _role_label(role),
                                           "n": version.number, "reason": reason},
                        data={"version": version.number, "role": role, "decision": decision,
                              "signoff": signoff.pk})
        allowed, _reasons = apology_send_allowed(incident)
        if allowed and required_signers(incident):
            # Attributed to the signer whose decision completed the set (the war room's
            # timeline template cannot show an event without an actor yet).
            timeline_record(incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                            message=_("Every required sign-off approves plan version %(n)s: "
                                      "the apology may be sent.") % {"n": version.number},
                            data={"version": version.number, "cleared": True})
    return signoff


def signoffs_void_for_edit(*, incident: Incident, version: PlanVersion, actor: User) -> int:
    """Void every live signature on versions before `version`; runs inside the edit."""
    stale = list(SignOff.objects.select_related("signer", "version")
                 .filter(incident=incident, voided_at__isnull=True)
                 .exclude(version=version))
    if not stale:
        return 0
    now = timezone.now()
    why = f"plan edited to version {version.number}"
    SignOff.objects.filter(pk__in=[s.pk for s in stale]).update(voided_at=now, void_reason=why)
    with in_log_language():
        for s in stale:
            timeline_record(
                incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                message=(_("The plan changed (version %(new)s), so the approval of "
                           "%(signer)s (%(role)s) on version %(old)s is void; they are asked "
                           "to sign again.") if s.decision == Decision.APPROVED else
                         _("The plan changed (version %(new)s), so the rejection by "
                           "%(signer)s (%(role)s) on version %(old)s is void; they are asked "
                           "to sign again.")) % {
                    "new": version.number, "signer": actor_name(s.signer),
                    "role": _role_label(s.role), "old": s.version.number},
                data={"signoff": s.pk, "voided": True, "version": version.number})
    ids = [s.pk for s in stale]

    from incidents.plan.tasks import notify_signoffs_voided

    transaction.on_commit(lambda: notify_signoffs_voided.delay(ids))
    return len(stale)


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
    with in_log_language():
        parts = []
        if added:
            parts.append(_("asked for sign-off by %(roles)s") % {
                "roles": ", ".join(_role_label(r) for r in sorted(added))})
        if removed:
            parts.append(_("withdrew the request for %(roles)s") % {
                "roles": ", ".join(_role_label(r) for r in sorted(removed))})
        timeline_record(incident=incident, actor=actor, kind=EventKind.SIGNOFF,
                        message=_("%(who)s %(what)s.") % {"who": actor_name(actor),
                                                          "what": _("; ").join(parts)},
                        data={"requested": sorted(roles)})


def signoffs_voided_notify(*, signoff_ids: list[int]) -> int:
    """Email each signer whose signature an edit voided; returns how many were sent."""
    sent = 0
    base = settings.AMENDS_BASE_URL.rstrip("/")
    for s in SignOff.objects.select_related("signer", "incident", "version").filter(
            pk__in=signoff_ids):
        if not s.signer.email or not s.signer.is_active:
            continue
        with in_log_language():
            subject = _("[Amends] Sign again: the plan of “%(title)s” changed") % {
                "title": s.incident.title}
            body = _("Your decision (%(decision)s) on plan version %(n)s is void because "
                     "the plan was edited. Please read the new version and sign again.") % {
                "decision": Decision(s.decision).label, "n": s.version.number}
        send_mail(subject, f"{body}\n\n{base}/incidents/{s.incident_id}/plan/\n",
                  settings.DEFAULT_FROM_EMAIL, [s.signer.email])
        sent += 1
    return sent


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
    wanted = Q(signer_requests__role__in=roles)
    if SignerRole.LEGAL in roles:
        wanted |= Q(severity=Severity.SEV1)
    wanted |= Q(kind=Kind.DATA_BREACH) | Q(pii_exposed=True)
    candidates = (incidents_visible_to(user).filter(closed_at__isnull=True)
                  .filter(wanted).filter(plan_versions__isnull=False).distinct()
                  .prefetch_related(
                      "signer_requests", "plan_versions",
                      Prefetch("signoffs", queryset=SignOff.objects.filter(
                          voided_at__isnull=True), to_attr="live_signoffs")))
    items = []
    for incident in candidates:  # a fixed number of queries, however many incidents
        requested = {r.role for r in incident.signer_requests.all()}
        needed = required_signers(incident, requested)
        version = max(incident.plan_versions.all(), key=lambda v: v.number)
        signed = {s.role for s in incident.live_signoffs if s.version_id == version.pk}
        waiting = [r for r in roles if r in needed and r not in signed]
        if waiting:
            items.append(InboxItem(incident, version, waiting))
    return items


def signoff_inbox_count(*, user: User) -> int:
    return len(signoff_inbox(user=user))
