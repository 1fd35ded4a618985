"""Pages and htmx endpoints of step 4 (plan, sign-off) and the breach clock."""


from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import oversees_everything
from core.forms import form_apply
from core.htmx import HtmxHttpRequest, wants_fragment
from incidents.permissions import can_work, get_incident_for_user
from incidents.plan import breach, signoff
from incidents.plan import diff as plan_compare
from incidents.plan import services as plan
from incidents.plan.forms import (
    AwarenessForm,
    DiffForm,
    DutyNotifiedForm,
    DutyNotNeededForm,
    FollowUpFormSet,
    PlanForm,
    RequirementDropForm,
    SignerRequestForm,
    SignForm,
    WithdrawForm,
)
from incidents.plan.models import PlanVersion
from incidents.plan.selectors import plan_initial
from incidents.war_room import war_room_answer

# The parts of the war room a sign-off or breach change touches, after the step cards.
PANEL_PARTS = ["header", "timeline-events"]


# --- The plan ------------------------------------------------------------------------------

@login_required
@require_GET
def plan_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk)
    versions = list(incident.plan_versions.select_related("author"))
    shown = versions[0] if versions else None
    wanted = request.GET.get("version")
    if wanted:
        shown = next((v for v in versions if str(v.number) == wanted), None)
        if shown is None:
            messages.error(request, _("There is no plan version %(n)s.") % {"n": wanted})
            shown = versions[0] if versions else None
    signoffs = []
    if shown is not None:
        signoffs = list(shown.signoffs.select_related("signer").order_by("signed_at"))
    return render(request, "incidents/plan.html", {
        "incident": incident, "versions": versions, "shown": shown, "signoffs": signoffs,
        "fields": plan_compare.plan_fields_for_display(shown) if shown else [],
        "signoff": signoff.signoff_state(incident), "can_edit": can_work(request.user),
    })


@login_required
@require_http_methods(["GET", "POST"])
def plan_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    if not incident.is_open:
        raise PermissionDenied
    latest = plan.plan_latest(incident=incident)
    if request.method == "POST":
        form = PlanForm(request.POST)
        follow_ups = FollowUpFormSet(request.POST, prefix="fu")
    else:
        form = (PlanForm(instance=latest) if latest
                else PlanForm(initial=plan_initial(incident=incident)))
        form.initial["note"] = ""
        initial = []
        if latest:
            initial = [{"action": f["action"], "owner": f["owner"], "due": f["due"]}
                       for f in latest.follow_ups]
        follow_ups = FollowUpFormSet(prefix="fu", initial=initial)
    if request.method == "POST" and form.is_valid() and follow_ups.is_valid():
        items = [f for f in (fu.follow_up() for fu in follow_ups) if f is not None]
        data = form.cleaned_data
        try:
            version = plan.plan_version_create(
                incident=incident, actor=request.user, follow_ups=items,
                **{k: (data[k] if data[k] is not None else "") for k in data})
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errs in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errs)
            else:
                form.add_error(None, exc)
        else:
            if latest is not None and version.pk == latest.pk:
                messages.info(request, _("Nothing changed; the plan is still version %(n)s.")
                              % {"n": version.number})
            else:
                messages.success(request, _("Plan version %(n)s saved.") % {
                    "n": version.number})
            return redirect(reverse("incidents:incident-detail", args=[pk]) + "#step-4")
    return render(request, "incidents/plan_edit.html", {
        "incident": incident, "form": form, "follow_ups": follow_ups, "latest": latest})


@login_required
@require_GET
def plan_diff(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk)
    versions = {v.number: v for v in incident.plan_versions.select_related("author")}
    form = DiffForm(request.GET or None)
    error, diff, old, new = "", None, None, None
    status = 200
    if form.is_bound:
        if form.is_valid():
            old = versions.get(form.cleaned_data["old"])
            new = versions.get(form.cleaned_data["new"])
            if old is None or new is None:
                error = _("Choose two versions that exist (this plan has %(count)s).") % {
                    "count": len(versions)}
                status = 400
        else:
            error = _("Choose two version numbers to compare.")
            status = 400
    elif len(versions) >= 2:
        numbers = sorted(versions)
        old, new = versions[numbers[-2]], versions[numbers[-1]]
    if old is not None and new is not None:
        diff = plan_compare.plan_diff(old=old, new=new)
    context = {"incident": incident, "versions": sorted(versions.values(),
                                                         key=lambda v: v.number),
               "form": form, "error": error, "diff": diff, "old": old, "new": new}
    template = "incidents/plan_diff.html#diff" if wants_fragment(request) \
        else "incidents/plan_diff.html"
    return render(request, template, context, status=status)


