"""Deliverability thresholds as data: named presets of (metric, level, limit).

A rate crosses a threshold when it is >= the limit and the denominator has at least
`min_volume` messages (a single complaint among 20 messages is noise, not a signal).
Rates are fractions: 0.001 is 0.1 %. Sources are the pages we read; where only a
secondary page quoted a provider's figure we say so.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

WARNING = "warning"
CRITICAL = "critical"
LEVELS = {WARNING: _("warning"), CRITICAL: _("critical")}

# Metric -> label; the rates themselves are defined in selectors.RATES.
METRICS = {
    "delivered_rate": _("Delivered"),
    "bounce_rate": _("Bounces (hard + soft)"),
    "hard_bounce_rate": _("Hard bounces"),
    "soft_bounce_rate": _("Soft bounces"),
    "complaint_rate": _("Spam complaints"),
    "unsubscribe_rate": _("Unsubscribes"),
}


@dataclass(frozen=True)
class Threshold:
    metric: str
    level: str
    limit: float
    label: str
    source: str = ""
    min_volume: int = 100

    @property
    def level_label(self) -> str:
        return str(LEVELS[self.level])

    @property
    def key(self) -> str:
        return f"{self.metric}:{self.level}"


GMAIL_YAHOO = ("Gmail/Yahoo bulk-sender rules (Feb 2024): keep spam rate under 0.1 %, never "
               "reach 0.3 %; quoted by suped.com/knowledge/email-deliverability/"
               "sender-reputation/how-strictly-does-gmail-enforce-the-03percent-spam-rate-policy"
               " (Google's own page not retrieved)")
SES = ("Amazon SES reputation: account under review at 5 % bounces or 0.1 % complaints, "
       "sending paused at 10 % / 0.5 %; quoted from the SES Developer Guide by "
       "blog.sendops.dev/blog/fix-aws-ses-bounce-and-complaint-rate/")
BREVO = ("help.brevo.com/hc/en-us/articles/209408165: negative results include a hard "
         "bounce rate above 2 %, an unsubscribe rate above 1 %, a complaint rate above 0.2 %")

PRESETS: dict[str, tuple[Threshold, ...]] = {
    # The default: mailbox providers' published guidance.
    "mailbox_providers": (
        Threshold("complaint_rate", WARNING, 0.001, _("Spam complaints at 0.1 %"), GMAIL_YAHOO),
        Threshold("complaint_rate", CRITICAL, 0.003, _("Spam complaints at 0.3 %"),
                  GMAIL_YAHOO),
        # 2 % is the common industry ceiling (also Brevo's, for hard bounces).
        Threshold("bounce_rate", WARNING, 0.02, _("Bounces at 2 %"), BREVO),
        Threshold("bounce_rate", CRITICAL, 0.05, _("Bounces at 5 % (SES review level)"), SES),
    ),
    "amazon_ses": (
        Threshold("hard_bounce_rate", WARNING, 0.05, _("Hard bounces at 5 % (SES review)"),
                  SES),
        Threshold("hard_bounce_rate", CRITICAL, 0.10, _("Hard bounces at 10 % (SES pause)"),
                  SES),
        Threshold("complaint_rate", WARNING, 0.001, _("Complaints at 0.1 % (SES review)"), SES),
        Threshold("complaint_rate", CRITICAL, 0.005, _("Complaints at 0.5 % (SES pause)"),
                  SES),
    ),
    "brevo": (
        Threshold("hard_bounce_rate", CRITICAL, 0.02, _("Hard bounces above 2 % (Brevo)"),
                  BREVO),
        Threshold("unsubscribe_rate", CRITICAL, 0.01, _("Unsubscribes above 1 % (Brevo)"),
                  BREVO),
        Threshold("complaint_rate", CRITICAL, 0.002, _("Complaints above 0.2 % (Brevo)"),
                  BREVO),
        # Brevo publishes no early-warning level; half its limits is our assumption.
        Threshold("hard_bounce_rate", WARNING, 0.01, _("Hard bounces at 1 % (half Brevo's)"),
                  "our assumption"),
        Threshold("complaint_rate", WARNING, 0.001, _("Complaints at 0.1 % (half Brevo's)"),
                  "our assumption"),
    ),
}


PRESET_LABELS = {
    "mailbox_providers": _("Mailbox providers (Gmail and Yahoo sender guidance)"),
    "amazon_ses": _("Amazon SES account review levels"),
    "brevo": _("Brevo account limits"),
}


def preset(name: str) -> tuple[Threshold, ...]:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown threshold preset {name!r}; "
                         f"choose one of {', '.join(PRESETS)}") from None


def crossed(thresholds: tuple[Threshold, ...], totals: dict) -> list[Threshold]:
    """Thresholds the given totals (from selectors.delivery_totals) cross."""
    hits = []
    for threshold in thresholds:
        rate = totals.get(threshold.metric)
        volume = totals.get(RATE_DENOMINATOR[threshold.metric], 0)
        if rate is not None and volume >= threshold.min_volume and rate >= threshold.limit:
            hits.append(threshold)
    return hits


# Which count each rate is divided by (see selectors.RATES).
RATE_DENOMINATOR = {
    "delivered_rate": "sent", "bounce_rate": "sent", "hard_bounce_rate": "sent",
    "soft_bounce_rate": "sent", "complaint_rate": "delivered", "unsubscribe_rate": "delivered",
}
