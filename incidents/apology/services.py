"""Writes to an incident's apology. Each change is one TimelineEvent, same transaction."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from incidents.apology.models import Apology
from incidents.models import EventKind, Incident
from incidents.plan.signoff import signoffs_void_for_change
from incidents.timeline import actor_name, joined, label, labels, said, timeline_record, who
from messaging.models import BrandTemplate

User = AbstractBaseUser

CONTENT_FIELDS = ("subject", "from_name", "from_email", "reply_to", "brand_template",
                  "default_locale", "bodies", "coupon_code", "compensation_text",
                  "protective_steps")


def _clean_bodies(bodies: dict[str, str]) -> dict[str, str]:
    known = dict(settings.LANGUAGES)
    cleaned = {}
    for locale, body in bodies.items():
        if locale not in known:
            raise ValidationError({"bodies": _("Unknown language “%(locale)s”.")
                                   % {"locale": locale}})
        if not isinstance(body, str):
            raise ValidationError({"bodies": _("The %(language)s body must be text.")
                                   % {"language": known[locale]}})
        body = body.replace("\r\n", "\n").strip()
        if body:
            cleaned[locale] = body
    return cleaned


@transaction.atomic
def apology_save(*, incident: Incident, actor: User, subject: str, from_name: str,
                 from_email: str, reply_to: str, brand_template: BrandTemplate | None,
                 default_locale: str, bodies: dict[str, str], coupon_code: str = "",
                 compensation_text: str = "", protective_steps: str = "",
                 expected_version: int | None = None) -> Apology:
    """Create or change the incident's apology; bumps its version when content changes.

    `expected_version` (0 for "there was none") guards against overwriting a colleague's
    edit made since the form was loaded. Lint findings never block saving a draft.
    """
    # The incident row lock serialises writers, so two first saves cannot both create.
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.closed_at is not None:
        raise ValidationError(_("The incident is closed; reopen it to change the apology."))
    if default_locale not in dict(settings.LANGUAGES):
        raise ValidationError({"default_locale": _("Unknown language “%(locale)s”.")
                               % {"locale": default_locale}})
    apology = Apology.objects.filter(incident=incident).first()
    current = apology.version if apology else 0
    if expected_version is not None and expected_version != current:
        editor = actor_name(apology.updated_by) if apology else _("someone")
        raise ValidationError(_(
            "%(who)s changed the apology while you were editing (now version %(version)s). "
            "Reload the page to see their changes, then make yours again.") % {
                "who": editor, "version": current})
    values: dict[str, Any] = {
        "subject": " ".join(subject.split()), "from_name": from_name.strip(),
        "from_email": from_email.strip().lower(), "reply_to": reply_to.strip().lower(),
        "brand_template": brand_template, "default_locale": default_locale,
        "bodies": _clean_bodies(bodies), "coupon_code": coupon_code.strip(),
        "compensation_text": compensation_text.strip(),
        "protective_steps": protective_steps.replace("\r\n", "\n").strip(),
    }
    if values["coupon_code"] and not values["compensation_text"]:
        raise ValidationError({"compensation_text": _(
            "Say what the coupon %(code)s is worth, e.g. “20%% off your next order”.")
            % {"code": values["coupon_code"]}})
    created = apology is None
    if created:
        apology = Apology(incident=incident, version=1)
        changed = [name for name in CONTENT_FIELDS if values[name] not in ("", None, {})]
    else:
        changed = [name for name in CONTENT_FIELDS if getattr(apology, name) != values[name]]
        if not changed:
            return apology
        apology.version += 1
    old_bodies = apology.bodies if isinstance(apology.bodies, dict) else {}
    body_locales = sorted(loc for loc in set(old_bodies) | set(values["bodies"])
                          if old_bodies.get(loc) != values["bodies"].get(loc))
    for name, value in values.items():
        setattr(apology, name, value)
    apology.updated_at = timezone.now()
    apology.updated_by = actor
    apology.full_clean(exclude=["incident"])
    if created:
        apology.save()
    else:
        apology.save(update_fields=[*CONTENT_FIELDS, "version", "updated_at", "updated_by"])
    fields = joined([_field_label(name, body_locales) for name in changed])
    if created:
        message = said("%(who)s started the apology email (version 1).", who=who(actor))
    else:
        message = said("%(who)s edited the apology email (version %(version)s): "
                       "%(fields)s.", who=who(actor), version=apology.version, fields=fields)
    timeline_record(incident=incident, actor=actor, kind=EventKind.UPDATED,
                    message=message,
                    data={"apology": apology.pk, "version": apology.version,
                          "fields": changed, "body_locales": body_locales})
    change = said("The apology email changed (version %(version)s: %(fields)s)",
                  version=apology.version, fields=fields)
    # A signature covers the email too: any change voids it (and pauses a send under way).
    signoffs_void_for_change(incident=incident, actor=actor, change=change,
                             why=f"apology edited to version {apology.version}")
    return apology


def _field_label(name: str, body_locales: list[str]):
    if name == "bodies":
        languages = dict(settings.LANGUAGES)
        return said("body (%(languages)s)",
                    languages=labels(languages.get(loc, loc) for loc in body_locales))
    return label(Apology._meta.get_field(name).verbose_name)
