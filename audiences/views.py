from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.htmx import HtmxHttpRequest, wants_fragment

from . import selectors, services
from .forms import ImportForm

IMPORT_PERMISSION = "audiences.add_subscriber"


def _to_import(request: HtmxHttpRequest, audience_import) -> HttpResponse:
    url = reverse("audiences:import-detail", args=[audience_import.pk])
    if wants_fragment(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@login_required
@permission_required(IMPORT_PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_upload(request: HtmxHttpRequest) -> HttpResponse:
    """The request only stores the file and queues the import; the import page follows."""
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        audience_import = services.audience_import_queue(
            actor=request.user, kind=form.cleaned_data["kind"],
            upload=form.cleaned_data["file"], encoding=form.cleaned_data["encoding"],
            dry_run=request.POST.get("action") != "import",
            skip_bad_rows=form.cleaned_data["skip_bad_rows"], options=form.options())
        return _to_import(request, audience_import)
    template = "audiences/import.html"
    if wants_fragment(request):
        template += "#import-form"
    return render(request, template, {"form": form})


def _detail_context(audience_import) -> dict:
    result = selectors.audience_import_result(audience_import=audience_import)
    return {"audience_import": audience_import, "result": result,
            "progress": selectors.audience_import_progress(audience_import=audience_import),
            "can_confirm": selectors.audience_import_can_confirm(
                audience_import=audience_import, result=result)}


@login_required
@permission_required(IMPORT_PERMISSION, raise_exception=True)
@require_GET
def import_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Progress while the worker reads the file, then the result (htmx polls the status)."""
    audience_import = selectors.audience_import_get_for_user(user=request.user, pk=pk)
    template = "audiences/import_detail.html"
    if wants_fragment(request):
        template += "#import-status"
    return render(request, template, _detail_context(audience_import))


@login_required
@permission_required(IMPORT_PERMISSION, raise_exception=True)
@require_POST
def import_confirm(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Import for real the file a preview read."""
    preview = selectors.audience_import_get_for_user(user=request.user, pk=pk)
    try:
        audience_import = services.audience_import_confirm(actor=request.user, preview=preview)
    except ValidationError as exc:
        context = {**_detail_context(preview), "error": " ".join(exc.messages)}
        return render(request, "audiences/import_detail.html", context, status=409)
    return _to_import(request, audience_import)


@login_required
@permission_required(IMPORT_PERMISSION, raise_exception=True)
@require_GET
def import_report(request: HtmxHttpRequest, name: str) -> FileResponse:
    path = services.import_report_path(actor=request.user, name=name)
    if path is None:
        raise Http404
    return FileResponse(open(path, "rb"), as_attachment=True,  # noqa: SIM115
                        filename="import-errors.csv", content_type="text/csv")
