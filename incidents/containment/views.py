"""Step 2 of the war room: pause every sending campaign, and watch the ESPs answer.
Thin views: check permission, call one service, render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from core.forms import error_text, form_apply
from core.htmx import HtmxHttpRequest, wants_fragment
from incidents import selectors
from incidents.containment.forms import CampaignLinkForm
from incidents.containment.services import (
    ContainmentPanel,
    incident_campaigns_link,
    incident_campaigns_stop,
)
from incidents.models import Incident
from incidents.permissions import can_work, get_incident_for_user
from incidents.war_room import TIMELINE_PAGE, war_room_context


def _panel(request: HtmxHttpRequest, incident: Incident, *, error: str = "") -> HttpResponse:
    """The step-2 panel, with the timeline out of band (outcomes land there too)."""
    context = {"incident": incident, "containment": ContainmentPanel(incident),
               "can_work": can_work(request.user) and incident.is_open,
               "can_edit": can_work(request.user), "containment_error": error,
               "events": selectors.incident_timeline(incident=incident, limit=TIMELINE_PAGE)}
    html = render_to_string("incidents/panels/containment.html#containment", context,
                            request=request)
    html += render_to_string("incidents/detail.html#timeline-events", {**context, "oob": True},
                             request=request)
    return HttpResponse(html)


@login_required
@require_POST
def campaigns_stop(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    error = ""
    try:
        stops = incident_campaigns_stop(incident=incident, actor=request.user)
    except ValidationError as exc:
        error = error_text(exc)
    else:
        if not stops:
            error = _("Nothing new to stop: every campaign of this incident is stopped, "
                      "finished, or already being stopped.")
    if wants_fragment(request):
        return _panel(request, incident, error=error)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, ngettext(
            "Asked the ESP to stop %(count)d campaign; the answer appears in step 2.",
            "Asked the ESPs to stop %(count)d campaigns; the answers appear in step 2.",
            len(stops)) % {"count": len(stops)})
    return redirect(reverse("incidents:incident-detail", args=[incident.pk]) + "#containment")


@login_required
@require_POST
def campaigns_link(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Mark faulty campaigns right in step 2, so pausing never waits on step 3."""
    incident = get_incident_for_user(request.user, pk, write=True)
    form = CampaignLinkForm(request.POST)
    error = form_apply(form, lambda data: incident_campaigns_link(
        incident=incident, actor=request.user, campaigns=data["campaigns"]))
    if wants_fragment(request):
        return _panel(request, incident, error=error)
    if error:
        messages.error(request, error)
    return redirect(reverse("incidents:incident-detail", args=[incident.pk]) + "#containment")


@login_required
@require_GET
def containment(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The campaigns and their stops: the panel for htmx polling, else the war room."""
    incident = get_incident_for_user(request.user, pk)
    if wants_fragment(request):
        return _panel(request, incident)
    return render(request, "incidents/detail.html", war_room_context(request, incident))
