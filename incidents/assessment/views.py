"""Step 3 of the war room: compute the affected audience, look one person up, record the
assessment. Thin views: check permission, validate, call one service, render."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from core.forms import error_text
from core.htmx import HtmxHttpRequest, wants_fragment
from incidents.assessment import services as audience
from incidents.assessment.forms import AssessmentForm, AudienceScopeForm, LookupForm
from incidents.models import ResponseStep
from incidents.permissions import can_work, get_incident_for_user
from incidents.war_room import war_room_answer

PARTS = ["timeline-events"]


@login_required
@require_POST
def audience_compute(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    step = get_object_or_404(ResponseStep, incident=incident, number=3)
    form = AudienceScopeForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            # Queued, not computed here: a million recipients take longer than a request.
            audience.affected_audience_request(
                incident=incident, actor=request.user, campaigns=form.cleaned_data["campaigns"],
                segments=form.cleaned_data["segments"])
        except ValidationError as exc:
            error = error_text(exc)
    else:
        error = error_text(form)
    return war_room_answer(request, incident, steps=[step.number], parts=PARTS, error=error,
                           anchor="assessment")


@login_required
@require_POST
def audience_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    error = ""
    try:
        audience.affected_audience_cancel(incident=incident, actor=request.user)
    except ValidationError as exc:
        error = error_text(exc)
    return war_room_answer(request, incident, steps=[3], parts=PARTS, error=error,
                           anchor="assessment")


@login_required
@require_GET
def audience_progress(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The progress bar's poll: the bar while the computation runs; once it has ended, the
    whole step card (new counts, or the message saying why not) in its place."""
    incident = get_incident_for_user(request.user, pk)
    panel = audience.AssessmentPanel(incident)
    if wants_fragment(request) and panel.run and panel.run.is_active:
        return render(request, "incidents/panels/assessment.html#audience-progress",
                      {"incident": incident, "assessment_panel": panel,
                       "can_work": can_work(request.user) and incident.is_open})
    # The timeline too: the answer moves the live poll's mark past the events that ended it.
    response = war_room_answer(request, incident, steps=[3], parts=PARTS, anchor="assessment")
    if wants_fragment(request):
        response["HX-Retarget"] = "#step-3"
        response["HX-Reswap"] = "outerHTML"
    return response


@login_required
@require_POST
def assessment_update(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    step = get_object_or_404(ResponseStep, incident=incident, number=3)
    form = AssessmentForm(request.POST)
    error = ""
    if form.is_valid():
        data = dict(form.cleaned_data)
        try:
            audience.assessment_update(incident=incident, actor=request.user,
                                       pii_exposed=data.pop("pii_exposed"), **data)
        except ValidationError as exc:
            error = error_text(exc)
    else:
        error = error_text(form)
    return war_room_answer(request, incident, steps=[step.number],
                           parts=["header", "timeline-events"], error=error, anchor="assessment")


@login_required
@require_GET
def audience_lookup(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Read-only: anyone who may see the incident may ask about one address."""
    incident = get_incident_for_user(request.user, pk)
    form = LookupForm(request.GET)
    answer = None
    if form.is_valid():
        answer = audience.affected_audience_lookup(incident=incident,
                                                   email=form.cleaned_data["email"])
    context = {"incident": incident, "lookup_form": form, "answer": answer,
               "no_apology": audience.AssessmentPanel(incident).no_apology}
    if wants_fragment(request):
        return render(request, "incidents/panels/assessment.html#lookup-answer", context)
    return render(request, "incidents/audience_lookup.html", context)
