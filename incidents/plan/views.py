"""Pages and htmx endpoints of step 4 (plan, sign-off) and the breach clock."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import oversees_everything
from core.htmx import HtmxHttpRequest, wants_fragment
from incidents.models import Incident
from incidents.permissions import can_work, get_incident_for_user
from incidents.plan import breach, signoff
from incidents.plan import services as plan
from incidents.plan.forms import (
    AwarenessForm,
    DiffForm,
    DutyNotifiedForm,
    DutyNotNeededForm,
    FollowUpFormSet,
    PlanForm,
    SignerRequestForm,
    SignForm,
)
from incidents.plan.models import PlanVersion


def war_room_extras(*, incident: Incident, user) -> dict:
    """What the step-4/5 panels and the header's breach countdown need (one line in
    views._war_room_context)."""
    return {
        "signoff": signoff.signoff_state(incident),
        "my_signer_roles": signoff.signer_roles_of(user),
        "is_lead": incident.lead_id == user.pk or oversees_everything(user),
        "requested_signers": set(incident.signer_requests.values_list("role", flat=True)),
        "breach": breach.breach_view(incident=incident),
        "awareness_form": AwarenessForm(initial={"jurisdictions": ["eu"]}),
    }


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


# The parts of the war room a sign-off or breach change touches.
PANEL_PARTS = ["header", "timeline-events"]


def _after(request: HtmxHttpRequest, incident: Incident, *, step_numbers: list[int],
           error: str = "") -> HttpResponse:
    """htmx: the step cards in place (the first) and out of band (the rest), with the
    header and the timeline; without htmx: back to the war room."""
    if not wants_fragment(request):
        if error:
            messages.error(request, error)
        url = reverse("incidents:incident-detail", args=[incident.pk])
        return redirect(f"{url}#step-{step_numbers[0]}")
    from incidents.views import _war_room_context

    incident.refresh_from_db()
    context = _war_room_context(request, incident)
    html = []
    for i, number in enumerate(step_numbers):
        step = next(s for s in context["steps"] if s.number == number)
        html.append(render_to_string("incidents/detail.html#step", {
            **context, "step": step, "oob": i > 0, "error": error if i == 0 else ""},
            request=request))
    for part in PANEL_PARTS:
        html.append(render_to_string(f"incidents/detail.html#{part}",
                                     {**context, "oob": True}, request=request))
    return HttpResponse("".join(html))


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
        "fields": plan.plan_fields_for_display(shown) if shown else [],
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
        form = PlanForm(instance=latest) if latest else PlanForm()
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
        diff = plan.plan_diff(old=old, new=new)
    context = {"incident": incident, "versions": sorted(versions.values(),
                                                         key=lambda v: v.number),
               "form": form, "error": error, "diff": diff, "old": old, "new": new}
    template = "incidents/plan_diff.html#diff" if wants_fragment(request) \
        else "incidents/plan_diff.html"
    return render(request, template, context, status=status)


# --- Sign-off ------------------------------------------------------------------------------

@login_required
@require_POST
def plan_sign(request: HtmxHttpRequest, pk: int, number: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    if not signoff.signer_roles_of(request.user):
        raise PermissionDenied
    version = get_object_or_404(PlanVersion, incident=incident, number=number)
    form = SignForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            signoff.signoff_record(incident=incident, version=version, actor=request.user,
                                   decision=form.cleaned_data["decision"],
                                   reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            error = _errors(exc)
    else:
        error = " ".join(m for errs in form.errors.values() for m in errs)
    return _after(request, incident, step_numbers=[4, 5], error=error)


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
    return _after(request, incident, step_numbers=[4, 5], error=error)


@login_required
@require_GET
def signoff_inbox(request: HtmxHttpRequest) -> HttpResponse:
    items = signoff.signoff_inbox(user=request.user)
    return render(request, "incidents/inbox.html", {
        "items": items, "is_signer": bool(signoff.signer_roles_of(request.user))})


# --- Breach clock ----------------------------------------------------------------------------

def _apply(form, action: Callable[[dict], object]) -> str:
    """Validate the form and run one service; the error text to show ("" when it worked),
    each field error led by its field's label."""
    if not form.is_valid():
        return " ".join(f"{form.fields[f].label}: {m}" if f in form.fields else m
                        for f, errs in form.errors.items() for m in errs)
    try:
        action(form.cleaned_data)
    except ValidationError as exc:
        return _errors(exc)
    return ""


@login_required
@require_POST
def breach_aware(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    error = _apply(AwarenessForm(request.POST), lambda data: breach.breach_awareness_record(
        incident=incident, actor=request.user, **data))
    return _after(request, incident, step_numbers=[3], error=error)


@login_required
@require_POST
def duty_notified(request: HtmxHttpRequest, pk: int, duty_id: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    get_object_or_404(incident.duties, pk=duty_id)
    error = _apply(DutyNotifiedForm(request.POST), lambda data: breach.duty_mark_notified(
        incident=incident, duty_id=duty_id, actor=request.user, **data))
    return _after(request, incident, step_numbers=[3], error=error)


@login_required
@require_POST
def duty_not_needed(request: HtmxHttpRequest, pk: int, duty_id: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    get_object_or_404(incident.duties, pk=duty_id)
    error = _apply(DutyNotNeededForm(request.POST), lambda data: breach.duty_mark_not_needed(
        incident=incident, duty_id=duty_id, actor=request.user, **data))
    return _after(request, incident, step_numbers=[3], error=error)
