from django.contrib.auth.decorators import login_required, permission_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from core.htmx import HtmxHttpRequest, wants_fragment

from . import services
from .forms import ImportForm

IMPORT_PERMISSION = "audiences.add_subscriber"


@login_required
@permission_required(IMPORT_PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_upload(request: HtmxHttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    outcome = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        with upload.open("rb") as fileobj:
            outcome = services.audience_file_import(
                actor=request.user, kind=form.cleaned_data["kind"], fileobj=fileobj,
                encoding=form.cleaned_data["encoding"],
                dry_run=request.POST.get("action") != "import",
                skip_bad_rows=form.cleaned_data["skip_bad_rows"], options=form.options())
    context = {"form": form, "outcome": outcome, "result": outcome and outcome.result}
    if wants_fragment(request):
        return render(request, "audiences/import.html#import-result", context)
    return render(request, "audiences/import.html", context)


@login_required
@permission_required(IMPORT_PERMISSION, raise_exception=True)
@require_GET
def import_report(request: HtmxHttpRequest, name: str) -> FileResponse:
    path = services.import_report_path(actor=request.user, name=name)
    if path is None:
        raise Http404
    return FileResponse(open(path, "rb"), as_attachment=True,  # noqa: SIM115
                        filename="import-errors.csv", content_type="text/csv")
