"""Breach-notification duties per jurisdiction. This is data: add a row, not code.

Each duty runs from the moment the organisation became aware of the breach. `hours` is a
hard deadline; None means the law sets no fixed period ("without undue delay"), which
the page shows as text and never as a countdown. Summaries for orientation only: legal
confirms what applies to each incident.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Duty:
    code: str
    title: str
    audience: str  # "authority" | "individuals" | "assessment"
    legal_basis: str
    hours: int | None
    deadline_text: str = ""


@dataclass(frozen=True)
class Jurisdiction:
    code: str
    name: str
    duties: tuple[Duty, ...]


DAY = 24

JURISDICTIONS: tuple[Jurisdiction, ...] = (
    Jurisdiction("eu", _("European Union (GDPR)"), (
        Duty("authority", _("Notify the supervisory authority"), "authority",
             "GDPR Art. 33", 72),
        Duty("individuals", _("Tell the affected people (high risk to them)"), "individuals",
             "GDPR Art. 34", None, _("Without undue delay")),
    )),
    Jurisdiction("uk", _("United Kingdom (UK GDPR)"), (
        Duty("authority", _("Notify the ICO"), "authority", "UK GDPR Art. 33", 72),
        Duty("individuals", _("Tell the affected people (high risk to them)"), "individuals",
             "UK GDPR Art. 34", None, _("Without undue delay")),
    )),
    Jurisdiction("us-co", _("United States: Colorado"), (
        Duty("individuals", _("Notify affected Colorado residents"), "individuals",
             "C.R.S. § 6-1-716", 30 * DAY),
    )),
    Jurisdiction("us-fl", _("United States: Florida"), (
        Duty("individuals", _("Notify affected Florida residents"), "individuals",
             "Fla. Stat. § 501.171", 30 * DAY),
    )),
    Jurisdiction("us-wa", _("United States: Washington"), (
        Duty("individuals", _("Notify affected Washington residents"), "individuals",
             "RCW 19.255.010", 30 * DAY),
    )),
    Jurisdiction("us-tx", _("United States: Texas"), (
        Duty("individuals", _("Notify affected Texas residents"), "individuals",
             "Tex. Bus. & Com. Code § 521.053", 60 * DAY),
    )),
    Jurisdiction("us-ct", _("United States: Connecticut"), (
        Duty("individuals", _("Notify affected Connecticut residents"), "individuals",
             "Conn. Gen. Stat. § 36a-701b", 60 * DAY),
    )),
    Jurisdiction("au", _("Australia (Notifiable Data Breaches)"), (
        Duty("assessment", _("Finish assessing whether the breach is eligible"), "assessment",
             "Privacy Act 1988 s 26WH", 30 * DAY),
        Duty("notify", _("Notify the OAIC and affected people once eligible"), "individuals",
             "Privacy Act 1988 s 26WK–26WL", None, _("As soon as practicable")),
    )),
)

BY_CODE = {j.code: j for j in JURISDICTIONS}
