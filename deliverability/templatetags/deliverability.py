from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 2) -> str:
    """0.0042 -> "0.42 %" (localised); None -> "—" (nothing to divide by)."""
    if value is None:
        return "—"
    return f"{number_format(value * 100, decimal_pos=digits, use_l10n=True)} %"
