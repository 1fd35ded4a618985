"""Reads of step 4."""

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from incidents.models import AffectedAudience, Assessment, Incident, Kind, PiiField
from incidents.plan.models import CompensationKind


def plan_initial(*, incident: Incident) -> dict[str, object]:
    """A first plan drafted from step 3's answers, so the team edits rather than starts
    blank: who qualifies (the affected audience), compensation from the assessment, and what
    subscribers must do when credentials or payment details were exposed."""
    audience = AffectedAudience.objects.filter(incident=incident).first()
    assessment = Assessment.objects.filter(incident=incident).first()
    initial: dict[str, object] = {}
    with translation.override(settings.LANGUAGE_CODE):
        if audience is not None and audience.computed_at is not None:
            initial["compensation_eligibility"] = ngettext(
                "The %(n)s person of the affected audience (step 3).",
                "The %(n)s people of the affected audience (step 3).",
                audience.affected_count) % {"n": f"{audience.affected_count:,}"}
        if assessment is not None and assessment.compensation_per_person:
            initial["compensation_kind"] = CompensationKind.COUPON
            initial["compensation_value"] = _("A coupon worth %(amount)s %(currency)s") % {
                "amount": assessment.compensation_per_person, "currency": assessment.currency}
        exposed = set(assessment.pii_fields if assessment else [])
        if incident.kind == Kind.DATA_BREACH or exposed & {PiiField.PASSWORD, PiiField.PAYMENT}:
            initial["subscriber_action_required"] = True
            initial["subscriber_actions"] = _(
                "Change your password, and turn on two-factor authentication.")
    return initial
