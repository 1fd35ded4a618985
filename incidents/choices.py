"""The incidents app's vocabularies. Apart from models.py so that step packages' models
and forms can use them without importing the models module that registers them."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    WRONG_SEGMENT = "wrong_segment", _("Sent to the wrong segment")
    BROKEN_LINK = "broken_link", _("Broken link")
    WRONG_CONTENT = "wrong_content", _("Wrong content or version")
    WRONG_OFFER = "wrong_offer", _("Wrong or expired offer or coupon")
    SENT_TOO_EARLY = "sent_too_early", _("Sent too early")
    PERSONALIZATION = "personalization", _("Personalization failure")
    SUPPRESSION_SEND = "suppression_send", _("Sent to a suppression list")
    DUPLICATE_SEND = "duplicate_send", _("Duplicate send")
    DATA_BREACH = "data_breach", _("Data breach")
    OTHER = "other", _("Other")


class Severity(models.IntegerChoices):
    SEV1 = 1, _("SEV1")
    SEV2 = 2, _("SEV2")
    SEV3 = 3, _("SEV3")
    SEV4 = 4, _("SEV4")


SEVERITY_DEFINITIONS = {
    Severity.SEV1: _("Personal data exposed, or the whole list harmed: all hands, now."),
    Severity.SEV2: _("A large audience got a harmful or costly email; act within the hour."),
    Severity.SEV3: _("A limited audience saw a visible mistake; fix it today."),
    Severity.SEV4: _("A cosmetic slip few will notice; note it and correct calmly."),
}


class Status(models.TextChoices):
    DECLARED = "declared", _("Declared")
    CONTAINED = "contained", _("Contained")
    ASSESSED = "assessed", _("Assessed")
    PLANNED = "planned", _("Planned")
    NOTIFIED = "notified", _("Notified")
    MONITORING = "monitoring", _("Monitoring")
    CLOSED = "closed", _("Closed")


class Cause(models.TextChoices):
    TECHNICAL = "technical", _("Technical fault")
    MISCOMMUNICATION = "miscommunication", _("Miscommunication")
    COORDINATION = "coordination", _("Lack of coordination")
    HUMAN = "human", _("Human error")


class StepStatus(models.TextChoices):
    NOT_STARTED = "not_started", _("Not started")
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Done")
    SKIPPED = "skipped", _("Skipped")


class StakeholderRole(models.TextChoices):
    LEAD = "lead", _("Lead")
    MARKETING = "marketing", _("Marketing")
    LEGAL = "legal", _("Legal")
    SECURITY = "security", _("Security")
    IT = "it", _("IT")
    DELIVERABILITY = "deliverability", _("Deliverability")
    LEADERSHIP = "leadership", _("Leadership")


class EventKind(models.TextChoices):
    DECLARED = "declared", _("Declared")
    UPDATED = "updated", _("Details changed")
    STATUS = "status", _("Status changed")
    STEP = "step", _("Step changed")
    OWNER = "owner", _("Owner changed")
    CHECKLIST = "checklist", _("Checklist")
    STAKEHOLDER = "stakeholder", _("Stakeholders")
    NOTE = "note", _("Note")
    CORRECTION = "correction", _("Correction")
    ALERT = "alert", _("Alert")
    CLOSED = "closed", _("Closed")
    REOPENED = "reopened", _("Reopened")
    PLAN = "plan", _("Plan")
    SIGNOFF = "signoff", _("Sign-off")
    BREACH = "breach", _("Breach clock")
    LEARN = "learn", _("Post-mortem")
