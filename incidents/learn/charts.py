"""The crisis summary's trend: median response times by month, drawn like step 6's charts
(pygal, the same style, inline SVG without scripts) so the page and a PDF can share it."""

from collections.abc import Sequence

import pygal
from django.utils import formats
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from deliverability.charts import STYLE, svg_markup
from incidents.learn.selectors import TrendMonth


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
    such a milestone is a gap, not a zero."""
    chart = pygal.Line(
        title=_("Median time from declaration, by month"), width=width, height=height,
        explicit_size=True, style=STYLE, js=[], disable_xml_declaration=True,
        show_dots=True, dots_size=3, allow_interruptions=True, include_x_axis=True,
        legend_at_bottom=True, legend_at_bottom_columns=3, truncate_legend=-1,
        value_formatter=hours_text, x_label_rotation=0, margin=8, spacing=8,
        no_data_text=_("No incidents in these months"),
    )
    chart.x_labels = [formats.date_format(m.month, "M Y") for m in months]
    if any(v is not None for m in months for v in m.median_hours.values()):
        for key, label in (("contained_at", _("To contain (step 2 done)")),
                           ("notified_at", _("To notify (apology sent)")),
                           ("closed_at", _("To close"))):
            chart.add(label, [m.median_hours[key] for m in months])
    return svg_markup(chart)
