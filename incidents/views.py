
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.forms import error_text, form_apply
from core.htmx import HtmxHttpRequest, wants_fragment
from incidents import selectors, services
from incidents.containment.services import incident_declare_with_campaigns
from incidents.forms import (
    ChecklistItemForm,
    ChecklistMoveForm,
    ChecklistTickForm,
    DeclareForm,
    IncidentEditForm,
    IncidentFilterForm,
    NoteForm,
    ReopenForm,
    StakeholderForm,
    StepOwnerForm,
    StepStatusForm,
)
from incidents.learn.selectors import postmortem_for
from incidents.models import ChecklistItem, Incident, ResponseStep, Stakeholder, TimelineEvent
from incidents.permissions import can_declare, get_incident_for_user
from incidents.war_room import (
    TIMELINE_PAGE,
    war_room_answer,
    war_room_context,
    war_room_live,
)

PAGE_SIZE = 25


@login_required
@require_GET
def incident_list(request: HtmxHttpRequest) -> HttpResponse:
    form = IncidentFilterForm(request.GET or None)
    filters = selectors.IncidentFilters()
    if form.is_valid():
        filters = selectors.IncidentFilters(**{k: v for k, v in form.cleaned_data.items() if v})
    # Keyset pages: the cost of a page does not grow with the number of incidents.
    page = selectors.incident_list_page(
        user=request.user, filters=filters, size=PAGE_SIZE,
        after=request.GET.get("after", ""), before=request.GET.get("before", ""))
    query = request.GET.copy()
    for key in ("after", "before", "page"):
        query.pop(key, None)
    context = {"form": form, "page": page, "query": query.urlencode(),
               "can_declare": can_declare(request.user), "filtered": any(
                   [filters.status, filters.severity, filters.kind, filters.q])}
    template = "incidents/list.html#results" if wants_fragment(request) else "incidents/list.html"
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def incident_declare(request: HtmxHttpRequest) -> HttpResponse:
    if not can_declare(request.user):
        raise PermissionDenied
    form = DeclareForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            incident = incident_declare_with_campaigns(
                actor=request.user, title=data["title"], kind=data["kind"],
                severity=data["severity"], detected_at=data["detected_at"],
                summary=data["summary"], pii_exposed=data["pii_exposed"], lead=data["lead"],
                campaigns=data["campaigns"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Incident declared. Work the steps below."))
            return redirect("incidents:incident-detail", pk=incident.pk)
    return render(request, "incidents/declare.html", {"form": form})


@login_required
@require_GET
def incident_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk)
    return render(request, "incidents/detail.html", war_room_context(request, incident))


@login_required
@require_GET
def step_detail(request: HtmxHttpRequest, pk: int, number: int) -> HttpResponse:
    """The war room with one step open: the address a link in an email points to."""
    incident = get_incident_for_user(request.user, pk)
    if not ResponseStep.objects.filter(incident=incident, number=number).exists():
        raise Http404
    context = war_room_context(request, incident, open_steps=(number,))
    if wants_fragment(request):
        step = next(s for s in context["steps"] if s.number == number)
        return render(request, "incidents/detail.html#step", {**context, "step": step})
    return render(request, "incidents/detail.html", {**context, "focus_step": number})


@login_required
@require_GET
def incident_live(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk)
    try:
        since = int(request.GET.get("since", "0"))
    except ValueError:
        since = 0
    if not wants_fragment(request):
        return redirect("incidents:incident-detail", pk=pk)
    return war_room_live(request, incident, since=since)


STEP_PARTS = ["header", "tracker", "six-steps", "timeline-events"]


def _step_for(request, pk: int, number: int) -> tuple[Incident, ResponseStep]:
    incident = get_incident_for_user(request.user, pk, write=True)
    return incident, get_object_or_404(ResponseStep, incident=incident, number=number)


def _item_for(request, pk: int, item_id: int) -> tuple[Incident, ChecklistItem]:
    incident = get_incident_for_user(request.user, pk, write=True)
    item = get_object_or_404(ChecklistItem.objects.select_related("step"), pk=item_id,
                             step__incident=incident)
    return incident, item


def _step_answer(request, incident: Incident, step: ResponseStep, error: str) -> HttpResponse:
    return war_room_answer(request, incident, steps=[step.number], parts=STEP_PARTS,
                           error=error, anchor=f"step-{step.number}")


@login_required
@require_POST
def step_status(request: HtmxHttpRequest, pk: int, number: int) -> HttpResponse:
    incident, step = _step_for(request, pk, number)
    error = form_apply(StepStatusForm(request.POST), lambda data: services.step_set_status(
        step=step, actor=request.user, **data))
    return _step_answer(request, incident, step, error)


@login_required
@require_POST
def step_owner(request: HtmxHttpRequest, pk: int, number: int) -> HttpResponse:
    incident, step = _step_for(request, pk, number)
    error = form_apply(StepOwnerForm(request.POST), lambda data: services.step_assign_owner(
        step=step, actor=request.user, owner=data["owner"]))
    return _step_answer(request, incident, step, error)


@login_required
@require_POST
def checklist_add(request: HtmxHttpRequest, pk: int, number: int) -> HttpResponse:
    incident, step = _step_for(request, pk, number)
    error = form_apply(ChecklistItemForm(request.POST), lambda data: services.checklist_item_add(
        step=step, actor=request.user, text=data["text"]))
    return _step_answer(request, incident, step, error)


@login_required
@require_POST
def checklist_tick(request: HtmxHttpRequest, pk: int, item_id: int) -> HttpResponse:
    incident, item = _item_for(request, pk, item_id)
    error = form_apply(ChecklistTickForm(request.POST),
                       lambda data: services.checklist_item_set_done(
                           item=item, actor=request.user, done=data["done"]))
    return _step_answer(request, incident, item.step, error)


@login_required
@require_POST
def checklist_edit(request: HtmxHttpRequest, pk: int, item_id: int) -> HttpResponse:
    incident, item = _item_for(request, pk, item_id)
    error = form_apply(ChecklistItemForm(request.POST), lambda data: services.checklist_item_edit(
        item=item, actor=request.user, text=data["text"]))
    return _step_answer(request, incident, item.step, error)


@login_required
@require_POST
def checklist_move(request: HtmxHttpRequest, pk: int, item_id: int) -> HttpResponse:
    incident, item = _item_for(request, pk, item_id)
    error = form_apply(ChecklistMoveForm(request.POST), lambda data: services.checklist_item_move(
        item=item, actor=request.user, offset=data["offset"]))
    return _step_answer(request, incident, item.step, error)


@login_required
@require_GET
def timeline(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The timeline, a page at a time (newest first), optionally one kind of event; htmx
    gets the list or the next page, a plain request the timeline's own page."""
    incident = get_incident_for_user(request.user, pk)
    show = request.GET.get("show", "")
    show = show if show in selectors.TIMELINE_FILTERS else ""
    before, inclusive = None, False
    for param in ("before", "at"):  # "at": a permalink, the page starting at that event
        if request.GET.get(param, "").isdigit():
            before = get_object_or_404(TimelineEvent, pk=int(request.GET[param]),
                                       incident=incident)
            inclusive = param == "at"
    events = list(selectors.incident_timeline(incident=incident, limit=TIMELINE_PAGE + 1,
                                              before=before, inclusive=inclusive, show=show))
    context = {**war_room_context(request, incident), "events": events[:TIMELINE_PAGE],
               "more": len(events) > TIMELINE_PAGE, "show": show, "paged": before is not None,
               "filters": selectors.TIMELINE_FILTERS}
    if wants_fragment(request):
        part = "timeline-page" if before is not None else "timeline-events"
        return render(request, f"incidents/detail.html#{part}", context)
    # The page of its own is a read-only record (corrections are made in the war room).
    return render(request, "incidents/timeline.html", {**context, "can_edit": False})


@login_required
@require_POST
def note_add(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    error = form_apply(NoteForm(request.POST), lambda data: services.timeline_note_add(
        incident=incident, actor=request.user, message=data["message"]))
    return war_room_answer(request, incident, parts=["timeline"], error=error, anchor="timeline")


@login_required
@require_POST
def event_correct(request: HtmxHttpRequest, pk: int, event_id: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    event = get_object_or_404(TimelineEvent, pk=event_id, incident=incident)
    error = form_apply(NoteForm(request.POST), lambda data: services.timeline_correct(
        event=event, actor=request.user, message=data["message"]))
    return war_room_answer(request, incident, parts=["timeline"], error=error, anchor="timeline")


STAKEHOLDER_PARTS = ["stakeholders", "timeline-events"]


@login_required
@require_POST
def stakeholder_add(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    error = form_apply(StakeholderForm(request.POST), lambda data: services.stakeholder_add(
        incident=incident, actor=request.user, **data))
    return war_room_answer(request, incident, parts=STAKEHOLDER_PARTS, error=error,
                         anchor="stakeholders")


@login_required
@require_POST
def stakeholder_remove(request: HtmxHttpRequest, pk: int, stakeholder_id: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    stake = get_object_or_404(Stakeholder, pk=stakeholder_id, incident=incident)
    error = ""
    try:
        services.stakeholder_remove(stakeholder=stake, actor=request.user)
    except ValidationError as exc:
        error = error_text(exc)
    return war_room_answer(request, incident, parts=STAKEHOLDER_PARTS, error=error,
                         anchor="stakeholders")


@login_required
@require_http_methods(["GET", "POST"])
def incident_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    form = IncidentEditForm(request.POST or None, instance=Incident.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.changed_data
                   if name != "change_reason"}
        try:
            services.incident_update(incident=incident, actor=request.user,
                                     reason=form.cleaned_data["change_reason"], **changes)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Details saved."))
            return redirect("incidents:incident-detail", pk=pk)
    return render(request, "incidents/edit.html", {"form": form, "incident": incident})


@login_required
@require_http_methods(["GET", "POST"])
def incident_close(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    if request.method == "POST":
        try:
            services.incident_close(
                incident=incident, actor=request.user,
                postmortem_skip_reason=request.POST.get("postmortem_skip_reason", ""))
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, _("Incident closed."))
        return redirect("incidents:incident-detail", pk=pk)
    steps = selectors.incident_steps(incident=incident)
    return render(request, "incidents/close.html", {
        "incident": incident, "open_steps": [s for s in steps if not s.is_resolved],
        "postmortem": postmortem_for(incident=incident)})


@login_required
@require_http_methods(["GET", "POST"])
def incident_reopen(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    form = ReopenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.incident_reopen(incident=incident, actor=request.user,
                                     reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Incident reopened."))
            return redirect("incidents:incident-detail", pk=pk)
    return render(request, "incidents/reopen.html", {"form": form, "incident": incident})
