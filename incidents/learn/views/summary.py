"""The managers' crisis summary: the page, the cheap poll that refreshes it, the CSV."""

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from core.htmx import HtmxHttpRequest, wants_fragment
from incidents.learn import summary as selectors
from incidents.learn.charts import hours_text, trend_chart_svg
from incidents.learn.forms import SummaryFilterForm
from incidents.learn.selectors import follow_ups_overdue
from incidents.models import Severity

PAGE_SIZE = 25
OVERDUE_SHOWN = 20
EXPORT_CHUNK = 500


def _params(request: HtmxHttpRequest, *drop: str) -> QueryDict:
    params = request.GET.copy()
    for key in drop:
        params.pop(key, None)
    return params


def _filters(request: HtmxHttpRequest) -> tuple[SummaryFilterForm, selectors.SummaryFilters]:
    form = SummaryFilterForm(_params(request, "page", "v") or None)
    if form.is_bound:
        form.is_valid()
    return form, form.filters()


def _query(request: HtmxHttpRequest, *drop: str) -> str:
    """The filters and order for links (pages, headings, export), without the page."""
    return _params(request, "page", "v", *drop).urlencode()


@dataclass(frozen=True)
class Card:
    label: str
    current: str
    previous: str
    key: str


def _money(amounts: dict) -> str:
    return "; ".join(
        f"{currency} {formats.number_format(value, 2, force_grouping=True)}"
        for currency, value in amounts.items()) or "0"


def headline_cards(headline: selectors.Headline) -> list[Card]:
    """The figures above the table, each with the period before beside it."""
    now, before = headline.current, headline.previous
    cards = [Card(_("Open %(sev)s") % {"sev": Severity(sev).label},
                  str(now.open_by_severity[sev]), str(before.open_by_severity[sev]),
                  f"open-sev{sev}") for sev in Severity.values]
    for key, label in (("contained_at", _("Median time to contain")),
                       ("notified_at", _("Median time to notify")),
                       ("closed_at", _("Median time to close"))):
        cards.append(Card(label, hours_text(now.median_hours[key]) or "–",
                          hours_text(before.median_hours[key]) or "–", key))
    cards += [
        Card(_("Overdue steps"), str(now.overdue_steps), str(before.overdue_steps), "overdue"),
        Card(_("People affected"), formats.number_format(now.affected, force_grouping=True),
             formats.number_format(before.affected, force_grouping=True), "affected"),
        Card(_("Compensation cost"), _money(now.compensation), _money(before.compensation),
             "compensation"),
    ]
    return cards


def _sort_links(request: HtmxHttpRequest, current: str) -> dict[str, dict]:
    base = _query(request, "sort")
    links = {}
    for key in selectors.SORTS:
        active = current.lstrip("-") == key
        descending = current.startswith("-")
        target = f"-{key}" if active and not descending else key
        links[key] = {"href": f"?{base}{'&' if base else ''}sort={target}",
                      "aria": ("descending" if descending else "ascending") if active else ""}
    return links


def _summary_context(request: HtmxHttpRequest, form: SummaryFilterForm,
                     filters: selectors.SummaryFilters, now: datetime) -> dict:
    page = Paginator(selectors.summary_rows(user=request.user, filters=filters, now=now),
                     PAGE_SIZE).get_page(request.GET.get("page"))
    headline = selectors.summary_headline(user=request.user, filters=filters, now=now)
    return {
        "form": form, "filters": filters, "page": page, "now": now,
        "rows": selectors.summary_page_rows(page.object_list, now),
        "headline": headline, "trend_svg": trend_chart_svg(months=headline.trend),
        "cards": headline_cards(headline), "sort_links": _sort_links(request, filters.sort),
        "query": _query(request),
        # The poll repeats the page's own parameters, page number included.
        "poll_query": _params(request, "v").urlencode(),
        "version": selectors.summary_version(user=request.user, now=now),
        "step_numbers": range(1, 7),
    }


@login_required
@require_GET
def summary(request: HtmxHttpRequest) -> HttpResponse:
    form, filters = _filters(request)
    context = _summary_context(request, form, filters, timezone.now())
    template = "learn/summary.html#live" if wants_fragment(request) else "learn/summary.html"
    return render(request, template, context)


@login_required
@require_GET
def summary_follow_ups(request: HtmxHttpRequest) -> HttpResponse:
    """Follow-ups of post-mortems past their date, on incidents this person may see: asked
    for by the summary page once it has loaded (its own query budget stays flat)."""
    overdue = list(follow_ups_overdue(user=request.user).order_by("due_on", "pk")
                   [:OVERDUE_SHOWN])
    template = ("learn/summary.html#overdue" if wants_fragment(request)
                else "learn/overdue_follow_ups.html")
    return render(request, template, {"overdue_follow_ups": overdue})


@login_required
@require_GET
def summary_poll(request: HtmxHttpRequest) -> HttpResponse:
    """204 (htmx leaves the page alone) while nothing changed; the fresh table otherwise."""
    now = timezone.now()
    if request.GET.get("v") == selectors.summary_version(user=request.user, now=now):
        return HttpResponse(status=204)
    form, filters = _filters(request)
    return render(request, "learn/summary.html#live",
                  _summary_context(request, form, filters, now))


# --- CSV --------------------------------------------------------------------------------------

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection"); a leading apostrophe makes it text. Numbers are written as numbers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_safe(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def _when(value: datetime | None) -> str:
    return timezone.localtime(value).isoformat(timespec="minutes") if value else ""


def _csv_rows(request: HtmxHttpRequest, filters: selectors.SummaryFilters,
              now: datetime) -> Iterator[list]:
    yield [_("Id"), _("Severity"), _("Kind"), _("Title"), _("Lead"), _("Status"),
           _("Declared at"), _("Closed at"), _("Age (hours)"), _("Current step"),
           *[_("Step %(n)s") % {"n": n} for n in range(1, 7)],
           *[_("Step %(n)s owner") % {"n": n} for n in range(1, 7)],
           *[_("Step %(n)s done at") % {"n": n} for n in range(1, 7)],
           _("Affected"), _("Sign-off"), _("Breach clock"), _("Breach deadline"),
           _("Deliverability alert")]
    incidents = selectors.summary_rows(user=request.user, filters=filters, now=now)
    for incident in incidents.iterator(chunk_size=EXPORT_CHUNK):
        row = selectors.summary_row(incident, now)
        cells = {c.number: c for c in row.steps}
        yield [incident.pk, incident.get_severity_display(), incident.get_kind_display(),
               incident.title, selectors.person_name(incident.lead),
               incident.get_status_display(), _when(incident.declared_at),
               _when(incident.closed_at), round(row.age.total_seconds() / 3600, 1),
               f"{row.current.number}. {row.current.title}" if row.current else "",
               *[cells[n].label if n in cells else "" for n in range(1, 7)],
               *[cells[n].owner if n in cells else "" for n in range(1, 7)],
               *[_when(cells[n].done_at) if n in cells else "" for n in range(1, 7)],
               row.affected, row.signoff.label, row.breach.label,
               _when(row.breach.deadline), _("yes") if row.alert else _("no")]


@login_required
@require_GET
def summary_export(request: HtmxHttpRequest) -> StreamingHttpResponse:
    """Every row the filters select (not just one page), streamed in chunks."""
    _form, filters = _filters(request)
    now = timezone.now()
    writer = csv.writer(_Echo())
    lines = (writer.writerow([csv_safe(v) for v in row])
             for row in _csv_rows(request, filters, now))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="crisis-summary-{timezone.localdate(now).isoformat()}.csv"')
    return response
