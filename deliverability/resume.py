"""The cautious-resume plan: how to bring sending back after an incident.

Start small with the most engaged subscribers (those who opened or clicked recently are
the least likely to complain and the most likely to earn good inbox signals), double the
volume each day while complaint and bounce rates stay under the thresholds, and stop to
review as soon as one is crossed.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

# (share of normal daily volume, who receives it)
STEPS: tuple[tuple[float, str], ...] = (
    (0.10, _("Most engaged: opened or clicked in the last 30 days")),
    (0.20, _("Engaged in the last 30 days")),
    (0.40, _("Engaged in the last 90 days")),
    (0.80, _("Engaged in the last 180 days")),
    (1.00, _("Normal audience (never the suppressed or unengaged)")),
)


@dataclass(frozen=True)
class ResumeDay:
    day: int
    share: float
    volume: int | None
    audience: str
    condition: str


def cautious_resume_plan(*, normal_daily_volume: int | None) -> list[ResumeDay]:
    """One row per day; volumes when the normal daily volume is known (from the baseline)."""
    rows = []
    for day, (share, audience) in enumerate(STEPS, start=1):
        condition = (_("Start here.") if day == 1 else
                     _("Only if yesterday's complaint and bounce rates stayed under every "
                       "threshold; otherwise pause and review."))
        volume = round(normal_daily_volume * share) if normal_daily_volume else None
        rows.append(ResumeDay(day=day, share=share, volume=volume, audience=str(audience),
                              condition=str(condition)))
    return rows
