"""Rates as people read them: percentages rounded half up, never truncated."""

from decimal import ROUND_HALF_UP, Decimal


def percent_value(rate: float, digits: int = 2) -> Decimal:
    """0.004565 -> Decimal("0.46"). From the rate's shortest repr, so that binary noise
    (0.004565 * 100 == 0.45649999…) does not decide the last digit."""
    exponent = Decimal(1).scaleb(-digits)
    return (Decimal(repr(rate)) * 100).quantize(exponent, rounding=ROUND_HALF_UP)
