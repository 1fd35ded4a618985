"""Step 5, the apology composer: edit, live checks and a sandboxed preview per language."""

import hashlib
import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.htmx import HtmxHttpRequest, wants_fragment
from incidents.apology.forms import ApologyForm
from incidents.apology.lint import APOLOGY_MERGE_FIELDS, KNOWN_MERGE_FIELDS, apology_lint
from incidents.apology.models import Apology
from incidents.apology.selectors import (
    apology_audience_check,
    apology_draft,
    apology_locale_for,
    apology_plan,
    apology_render,
    sample_merge_data,
)
from incidents.apology.services import apology_save
from incidents.models import Incident
from incidents.permissions import can_work, get_incident_for_user
from messaging.rendering import EMAIL_PREVIEW_POLICY

MERGE_TAGS_SHOWN = [*sorted(KNOWN_MERGE_FIELDS), *sorted(APOLOGY_MERGE_FIELDS)]


def _draft_key(incident: Incident) -> str:
    return f"apology-draft:{incident.pk}"


def _preview_url(incident: Incident, locale: str, draft: dict | None) -> str:
    query = {"locale": locale}
    if draft is not None:
        # A new address for every new draft makes the browser reload the frame.
        digest = hashlib.sha256(json.dumps(draft, sort_keys=True).encode()).hexdigest()
        query.update({"draft": "1", "v": digest[:16]})
    return f"{reverse('incidents:apology-preview', args=[incident.pk])}?{urlencode(query)}"


def _context(request: HtmxHttpRequest, incident: Incident, form: ApologyForm,
             apology: Apology, *, draft: dict | None = None) -> dict:
    findings = form.error_findings() if form.is_bound else []
    findings += apology_lint(apology=apology, incident=incident,
                             audience=apology_audience_check(incident=incident),
                             plan=apology_plan(incident=incident))
    preview_locale = form.preview_locale_value() if form.is_bound else apology.default_locale
    languages = dict(settings.LANGUAGES)
    shown = apology_locale_for(apology=apology, locale=preview_locale)
    editable = can_work(request.user) and incident.is_open
    if not editable:
        for field in form.fields.values():
            field.disabled = True
    return {
        "incident": incident, "form": form, "apology": apology, "findings": findings,
        "errors": sum(f.is_error for f in findings),
        "warnings": sum(not f.is_error for f in findings),
        "editable": editable, "preview_locale": preview_locale,
        "preview_language": languages.get(preview_locale, preview_locale),
        "shown_language": languages.get(shown, shown), "falls_back": shown != preview_locale,
        "preview_url": _preview_url(incident, preview_locale, draft),
        "sample": sample_merge_data(incident, preview_locale),
        "merge_tags": ", ".join("{{ " + name + " }}" for name in MERGE_TAGS_SHOWN),
    }


def _add_service_errors(form: ApologyForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


@login_required
@require_http_methods(["GET", "POST"])
def apology_compose(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=request.method == "POST")
    saved = apology_draft(incident=incident)
    if request.method == "POST":
        form = ApologyForm(request.POST, incident=incident)
        if form.is_valid():
            try:
                apology = apology_save(incident=incident, actor=request.user,
                                       **form.content())
            except ValidationError as exc:
                _add_service_errors(form, exc)
            else:
                request.session.pop(_draft_key(incident), None)
                messages.success(request, _("Apology saved (version %(version)s).")
                                 % {"version": apology.version})
                return redirect("incidents:apology-compose", pk=incident.pk)
        context = _context(request, incident, form, form.draft())
        return render(request, "incidents/apology.html", context, status=422)
    form = ApologyForm(initial=ApologyForm.initial_for(saved), incident=incident)
    template = "incidents/apology.html#composer" if wants_fragment(request) \
        else "incidents/apology.html"
    return render(request, template, _context(request, incident, form, saved))


@login_required
@require_POST
def apology_check(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Lint and preview what is typed, without saving it (htmx, on every pause in typing).

    Without JavaScript the "Check and preview" button posts here and gets the whole page.
    """
    incident = get_incident_for_user(request.user, pk, write=True)
    form = ApologyForm(request.POST, incident=incident)
    form.is_valid()
    draft = {name: request.POST.get(name, "") for name in form.fields}
    # The preview frame loads by GET, so it reads the typed draft from the session.
    request.session[_draft_key(incident)] = draft
    context = _context(request, incident, form, form.draft(), draft=draft)
    template = "incidents/apology.html#checks" if wants_fragment(request) \
        else "incidents/apology.html"
    return render(request, template, context)


@login_required
@require_GET
@xframe_options_sameorigin
def apology_preview(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The rendered email alone, for the composer's sandboxed frame."""
    incident = get_incident_for_user(request.user, pk)
    locale = request.GET.get("locale", "")
    if locale not in dict(settings.LANGUAGES):
        locale = settings.LANGUAGE_CODE
    draft = request.session.get(_draft_key(incident)) if request.GET.get("draft") else None
    if draft is not None and can_work(request.user):
        form = ApologyForm(draft, incident=incident)
        form.is_valid()
        apology = form.draft()
    else:
        apology = apology_draft(incident=incident)
    email = apology_render(apology=apology, locale=locale,
                           merge_data=sample_merge_data(incident, locale))
    response = HttpResponse(email.html)
    response["Content-Security-Policy"] = EMAIL_PREVIEW_POLICY
    response["Cache-Control"] = "no-store"
    return response
