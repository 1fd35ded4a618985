"""The outgoing package a signature covers, and its digest.

A sign-off approves what subscribers will get, not only the plan: the current plan
version, the apology's content (subject, every locale's body, sender, reply-to, coupon,
compensation, protective steps), the brand template it is wrapped in, and the affected
audience's definition (campaigns, segments) and count. `package_snapshot` reads all of it
from the database; `package_digest` is a SHA-256 of its canonical JSON. Each SignOff stores
both, so the send guard can compare digests and a signer can read what changed since the
package they signed.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from incidents.apology.models import Apology
from incidents.assessment.models import AffectedAudience
from incidents.models import Incident
from incidents.plan.diff import PLAN_FIELDS, FieldDiff, diff_lines
from incidents.plan.models import CompensationKind, PlanVersion

PACKAGE_FORMAT = 1
APOLOGY_FIELDS = ("subject", "from_name", "from_email", "reply_to", "default_locale",
                  "bodies", "coupon_code", "compensation_text", "protective_steps")
BRAND_FIELDS = ("name", "brand_name", "logo_url", "primary_color", "text_color",
                "footer_text", "unsubscribe_url", "postal_address")
# Shown to the signer but not part of what is signed (a campaign renamed in the ESP
# changes nobody's email).
DISPLAY_ONLY = "names"


@dataclass(frozen=True)
class PackageParts:
    """The rows the package is made of, read once (the guard reuses them)."""

    plan: PlanVersion | None
    apology: Apology | None
    audience: AffectedAudience | None


def package_parts(*, incident: Incident) -> PackageParts:
    """Three queries, plus two for the audience's campaigns and segments."""
    return PackageParts(
        plan=PlanVersion.objects.filter(incident_id=incident.pk).order_by("-number").first(),
        apology=(Apology.objects.select_related("brand_template")
                 .filter(incident_id=incident.pk).first()),
        audience=(AffectedAudience.objects.filter(incident_id=incident.pk,
                                                  computed_at__isnull=False)
                  .prefetch_related("campaigns", "segments").first()))


def package_snapshot(*, incident: Incident | None = None,
                     parts: PackageParts | None = None) -> dict[str, Any]:
    """Everything that goes out, as plain JSON."""
    if parts is None:
        parts = package_parts(incident=incident)
    plan, apology, audience = parts.plan, parts.apology, parts.audience
    snapshot: dict[str, Any] = {"format": PACKAGE_FORMAT, "plan": None, "apology": None,
                                "audience": None}
    if plan is not None:
        snapshot["plan"] = {"number": plan.number, "id": plan.pk,
                            **{name: getattr(plan, name) for name, _label in PLAN_FIELDS}}
    if apology is not None:
        brand = apology.brand_template
        snapshot["apology"] = {
            **{name: getattr(apology, name) for name in APOLOGY_FIELDS},
            "version": apology.version,
            "brand_template": None if brand is None else {
                "id": brand.pk, **{name: getattr(brand, name) for name in BRAND_FIELDS}},
        }
    if audience is not None:
        campaigns = sorted(audience.campaigns.all(), key=lambda c: c.pk)
        segments = sorted(audience.segments.all(), key=lambda s: s.pk)
        snapshot["audience"] = {
            "campaigns": [c.pk for c in campaigns], "segments": [s.pk for s in segments],
            "count": audience.affected_count,
            DISPLAY_ONLY: {"campaigns": [c.name for c in campaigns],
                           "segments": [s.name for s in segments]},
        }
    return snapshot


def package_digest(snapshot: dict[str, Any]) -> str:
    signed = json.loads(json.dumps(snapshot))
    if signed.get("audience"):
        signed["audience"].pop(DISPLAY_ONLY, None)
    if signed.get("apology"):
        # The version counter moves with every save; the content is what is signed.
        signed["apology"].pop("version", None)
    canonical = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def package_current(*, incident: Incident | None = None, parts: PackageParts | None = None
                    ) -> tuple[dict[str, Any], str]:
    snapshot = package_snapshot(incident=incident, parts=parts)
    return snapshot, package_digest(snapshot)


# --- Reading a package and what changed ------------------------------------------------------

