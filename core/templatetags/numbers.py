"""Counts as each language writes them: 1,234,567 · 1 234 567 · 1.234.567."""

from django import template

from core.l10n import grouped_number

register = template.Library()


@register.filter
def grouped(value, decimals=None):
    """A number with the active language's digit grouping and decimal separator (ids and
    cursors stay plain: see core.l10n)."""
    if value is None or value == "":
        return ""
    try:
        return grouped_number(value, decimals)
    except (TypeError, ValueError):
        return value
