"""Pages of the learn step: the post-mortem, its follow-ups and lessons, the PDF export."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.forms import error_text, form_apply
from core.htmx import HtmxHttpRequest, wants_fragment
from incidents.learn import services
from incidents.learn.export import (
    export_runs_inline,
    postmortem_export_render,
    postmortem_export_request,
)
from incidents.learn.forms import FollowUpDoneForm, FollowUpForm, LessonForm, PostMortemForm
from incidents.learn.models import ExportStatus, FollowUpAction, PostMortemExport
from incidents.learn.selectors import (
    exports_for,
    follow_ups_for,
    playbook_lessons,
    postmortem_for,
    postmortem_initial,
)
from incidents.models import Incident
from incidents.permissions import can_work, get_incident_for_user


def _page(request: HtmxHttpRequest, incident: Incident, *, form: PostMortemForm | None = None,
          follow_up_form: FollowUpForm | None = None, lesson_form: LessonForm | None = None,
          status: int = 200) -> HttpResponse:
    saved = postmortem_for(incident=incident)
    if form is None:
        form = PostMortemForm(instance=saved or postmortem_initial(incident=incident))
    return render(request, "learn/postmortem.html", {
        "incident": incident, "postmortem": saved, "form": form,
        "follow_ups": follow_ups_for(incident=incident),
        "follow_up_form": follow_up_form or FollowUpForm(),
        "lessons": playbook_lessons(incident=incident),
        "lesson_form": lesson_form or LessonForm(),
        "exports": exports_for(incident=incident),
        "can_edit": can_work(request.user),
    }, status=status)


def _back(incident: Incident, anchor: str = "") -> HttpResponse:
    url = reverse("incidents:postmortem", args=[incident.pk])
    return redirect(f"{url}#{anchor}" if anchor else url)


def _apply(request: HtmxHttpRequest, incident: Incident, form, action, *, form_key: str,
           anchor: str = "", success: str = "") -> HttpResponse:
    """Validate, run one service; on a refusal the page again with the form as typed."""
    error = form_apply(form, action)
    if error:
        messages.error(request, error)
        return _page(request, incident, status=422, **{form_key: form})
    if success:
        messages.success(request, success)
    return _back(incident, anchor)


@login_required
@require_GET
def postmortem(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _page(request, get_incident_for_user(request.user, pk))


@login_required
@require_POST
def postmortem_save(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    form = PostMortemForm(request.POST, instance=postmortem_for(incident=incident)
                          or postmortem_initial(incident=incident))
    return _apply(request, incident, form, lambda data: services.postmortem_save(
        incident=incident, actor=request.user, **data), form_key="form",
        success=_("Post-mortem saved."))


@login_required
@require_POST
def postmortem_finish(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    try:
        services.postmortem_finish(incident=incident, actor=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, _("Post-mortem finished."))
    return _back(incident)


@login_required
@require_POST
def follow_up_add(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    form = FollowUpForm(request.POST)
    return _apply(request, incident, form, lambda data: services.follow_up_add(
        incident=incident, actor=request.user, **data), form_key="follow_up_form",
        anchor="follow-ups")


@login_required
@require_POST
def follow_up_done(request: HtmxHttpRequest, pk: int, follow_up_id: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    follow_up = get_object_or_404(FollowUpAction, pk=follow_up_id, incident=incident)
    error = form_apply(FollowUpDoneForm(request.POST), lambda data: services.follow_up_set_done(
        follow_up=follow_up, actor=request.user, done=data["done"]))
    if error:
        messages.error(request, error)
    return _back(incident, "follow-ups")


@login_required
@require_POST
def lesson_adopt(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = get_incident_for_user(request.user, pk, write=True)
    form = LessonForm(request.POST)
    return _apply(request, incident, form, lambda data: services.lesson_adopt(
        incident=incident, actor=request.user, **data), form_key="lesson_form",
        anchor="lessons",
        success=_("Added to the playbook for every future incident of this kind."))


# --- The PDF ---------------------------------------------------------------------------------

def _pdf_response(export: PostMortemExport) -> FileResponse:
    name = f"incident-{export.incident_id}-postmortem.pdf"
    return FileResponse(export.file.open("rb"), content_type="application/pdf",
                        filename=name, as_attachment=False)


@login_required
@require_POST
def postmortem_export(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Anyone who may see the incident may export it. Small incidents get the PDF in this
    answer; big ones go to a worker and this answers with the progress page."""
    incident = get_incident_for_user(request.user, pk)
    inline = export_runs_inline(incident=incident)
    export = postmortem_export_request(incident=incident, actor=request.user,
                                       in_background=not inline)
    if not inline:
        return redirect("incidents:postmortem-export-status", pk=pk, export_id=export.pk)
    try:
        export = postmortem_export_render(export_id=export.pk,
                                          language=translation.get_language())
    except Exception:  # recorded on the export (failed, with its error) and logged
        messages.error(request, _("The PDF could not be made; the error is kept with the "
                                  "export. Try again, or tell an administrator."))
        return _back(incident, "exports")
    return _pdf_response(export)


def _export_for(request: HtmxHttpRequest, pk: int, export_id: int) -> PostMortemExport:
    incident = get_incident_for_user(request.user, pk)
    return get_object_or_404(PostMortemExport.objects.select_related("requested_by"),
                             pk=export_id, incident=incident)


@login_required
@require_GET
def postmortem_export_status(request: HtmxHttpRequest, pk: int, export_id: int
                             ) -> HttpResponse:
    export = _export_for(request, pk, export_id)
    template = ("learn/export.html#progress" if wants_fragment(request)
                else "learn/export.html")
    return render(request, template, {"incident": export.incident, "export": export,
                                      "running": export.status in (ExportStatus.PENDING,
                                                                   ExportStatus.RENDERING)})


@login_required
@require_GET
def postmortem_export_download(request: HtmxHttpRequest, pk: int, export_id: int
                               ) -> HttpResponse:
    export = _export_for(request, pk, export_id)
    if export.status != ExportStatus.DONE:
        raise Http404(_("This PDF is not ready."))
    return _pdf_response(export)
