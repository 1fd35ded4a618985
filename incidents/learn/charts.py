"""The crisis summary's trend: median response times by month, drawn like step 6's charts
(pygal, the same style, inline SVG without scripts) so the page and a PDF can share it."""

from collections.abc import Sequence
from functools import lru_cache

import pygal
from django.utils import formats
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from deliverability.charts import STYLE, svg_markup
from incidents.learn.summary import TrendMonth


def hours_text(value: float | None) -> str:
    """A duration given in hours, as people read it: hours up to two days, then days."""
    if value is None:
        return ""
    if value < 48:
        return _("%(n)s h") % {"n": formats.number_format(value, 1)}
    return _("%(n)s days") % {"n": formats.number_format(value / 24, 1)}


def trend_chart_svg(*, months: Sequence[TrendMonth], width: int = 720,
                    height: int = 300) -> SafeString:
    """Three lines (contain, notify, close), in hours from declaration; a month without
    such a milestone is a gap, not a zero. The same figures draw the same SVG, so a
    repeat (the page's poll, another manager) is served from memory."""
    key = tuple((m.month, tuple(m.median_hours.get(k) for k in MILESTONE_KEYS))
                for m in months)
    return _trend_svg(key, get_language(), width, height)


MILESTONE_KEYS = ("contained_at", "notified_at", "closed_at")


@lru_cache(maxsize=32)
def _trend_svg(months: tuple, language: str | None, width: int, height: int) -> SafeString:
    chart = pygal.Line(
        title=_("Median time from declaration, by month"), width=width, height=height,
        explicit_size=True, style=STYLE, js=[], disable_xml_declaration=True,
        show_dots=True, dots_size=3, allow_interruptions=True, include_x_axis=True,
        legend_at_bottom=True, legend_at_bottom_columns=3, truncate_legend=-1,
        value_formatter=hours_text, x_label_rotation=0, margin=8, spacing=8,
        no_data_text=_("No incidents in these months"),
    )
    chart.x_labels = [formats.date_format(month, "M Y") for month, _values in months]
    if any(v is not None for _month, values in months for v in values):
        labels = (_("To contain (step 2 done)"), _("To notify (apology sent)"), _("To close"))
        for i, label in enumerate(labels):
            chart.add(label, [values[i] for _month, values in months])
    return svg_markup(chart)