# --- Sign-off ------------------------------------------------------------------------------

def _signoff_answer(request: HtmxHttpRequest, incident, error: str) -> HttpResponse:
    """From the sign page back to the sign page; from the war room back to step 4."""
    if request.POST.get("next") == "review" and not wants_fragment(request):
        if error:
            messages.error(request, error)
        return redirect("incidents:signoff-review", pk=incident.pk)
    return war_room_answer(request, incident, steps=[4, 5], parts=PANEL_PARTS, error=error,
                           anchor="step-4")


@login_required
@require_POST
def plan_sign(request: HtmxHttpRequest, pk: int, number: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    if not signoff.signer_roles_of(request.user):
        raise PermissionDenied
    version = get_object_or_404(PlanVersion, incident=incident, number=number)
    error = form_apply(SignForm(request.POST), lambda data: signoff.signoff_record(
        incident=incident, version=version, actor=request.user, decision=data["decision"],
        reason=data["reason"], role=data["role"], digest=data["digest"]))
    if not error and request.POST.get("next") == "review":
        messages.success(request, _("Your decision is recorded."))
    return _signoff_answer(request, incident, error)


@login_required
@require_POST
def signoff_withdraw(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    if not signoff.signer_roles_of(request.user):
        raise PermissionDenied
    error = form_apply(WithdrawForm(request.POST), lambda data: signoff.signoff_withdraw(
        incident=incident, actor=request.user, role=data["role"]))
    return _signoff_answer(request, incident, error)


@login_required
@require_POST
def requirement_drop(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    if not signoff.signer_roles_of(request.user):
        raise PermissionDenied
    error = form_apply(RequirementDropForm(request.POST),
                       lambda data: signoff.signer_requirement_drop(
                           incident=incident, actor=request.user, **data))
    return _signoff_answer(request, incident, error)


@login_required
@require_GET
def signoff_review(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The signer's page: the whole package, what changed since they last signed, and
    Approve / Reject (or "Approved — withdraw?")."""
    incident = get_incident_for_user(request.user, pk)
    review = signoff.signoff_review(incident=incident, user=request.user)
    return render(request, "incidents/signoff_review.html", {
        "incident": incident, "review": review, "signoff": review.state,
        "can_work": can_work(request.user) and incident.is_open})


@login_required
@require_POST
def signer_request(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    if incident.lead_id != request.user.pk and not oversees_everything(request.user):
        raise PermissionDenied
    form = SignerRequestForm(request.POST)
    error = ""
    if form.is_valid():
        signoff.signer_requests_set(incident=incident, actor=request.user,
                                    roles=set(form.cleaned_data["roles"]))
    else:
        error = " ".join(m for errs in form.errors.values() for m in errs)
    return war_room_answer(request, incident, steps=[4, 5], parts=PANEL_PARTS, error=error,
                           anchor="step-4")


@login_required
@require_GET
def signoff_inbox(request: HtmxHttpRequest) -> HttpResponse:
    items = signoff.signoff_inbox(user=request.user)
    return render(request, "incidents/inbox.html", {
        "items": items, "is_signer": bool(signoff.signer_roles_of(request.user))})


# --- Breach clock ----------------------------------------------------------------------------

@login_required
@require_POST
def breach_aware(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    error = form_apply(AwarenessForm(request.POST), lambda data: breach.breach_awareness_record(
        incident=incident, actor=request.user, **data))
    return war_room_answer(request, incident, steps=[3], parts=PANEL_PARTS, error=error,
                           anchor="step-3")


@login_required
@require_POST
def duty_notified(request: HtmxHttpRequest, pk: int, duty_id: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    get_object_or_404(incident.duties, pk=duty_id)
    error = form_apply(DutyNotifiedForm(request.POST), lambda data: breach.duty_mark_notified(
        incident=incident, duty_id=duty_id, actor=request.user, **data))
    return war_room_answer(request, incident, steps=[3], parts=PANEL_PARTS, error=error,
                           anchor="step-3")


@login_required
@require_POST
def duty_not_needed(request: HtmxHttpRequest, pk: int, duty_id: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    get_object_or_404(incident.duties, pk=duty_id)
    error = form_apply(DutyNotNeededForm(request.POST), lambda data: breach.duty_mark_not_needed(
        incident=incident, duty_id=duty_id, actor=request.user, **data))
    return war_room_answer(request, incident, steps=[3], parts=PANEL_PARTS, error=error,
                           anchor="step-3")
