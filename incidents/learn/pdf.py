"""The post-mortem as a PDF (WeasyPrint): one HTML document built from the incident's
record, laid out with print CSS (running headers, page numbers, a table of contents).

Every user string reaches the page through Django's autoescaping; the charts are step 6's
pygal SVG, which escapes its own labels. Nothing user-written goes into CSS.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from incidents.apology.send import apology_broadcast, broadcast_counts
from incidents.assessment.services import affected_audience_summary
from incidents.learn.selectors import (
    duration_text,
    follow_ups_for,
    playbook_lessons,
    postmortem_for,
)
from incidents.models import Incident, ResponseStep
from incidents.monitoring.services import DeliverabilityPanel
from incidents.plan.models import PlanVersion, SignOff
from incidents.selectors import incident_steps

Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    note: str = ""


def _since(incident: Incident, when: datetime | None) -> timedelta | None:
    return None if when is None else when - incident.declared_at


def _step_done(steps: list[ResponseStep], number: int) -> datetime | None:
    return next((s.done_at for s in steps if s.number == number), None)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def _money(amount: Decimal | None, currency: str) -> str:
    return "—" if amount is None else f"{amount:,.2f} {currency}"


def postmortem_document(*, incident: Incident) -> dict:
    """Everything the PDF shows, read once. A closed incident is shown as it was closed."""
    steps = incident_steps(incident=incident)
    postmortem = postmortem_for(incident=incident)
    audience = affected_audience_summary(incident=incident)
    broadcast = apology_broadcast(incident=incident)
    counts = broadcast_counts(broadcast=broadcast) if broadcast is not None else None
    notified_at = (broadcast.finished_at if broadcast is not None and broadcast.finished_at
                   else _step_done(steps, 5))
    figures = [
        Figure(_("Time to contain"), duration_text(_since(incident, _step_done(steps, 2))),
               _("declared → step 2 done")),
        Figure(_("Time to notify"), duration_text(_since(incident, notified_at)),
               _("declared → apology sent")),
        Figure(_("Time to close"), duration_text(_since(incident, incident.closed_at)),
               _("declared → closed")),
        Figure(_("Reached by the faulty send"), f"{audience.reached:,}"),
        Figure(_("In the apology audience"), f"{audience.affected:,}"),
        Figure(_("Apologies sent"), f"{counts.sent:,}" if counts else "—",
               _("%(failed)s failed, %(doubt)s in doubt") % {
                   "failed": counts.failed, "doubt": counts.in_doubt} if counts else ""),
        Figure(_("Cost"), _money(postmortem.cost, postmortem.currency)
               if postmortem else "—"),
        Figure(_("Overdue steps"), str(sum(1 for s in steps if s.done_at and s.due_at
                                            and s.done_at > s.due_at))),
    ]
    versions = list(
        PlanVersion.objects.filter(incident=incident).select_related("author")
        .prefetch_related(Prefetch("signoffs", queryset=SignOff.objects.select_related(
            "signer").order_by("signed_at", "id")))
        .order_by("number"))
    bodies = []
    if broadcast is not None:
        for locale, body in sorted((broadcast.bodies or {}).items()):
            bodies.append({"locale": locale, "language": _language_name(locale),
                           "subject": body.get("subject", broadcast.subject),
                "text": body.get("text", "")})
    # Step 6's window runs its full length from the declaration, closed or not.
    panel = DeliverabilityPanel(incident)
    rates = [{"label": row.label, "baseline": _percent(row.baseline),
              "window": _percent(row.window), "crossed": bool(row.crossed),
              "limits": ", ".join(f"{t.label} ({t.limit * 100:.2f} %)" for t in row.limits)}
             for row in panel.rows]
    return {
        "incident": incident,
        "generated_at": timezone.now(),
        "steps": steps,
        "figures": figures,
        "events": incident.events.select_related("actor").order_by("created_at", "id"),
        "audience": audience,
        "versions": versions,
        "broadcast": broadcast,
        "broadcast_counts": counts,
        "bodies": bodies,
        "deliverability": panel,
        "rates": rates,
        "postmortem": postmortem,
        "follow_ups": list(follow_ups_for(incident=incident)),
        "lessons": list(playbook_lessons(incident=incident)),
        "today": timezone.localdate(),
    }


def _language_name(locale: str) -> str:
    try:
        return translation.get_language_info(locale)["name_local"]
    except KeyError:
        return locale


def _refuse_fetch(url: str, *args, **kwargs):
    # The document is self-contained (inline SVG, no images): nothing is ever fetched, so
    # no URL that slipped into a user string can make the renderer call out.
    raise ValueError(f"the post-mortem PDF loads no external resources ({url[:80]})")


@dataclass(frozen=True)
class RenderedPdf:
    content: bytes
    pages: int


def postmortem_pdf_render(*, incident: Incident, progress: Progress | None = None
                          ) -> RenderedPdf:
    """Collect, lay out and write the PDF, reporting progress at each stage."""
    from weasyprint import HTML  # heavy import: only where a PDF is made

    report = progress or (lambda percent, stage: None)
    report(10, _("Collecting the record"))
    context = postmortem_document(incident=incident)
    html = render_to_string("learn/postmortem_pdf.html", context)
    report(35, _("Laying out the pages"))
    document = HTML(string=html, url_fetcher=_refuse_fetch).render()
    report(85, _("Writing the PDF"))
    content = document.write_pdf()
    return RenderedPdf(content=content, pages=len(document.pages))
