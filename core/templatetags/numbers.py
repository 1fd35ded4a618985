"""Counts as each language writes them: 1,234,567 · 1 234 567 · 1.234.567."""

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def grouped(value, decimals=None):
    """A number with the active language's digit grouping and decimal separator.

    Not global (USE_THOUSAND_SEPARATOR) on purpose: ids and cursors in URLs and data
    attributes must stay plain digits."""
    if value is None or value == "":
        return ""
    try:
        return number_format(value, decimal_pos=decimals, use_l10n=True, force_grouping=True)
    except (TypeError, ValueError):
        return value
