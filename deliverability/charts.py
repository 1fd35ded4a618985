"""Server-rendered SVG charts (pygal), self-contained so the page and the PDF share them.

pygal's default output references a tooltip script from a CDN; we render with `js=[]` and
strip its config <script> (the page's CSP forbids inline scripts; the PDF runs none), no XML
declaration (the markup is embedded inline in HTML), and pygal's own CSS inlined in a
<style> element scoped to the chart's id.
"""

import re
from collections.abc import Sequence
from datetime import datetime

import pygal
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from pygal.style import Style

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#9aa5b1",
    font_family="system-ui, -apple-system, 'Segoe UI', sans-serif",
    # window, baseline, then threshold lines (warning amber, critical red)
    colors=("#1f6feb", "#7b8794", "#d69e2e", "#c53030", "#805ad5", "#2f855a"),
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=11,
    title_font_size=14,
)


# pygal always writes a small <script> holding its config for the tooltip JS, even with
# js=[]; it does nothing without that JS, and the CSP would refuse it anyway.
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f} %"


def rate_chart_svg(*, title: str, points: Sequence[tuple[datetime, float | None]],
                   baseline: float | None, thresholds: Sequence[tuple[str, float]],
                   bucket: str = "day", width: int = 640, height: int = 280) -> SafeString:
    """A line chart of one rate over time against its baseline and thresholds.

    `points` are (bucket start, rate as a fraction or None); returns SVG markup to
    embed inline. With no points it renders pygal's empty-state text.
    """
    chart = pygal.Line(
        title=title, width=width, height=height, explicit_size=True, style=STYLE,
        js=[], disable_xml_declaration=True, no_prefix=False,
        show_dots=True, dots_size=2.5, allow_interruptions=True, include_x_axis=True,
        legend_at_bottom=True, legend_at_bottom_columns=2, truncate_legend=-1,
        value_formatter=_percent, x_label_rotation=0, show_minor_x_labels=False,
        x_labels_major_count=7, margin=8, spacing=8, no_data_text=_("No events yet"),
    )
    fmt = "%d %b %H:%M" if bucket == "hour" else "%d %b"
    chart.x_labels = [when.strftime(fmt) for when, _rate in points]
    if points:
        n = len(points)
        chart.add(_("After the incident"), [rate for _when, rate in points])
        if baseline is not None:
            chart.add(_("Baseline (30 days before)"), [baseline] * n,
                      show_dots=False, stroke_style={"dasharray": "6, 4"})
        for label, limit in thresholds:
            chart.add(str(label), [limit] * n, show_dots=False,
                      stroke_style={"dasharray": "2, 3", "width": 1.5})
    # pygal serialises through an XML tree, so every label and value is escaped.
    return mark_safe(_SCRIPT.sub("", chart.render(is_unicode=True)))  # noqa: S308
