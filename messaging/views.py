"""Brand templates: the organisation's usual email look, kept by marketing and admins; and
the public unsubscribe page every apology links to."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audiences.services import subscriber_unsubscribe
from core.htmx import HtmxHttpRequest, wants_fragment

from . import selectors, services
from .broadcasts import unsubscribe_token_check
from .forms import BrandTemplateForm
from .models import BrandTemplate
from .rendering import EMAIL_PREVIEW_POLICY, render_branded_email

SAMPLE_BODY = _(
    "Dear {{ first_name }},\n\n"
    "This is how your emails look with this template. Paragraphs, **bold words** and "
    "links such as https://example.com are styled in your colours.\n\n"
    "- A list item\n- Another list item\n\n"
    "Kind regards,\nThe team")


@login_required
@require_GET
@permission_required("messaging.view_brandtemplate", raise_exception=True)
def brand_list(request: HtmxHttpRequest) -> HttpResponse:
    context = {"templates": selectors.brand_template_list(),
               "can_change": request.user.has_perm("messaging.change_brandtemplate"),
               "can_add": request.user.has_perm("messaging.add_brandtemplate")}
    template = "messaging/brand_list.html#brand-table" if wants_fragment(request) \
        else "messaging/brand_list.html"
    return render(request, template, context)


def _save(request: HtmxHttpRequest, instance: BrandTemplate | None) -> HttpResponse:
    form = BrandTemplateForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.brand_template_save(
                template=instance, **{name: form.cleaned_data[name] for name in form.fields})
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Brand template “%(name)s” saved.") % {
                "name": saved.name})
            return redirect("messaging:brand-edit", pk=saved.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "messaging/brand_form.html",
                  {"form": form, "template": instance}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("messaging.add_brandtemplate", raise_exception=True)
def brand_create(request: HtmxHttpRequest) -> HttpResponse:
    return _save(request, None)


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("messaging.change_brandtemplate", raise_exception=True)
def brand_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _save(request, get_object_or_404(BrandTemplate, pk=pk))


@login_required
@require_POST
@permission_required("messaging.change_brandtemplate", raise_exception=True)
def brand_set_default(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(BrandTemplate, pk=pk)
    services.brand_template_set_default(template=template)
    if wants_fragment(request):
        return render(request, "messaging/brand_list.html#brand-table", {
            "templates": selectors.brand_template_list(), "can_change": True})
    messages.success(request, _("“%(name)s” is now the default brand template.") % {
        "name": template.name})
    return redirect("messaging:brand-list")


@login_required
@require_GET
@permission_required("messaging.view_brandtemplate", raise_exception=True)
@xframe_options_sameorigin
def brand_preview(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(BrandTemplate, pk=pk)
    email = render_branded_email(
        template=template, subject=_("A sample email"), body_markdown_or_text=str(SAMPLE_BODY),
        merge_data={"first_name": "Alex", "unsubscribe_url": "https://example.com/unsubscribe"},
        locale=request.LANGUAGE_CODE)
    response = HttpResponse(email.html)
    response["Content-Security-Policy"] = EMAIL_PREVIEW_POLICY
    response["Cache-Control"] = "no-store"
    return response


# --- Unsubscribe (public: the link in every apology) ----------------------------------------

@csrf_exempt  # the MAC in the link is the credential; mailbox providers POST without a token
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HtmxHttpRequest, token: str) -> HttpResponse:
    """GET asks (a link scanner following the URL changes nothing); POST unsubscribes:
    the page's button, or RFC 8058 one-click (`List-Unsubscribe=One-Click`) from the
    mailbox provider. Shown in the subscriber's language; no login."""
    subscriber = selectors.unsubscribe_subscriber(
        subscriber_id=unsubscribe_token_check(token))
    if subscriber is None:
        response = render(request, "messaging/unsubscribe.html", {"invalid": True}, status=404)
    else:
        with translation.override(selectors.subscriber_language(subscriber)):
            if request.method == "POST":
                one_click = request.POST.get("List-Unsubscribe") == "One-Click"
                subscriber_unsubscribe(subscriber_id=subscriber.pk,
                                       source="one-click" if one_click else "unsubscribe page")
                if not one_click:
                    return redirect(request.path)  # a reload must not post again
                subscriber.refresh_from_db()
            response = render(request, "messaging/unsubscribe.html", {
                "subscriber": subscriber,
                # <bdi>: the address keeps its own direction in a right-to-left sentence.
                "address": format_html("<bdi>{}</bdi>",
                                       selectors.masked_address(subscriber.email)),
                "done": subscriber.unsubscribed_at is not None
                or subscriber.status != "active",
                "brand": selectors.default_brand_name()})
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
