from django import template
from django.utils.formats import number_format

from deliverability.formatting import percent_value

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 2) -> str:
    """0.0042 -> "0.42 %" (localised, rounded half up); None -> "—" (nothing to divide by).

    number_format alone truncates (0.4565 % would show as 0.45 %): round first.
    """
    if value is None:
        return "—"
    return f"{number_format(percent_value(value, digits), decimal_pos=digits, use_l10n=True)} %"
