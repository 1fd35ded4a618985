"""The war room: what the incident page shows, and how an htmx change answers with the
parts of the page it touched (the first in place, the others out of band)."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.roles import oversees_everything
from core.htmx import HtmxHttpRequest, wants_fragment
from incidents import selectors
from incidents.apology.selectors import apology_summary
from incidents.apology.send import SendPanel
from incidents.assessment.services import AssessmentPanel
from incidents.containment.services import ContainmentPanel
from incidents.forms import NoteForm, StakeholderForm
from incidents.models import Incident
from incidents.monitoring.services import deliverability_panel
from incidents.permissions import can_work
from incidents.plan import breach, signoff
from incidents.plan.forms import AwarenessForm

TIMELINE_PAGE = 50

# Which panels each response step shows inside its card, in order.
STEP_PANELS: dict[int, tuple[str, ...]] = {
    2: ("incidents/panels/containment.html",),
    3: ("incidents/panels/assessment.html", "incidents/panels/breach.html"),
    4: ("incidents/panels/plan.html",),
    5: ("incidents/panels/send_gate.html", "incidents/panels/apology.html"),
    6: ("incidents/panels/deliverability.html",),
}


def current_step_number(steps) -> int | None:
    """The step at hand: the first one neither done nor skipped."""
    return next((s.number for s in steps if not s.is_resolved), None)


def war_room_context(request: HtmxHttpRequest, incident: Incident, *,
                     open_steps: tuple[int, ...] = ()) -> dict:
    """Everything the page shows. The step at hand is open, and so are `open_steps` (the
    one a link named, or the ones a change just touched); the others show one line."""
    user = request.user
    steps = selectors.incident_steps(incident=incident)
    current = current_step_number(steps)
    for step in steps:
        step.panels = STEP_PANELS.get(step.number, ())
        step.is_current = step.number == current
        step.is_open = step.is_current or step.number in open_steps
        step.open_items = sum(1 for item in step.items.all() if not item.done)  # prefetched
    summary = apology_summary(incident=incident)
    events = list(selectors.incident_timeline(incident=incident, limit=TIMELINE_PAGE + 1))
    more = len(events) > TIMELINE_PAGE
    events = events[:TIMELINE_PAGE]
    return {
        "incident": incident,
        "steps": steps,
        "current_step": current,
        # The live poll's mark, from the page of events already read (no extra query).
        "last_event_id": max((e.pk for e in events), default=0),
        "events": events,
        "more": more,
        "filters": selectors.TIMELINE_FILTERS,
        "stakeholders": selectors.incident_stakeholders(incident=incident),
        "users": selectors.assignable_users(),
        "can_work": can_work(user) and incident.is_open,
        "can_edit": can_work(user),
        "note_form": NoteForm(),
        "stakeholder_form": StakeholderForm(),
        # Step 4 and the header's breach countdown.
        "signoff": signoff.signoff_state(incident),
        "my_signer_roles": signoff.signer_roles_of(user),
        "is_lead": incident.lead_id == user.pk or oversees_everything(user),
        "requested_signers": set(incident.signer_requests.values_list("role", flat=True)),
        "breach": breach.breach_view(incident=incident),
        "awareness_form": AwarenessForm(initial={"jurisdictions": ["eu"]}),
        # The step panels are lazy: each reads the database only when its card shows it.
        "containment": ContainmentPanel(incident),
        "assessment_panel": AssessmentPanel(incident),
        "apology_summary": summary,
        "send_panel": SendPanel(incident, summary=summary),  # one linter run for both
        "deliverability": deliverability_panel(incident=incident),
    }


def war_room_answer(request: HtmxHttpRequest, incident: Incident, *, parts: list[str],
                    steps: list[int] | tuple[int, ...] = (), error: str = "",
                    anchor: str = "") -> HttpResponse:
    """After a change: for htmx, the step cards named by number and then the named parts of
    the page (the first fragment in place, carrying the error; the rest out of band);
    without htmx, back to the war room with the error as a message."""
    if not wants_fragment(request):
        if error:
            messages.error(request, error)
        url = reverse("incidents:incident-detail", args=[incident.pk])
        return redirect(f"{url}#{anchor}" if anchor else url)
    incident.refresh_from_db()
    context = war_room_context(request, incident, open_steps=tuple(steps))
    by_number = {step.number: step for step in context["steps"]}
    current = context["current_step"]
    if steps and current is not None and current not in steps:
        steps = [*steps, current]  # a step was finished: the next one opens beside it
    # The poller's mark moves too, so the person's own change does not come back as news.
    fragments = ([("step", by_number[n]) for n in steps] + [(part, None) for part in parts]
                 + [("live", None)])
    html = []
    for i, (part, step) in enumerate(fragments):
        extra = {"oob": i > 0, "error": error if i == 0 else ""}
        if step is not None:
            extra["step"] = step
        html.append(render_to_string(f"incidents/detail.html#{part}", {**context, **extra},
                                     request=request))
    return HttpResponse("".join(html))


# What a change anywhere can alter, refreshed for everyone who has the page open.
LIVE_PARTS = ["header", "tracker", "six-steps", "stakeholders", "timeline-events"]


def war_room_live(request: HtmxHttpRequest, incident: Incident, *, since: int) -> HttpResponse:
    """The cheap poll every open war room makes: nothing (204) while the timeline has no
    newer event — every state change writes one — else the poller itself with the new mark,
    and the header, tracker, step cards and side column out of band."""
    last = selectors.incident_last_event_id(incident=incident)
    if last <= since:
        return HttpResponse(status=204)
    context = {**war_room_context(request, incident), "last_event_id": last}
    html = [render_to_string("incidents/detail.html#live", context, request=request)]
    for step in context["steps"]:
        html.append(render_to_string("incidents/detail.html#step",
                                     {**context, "step": step, "oob": True}, request=request))
    for part in LIVE_PARTS:
        html.append(render_to_string(f"incidents/detail.html#{part}",
                                     {**context, "oob": True}, request=request))
    return HttpResponse("".join(html))
