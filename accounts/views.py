from django.conf import settings
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.language import SUPPORTED, language_choose


@require_POST
def language_set(request):
    """The header's language switcher: store the choice and go back where the person was."""
    language = request.POST.get("language", "")
    if language not in SUPPORTED:
        return HttpResponseBadRequest(
            _("Unknown language %(code)r: choose one of %(codes)s.")
            % {"code": language, "codes": ", ".join(sorted(SUPPORTED))})
    language_choose(request=request, language=language)
    target = request.POST.get("next") or request.headers.get("Referer") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "/"
    response = HttpResponseRedirect(target)
    # Anonymous pages (sign-in) follow the cookie; Django's LocaleMiddleware reads it.
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language,
                        max_age=365 * 24 * 3600, samesite="Lax",
                        secure=request.is_secure(), httponly=True)
    return response
