"""Reads for the apology: the draft to show, a sample recipient, the rendered preview."""

from dataclasses import dataclass

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from incidents.apology.lint import (
    PROTECTIVE_STEPS_DEFAULT,
    AudienceCheck,
    Finding,
    apology_lint,
    lint_blocks_sending,
)
from incidents.apology.models import Apology
from incidents.assessment.models import AffectedAudience
from incidents.models import Incident, Kind
from incidents.plan.models import PlanVersion
from messaging.rendering import RenderedEmail, render_branded_email
from messaging.selectors import brand_template_default


def apology_for_incident(*, incident: Incident) -> Apology | None:
    return Apology.objects.select_related("brand_template", "updated_by").filter(
        incident=incident).first()


def apology_initial(*, incident: Incident) -> Apology:
    """An unsaved first draft with sensible defaults (the brand, a plain subject)."""
    brand = brand_template_default()
    breach = incident.kind == Kind.DATA_BREACH or incident.pii_exposed
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Notice of data breach") if breach else _("We made a mistake")
    # The signed plan carries forward: what subscribers are told opens the body, what they
    # must do are the protective steps, the compensation is the offer.
    plan = incident.plan_versions.order_by("-number").first()
    body = plan.subscriber_message if plan else ""
    steps = (plan.subscriber_actions if plan and plan.subscriber_action_required else "")
    return Apology(
        incident=incident, subject=subject, brand_template=brand,
        from_name=brand.brand_name if brand else "", default_locale=settings.LANGUAGE_CODE,
        bodies={settings.LANGUAGE_CODE: body} if body else {},
        protective_steps=steps or (PROTECTIVE_STEPS_DEFAULT if breach else ""),
        compensation_text=plan.compensation_value if plan else "",
        version=0,
    )


def apology_draft(*, incident: Incident) -> Apology:
    return apology_for_incident(incident=incident) or apology_initial(incident=incident)


def apology_audience_check(*, incident: Incident) -> AudienceCheck | None:
    """What is known about the apology's audience; None until it has been computed.

    The materialised affected audience (incidents.AffectedRecipient): computed or not, and
    how many people have no exclusion reason. A send can only use this audience.
    """
    audience = (AffectedAudience.objects.filter(incident=incident)
                .only("computed_at", "affected_count").first())
    if audience is None or audience.computed_at is None:
        return None
    # The count stored by the computation; apology_send_start checks that the ledger it
    # materialises from this incident's snapshot has exactly that many people.
    return AudienceCheck(computed=True, affected_count=audience.affected_count,
                         matches_incident=True)


SAMPLE_PEOPLE = {
    "en": ("Alex", "Morgan"), "nl": ("Sanne", "de Vries"), "pl": ("Anna", "Kowalska"),
    "id": ("Siti", "Rahayu"), "ar": ("ليلى", "حداد"), "he": ("נועה", "כהן"),
}


def sample_merge_data(incident: Incident, locale: str) -> dict[str, str]:
    """Merge data of the person the preview is addressed to.

    For now a fixed sample person per language. Once the affected audience exists
    (incidents.AffectedRecipient), this should pick a real affected recipient in that
    locale (falling back to any affected recipient), so the preview shows real data.
    """
    first, last = SAMPLE_PEOPLE.get(locale, SAMPLE_PEOPLE["en"])
    return {"first_name": first, "last_name": last,
            "email": f"sample.{incident.pk or 0}@example.com",
            "unsubscribe_url": "https://example.com/unsubscribe/sample"}


def apology_compose_body(*, apology: Apology, locale: str) -> str:
    """The body for one locale plus the compensation and protective-steps blocks."""
    parts = [apology.body_for(locale).strip()]
    with translation.override(locale):
        if apology.coupon_code.strip():
            parts.append(_("**%(value)s**: use the code **{{ coupon_code }}** at checkout.")
                         % {"value": apology.compensation_text.strip()})
        elif apology.compensation_text.strip():
            parts.append(f"**{apology.compensation_text.strip()}**")
    if apology.protective_steps.strip():
        parts.append(apology.protective_steps.strip())
    return "\n\n".join(p for p in parts if p)


def apology_locale_for(*, apology: Apology, locale: str) -> str:
    """The locale a recipient really gets: theirs if it has a body, else the default."""
    return locale if (apology.bodies or {}).get(locale, "").strip() else apology.default_locale


def apology_render(*, apology: Apology, locale: str, merge_data: dict) -> RenderedEmail:
    """The apology as one recipient sees it. The sending side calls this per recipient
    (or once per locale with the ESP's own merge syntax)."""
    locale = apology_locale_for(apology=apology, locale=locale)
    return render_branded_email(
        template=apology.brand_template, subject=apology.subject,
        body_markdown_or_text=apology_compose_body(apology=apology, locale=locale),
        merge_data={**merge_data, "coupon_code": apology.coupon_code.strip() or None},
        locale=locale)


@dataclass(frozen=True)
class ApologySummary:
    apology: Apology | None
    findings: list[Finding]

    @property
    def errors(self) -> int:
        return sum(f.is_error for f in self.findings)

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors

    @property
    def blocks_sending(self) -> bool:
        return lint_blocks_sending(self.findings)


def apology_plan(*, incident: Incident) -> PlanVersion | None:
    """The current plan version, which the email must agree with (the linter's plan rules)."""
    return PlanVersion.objects.filter(incident_id=incident.pk).order_by("-number").first()


def apology_summary(*, incident: Incident) -> ApologySummary:
    """For the war room's step-5 card: three queries, no rendering."""
    apology = Apology.objects.filter(incident=incident).first()
    if apology is None:
        return ApologySummary(apology=None, findings=[])
    return ApologySummary(apology=apology, findings=apology_lint(
        apology=apology, incident=incident,
        audience=apology_audience_check(incident=incident),
        plan=apology_plan(incident=incident)))