def _plan_lines(name: str, value: Any) -> list[str]:
    if name == "subscriber_action_required":
        return [_("Yes") if value else _("No")]
    if name == "compensation_kind":
        return [str(CompensationKind(value).label)] if value in CompensationKind.values \
            else [str(value)]
    if name == "follow_ups":
        return [_("%(action)s — %(owner)s — due %(due)s") % {
            "action": f.get("action", ""), "owner": f.get("owner_name", ""),
            "due": f.get("due", "")} for f in value or []]
    return str(value or "").splitlines()


def package_sections(snapshot: dict[str, Any] | None) -> list[tuple[str, str, list[str]]]:
    """(key, label, lines) in reading order: plan, apology, audience."""
    snapshot = snapshot or {}
    out: list[tuple[str, str, list[str]]] = []
    plan = snapshot.get("plan") or {}
    out.append(("plan.number", _("Plan version"), [str(plan["number"])] if plan else []))
    for name, label in PLAN_FIELDS:
        out.append((f"plan.{name}", _("Plan: %(field)s") % {"field": label},
                    _plan_lines(name, plan.get(name)) if plan else []))
    apology = snapshot.get("apology") or {}
    languages = dict(settings.LANGUAGES)

    def line(value: Any) -> list[str]:
        return str(value or "").splitlines()

    sender = ""
    if apology:
        sender = f"{apology.get('from_name', '')} <{apology.get('from_email', '')}>".strip()
    out += [
        ("apology.subject", _("Email: subject"), line(apology.get("subject"))),
        ("apology.sender", _("Email: sender"), [sender] if sender else []),
        ("apology.reply_to", _("Email: reply-to"), line(apology.get("reply_to"))),
        ("apology.default_locale", _("Email: default language"),
         [str(languages.get(apology["default_locale"], apology["default_locale"]))]
         if apology.get("default_locale") else []),
    ]
    bodies = apology.get("bodies") or {}
    for locale in sorted(bodies):
        out.append((f"apology.body.{locale}", _("Email: body (%(language)s)") % {
            "language": languages.get(locale, locale)}, line(bodies.get(locale))))
    out += [
        ("apology.coupon_code", _("Email: coupon code"), line(apology.get("coupon_code"))),
        ("apology.compensation_text", _("Email: compensation"),
         line(apology.get("compensation_text"))),
        ("apology.protective_steps", _("Email: steps to protect yourself"),
         line(apology.get("protective_steps"))),
    ]
    brand = apology.get("brand_template") or {}
    out.append(("apology.brand_template", _("Email: brand template"),
                [f"{name}: {brand.get(name, '')}" for name in BRAND_FIELDS] if brand else []))
    audience = snapshot.get("audience") or {}
    names = audience.get(DISPLAY_ONLY, {})
    out += [
        ("audience.campaigns", _("Audience: faulty campaigns"),
         list(names.get("campaigns", audience.get("campaigns", [])))),
        ("audience.segments", _("Audience: segments"),
         list(names.get("segments", [])) or ([_("every segment the campaigns hit")]
                                             if audience else [])),
        ("audience.count", _("Audience: people who get the apology"),
         [str(audience["count"])] if audience else []),
    ]
    return out


def package_diff(*, old: dict[str, Any] | None, new: dict[str, Any]) -> list[FieldDiff]:
    """Line by line, per part of the package (every part listed, changed or not)."""
    before = {key: (label, lines) for key, label, lines in package_sections(old)}
    now = package_sections(new)
    keys = {key for key, _label, _lines in now}
    # A body removed in the new package still shows, as deleted lines.
    now += [(key, label, []) for key, (label, _lines) in before.items() if key not in keys]
    result = []
    for key, label, lines in now:
        previous = before.get(key, ("", []))[1]
        if previous == lines:
            result.append(FieldDiff(key, label, False, [("same", t) for t in lines]))
            continue
        result.append(FieldDiff(key, label, True, diff_lines(previous, lines)))
    return result


def package_changes(*, old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """The labels of the parts that differ, for reasons and notices."""
    return [d.label for d in package_diff(old=old, new=new) if d.changed]
