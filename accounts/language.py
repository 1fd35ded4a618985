"""The reader's language: chosen once, stored on the person, used on every page and email.

Until someone chooses, the browser's Accept-Language decides (Django's LocaleMiddleware).
The choice is copied into the session at sign-in, so pages read it without a query.
"""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import translation

from accounts.models import UserPreference

SESSION_KEY = "amends_language"
SUPPORTED = frozenset(code for code, _name in settings.LANGUAGES)


def chosen_language(user) -> str:
    """What the person chose ("" when nothing), remembered on the user object."""
    pref = getattr(user, "_amends_language", None)
    if pref is None:
        pref = (UserPreference.objects.filter(user=user)
                .values_list("language", flat=True).first() or "")
        user._amends_language = pref
    return pref


def user_language(user) -> str:
    """The language a person reads in; the site default when they have not chosen."""
    if user is None:
        return settings.LANGUAGE_CODE
    return chosen_language(user) or settings.LANGUAGE_CODE


def users_by_language(users) -> dict[str, list]:
    """People grouped by the language they read in (one query), so an email is rendered
    once per language. Each user also remembers it (user_language reads it free)."""
    users = list(users)
    chosen = dict(UserPreference.objects.filter(user__in=[u.pk for u in users])
                  .values_list("user_id", "language"))
    groups: dict[str, list] = {}
    for user in users:
        user._amends_language = chosen.get(user.pk, "")
        groups.setdefault(user._amends_language or settings.LANGUAGE_CODE, []).append(user)
    return groups


def language_choose(*, request, language: str) -> None:
    """Store the choice on the person (and session); anonymous visitors keep it in a cookie."""
    if language not in SUPPORTED:
        raise ValueError(language)
    if request.user.is_authenticated:
        UserPreference.objects.update_or_create(user=request.user,
                                                defaults={"language": language})
        request.user._amends_language = language
        request.session[SESSION_KEY] = language
    request.LANGUAGE_CODE = language


@receiver(user_logged_in, dispatch_uid="accounts-language-on-login")
def _language_into_session(sender, request, user, **kwargs) -> None:
    if request is None:
        return
    chosen = chosen_language(user)
    if chosen:
        request.session[SESSION_KEY] = chosen
    else:
        request.session.pop(SESSION_KEY, None)


class UserLanguageMiddleware:
    """After authentication: a signed-in person's stored choice beats Accept-Language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        chosen = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        if chosen not in SUPPORTED or getattr(request, "user", None) is None \
                or not request.user.is_authenticated:
            return self.get_response(request)
        request.LANGUAGE_CODE = chosen
        # Only for this request: the thread's language is put back afterwards.
        with translation.override(chosen):
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", chosen)
        return response


def emails_by_language(users) -> dict[str, list[str]]:
    """Active people's addresses grouped by the language each reads (one query), for
    notices written once per language."""
    people = [u for u in users if u.is_active and u.email]
    return {language: sorted({u.email for u in group})
            for language, group in sorted(users_by_language(people).items())}
