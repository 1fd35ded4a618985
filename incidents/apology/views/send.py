"""Step 5, sending the apology: start (with confirmation), live progress, pause, resume,
cancel (with confirmation), and decisions on messages the ESP could not account for."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from core.forms import error_text
from core.htmx import HtmxHttpRequest, wants_fragment
from incidents.apology import send as apology_send
from incidents.models import Incident
from incidents.permissions import can_work, get_incident_for_user


class SendForm(forms.Form):
    confirm = forms.BooleanField(
        label=gettext_lazy("I understand this cannot be undone."),
        error_messages={"required": gettext_lazy(
            "Tick the confirmation: sending the apology cannot be undone.")})
    expected_count = forms.IntegerField(min_value=1)
    # Lower than the ESP account's limits if wanted, never higher (checked by the service
    # against the account, with a message naming the limit).
    rate_per_second = forms.IntegerField(
        label=gettext_lazy("Messages per second"), required=False, min_value=1)
    batch_size = forms.IntegerField(
        label=gettext_lazy("Messages per ESP call"), required=False, min_value=1)


class CancelForm(forms.Form):
    confirm = forms.BooleanField(error_messages={"required": gettext_lazy(
        "Tick the confirmation: cancelling the apology cannot be undone.")})


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=[("resend", gettext_lazy("Send again")),
                                          ("drop", gettext_lazy("Do not send"))])


def _war_room(incident: Incident) -> str:
    return reverse("incidents:incident-detail", args=[incident.pk]) + "#send-gate"


def _progress(request: HtmxHttpRequest, incident: Incident, *, error: str = "",
              notice: str = "") -> HttpResponse:
    """htmx: the progress block in place; without htmx: back to the war room."""
    if not wants_fragment(request):
        if error:
            messages.error(request, error)
        elif notice:
            messages.success(request, notice)
        return redirect(_war_room(incident))
    return render(request, "incidents/panels/send_gate.html#progress", {
        "incident": incident, "send_panel": apology_send.SendPanel(incident),
        "can_work": can_work(request.user) and incident.is_open, "error": error,
        "notice": notice})


@login_required
@require_POST
def apology_send_start_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    form = SendForm(request.POST)
    if not form.is_valid():
        error = " ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, error)
    else:
        try:
            broadcast = apology_send.apology_send_start(
                incident=incident, actor=request.user,
                expected_count=form.cleaned_data["expected_count"],
                rate_per_second=form.cleaned_data["rate_per_second"],
                batch_size=form.cleaned_data["batch_size"])
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, _("Sending the apology to %(n)s people.") % {
                "n": broadcast.recipient_count})
    if wants_fragment(request):
        # A reload, not HX-Redirect: the war room's URL differs only by its #fragment, and a
        # fragment-only change would scroll without showing the progress bar.
        return HttpResponseClientRefresh()
    return redirect(_war_room(incident))


@login_required
@require_GET
def apology_send_progress_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk)
    if not wants_fragment(request):
        return redirect(_war_room(incident))
    return _progress(request, incident)


@login_required
@require_POST
def apology_send_pause_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    try:
        apology_send.apology_send_pause(incident=incident, actor=request.user)
    except ValidationError as exc:
        return _progress(request, incident, error=error_text(exc))
    return _progress(request, incident, notice=_("Paused: no further batch starts."))



@login_required
@require_POST
def apology_send_cancel_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _progress(request, incident, error=" ".join(form.errors["confirm"]))
    try:
        apology_send.apology_send_cancel(incident=incident, actor=request.user)
    except ValidationError as exc:
        return _progress(request, incident, error=error_text(exc))
    return _progress(request, incident, notice=_(
        "Cancelled: nobody still waiting will get the apology."))


@login_required
@require_POST
def apology_send_resume_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    try:
        apology_send.apology_send_resume(incident=incident, actor=request.user)
    except (ValidationError, PermissionDenied) as exc:
        return _progress(request, incident, error=error_text(exc))
    return _progress(request, incident, notice=_("Sending again."))


@login_required
@require_POST
def apology_send_reconcile_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    try:
        result = apology_send.apology_send_reconcile(incident=incident, actor=request.user)
    except ValidationError as exc:
        return _progress(request, incident, error=error_text(exc))
    if not result.looked_up:
        return _progress(request, incident, error=result.error or _(
            "Nothing is in doubt."))
    return _progress(request, incident, notice=_(
        "The ESP confirmed %(sent)s; %(requeued)s queued again; %(left)s still in doubt.") % {
        "sent": result.resolved_sent, "requeued": result.requeued,
        "left": result.still_in_doubt})


@login_required
@require_POST
def apology_send_decide_view(request: HtmxHttpRequest, pk: int,
                             delivery_id: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    form = DecideForm(request.POST)
    if not form.is_valid():
        return _progress(request, incident, error=_("Choose: send again, or do not send."))
    try:
        apology_send.apology_delivery_decide(
            incident=incident, actor=request.user, delivery_id=delivery_id,
            resend=form.cleaned_data["decision"] == "resend")
    except (ValidationError, PermissionDenied) as exc:
        return _progress(request, incident, error=error_text(exc))
    return _progress(request, incident, notice=_("Decision recorded on the timeline."))
