"""Server-rendered SVG charts (pygal), self-contained so the page and the PDF share them.

pygal's default output references a tooltip script from a CDN; we render with `js=[]` and
strip its config <script> (the page's CSP forbids inline scripts; the PDF runs none), no XML
declaration (the markup is embedded inline in HTML), and pygal's own CSS inlined in a
<style> element scoped to the chart's id.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pygal
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from pygal.style import Style

from .formatting import percent_value

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#9aa5b1",
    font_family="system-ui, -apple-system, 'Segoe UI', sans-serif",
    # (before,) after, baseline, then threshold lines (warning amber, critical red)
    colors=("#9fb3c8", "#1f6feb", "#7b8794", "#d69e2e", "#c53030", "#805ad5"),
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=11,
    title_font_size=14,
)


# pygal always writes a small <script> holding its config for the tooltip JS, even with
# js=[]; it does nothing without that JS, and the CSP would refuse it anyway.
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)


# Below this many messages a bucket's rate is noise (one complaint in 15 is "6.7 %"):
# such buckets are drawn as gaps.
MIN_POINT_VOLUME = 50


@dataclass(frozen=True)
class Point:
    when: datetime
    rate: float | None
    volume: int
    before: bool = False  # before the incident (drawn as context)
    bucket: str = "day"  # "hour" or "day", for the label


def _percent(value: float | None) -> str:
    return "" if value is None else f"{percent_value(value)} %"


def rate_chart_svg(*, title: str, points: Sequence[Point], baseline: float | None,
                   thresholds: Sequence[tuple[str, float]], width: int = 640,
                   height: int = 320) -> SafeString:
    """A line chart of one rate over time against its baseline and thresholds.

    Returns SVG markup to embed inline; with no points it renders pygal's empty-state text.
    """
    chart = pygal.Line(
        title=title, width=width, height=height, explicit_size=True, style=STYLE,
        js=[], disable_xml_declaration=True, no_prefix=False,
        show_dots=True, dots_size=2.5, allow_interruptions=True, include_x_axis=True,
        legend_at_bottom=True, legend_at_bottom_columns=3, truncate_legend=-1,
        value_formatter=_percent, x_label_rotation=0, show_minor_x_labels=False,
        x_labels_major_count=6, margin=8, spacing=8, no_data_text=_("No events yet"),
    )
    chart.x_labels = [p.when.strftime("%d %b %H:%M" if p.bucket == "hour" else "%d %b")
                      for p in points]
    if points:
        n = len(points)
        rates = [p.rate if p.volume >= MIN_POINT_VOLUME else None for p in points]
        if any(p.before for p in points):
            chart.add(_("Before the incident"),
                      [r if p.before else None for p, r in zip(points, rates, strict=True)])
        chart.add(_("After the incident"),
                  [None if p.before else r for p, r in zip(points, rates, strict=True)])
        if baseline is not None:
            chart.add(_("Baseline (30 days before)"), [baseline] * n,
                      show_dots=False, stroke_style={"dasharray": "6, 4"})
        for label, limit in thresholds:
            chart.add(str(label), [limit] * n, show_dots=False,
                      stroke_style={"dasharray": "2, 3", "width": 1.5})
    # pygal serialises through an XML tree, so every label and value is escaped.
    return mark_safe(_SCRIPT.sub("", chart.render(is_unicode=True)))  # noqa: S308
