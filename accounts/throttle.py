"""Sign-in throttling that protects without letting anyone lock a colleague out.

django-axes counts failures per (username, client IP) pair: five wrong passwords lock that
pair for the cool-off, a success clears only its own pair, and the same person signs in
from another address meanwhile (so nobody can keep legal or security out during a breach
by guessing their password). On top of that, one address that fails for many different
usernames (password spraying) is locked as a whole; a success from it clears nothing.

Behind a reverse proxy, the client address comes from the header named in
AMENDS_CLIENT_IP_HEADER only (e.g. HTTP_X_FORWARDED_FOR), taking the entry added by the
outermost of AMENDS_TRUSTED_PROXY_COUNT trusted proxies; without that setting the header
is ignored, since anyone can send it.
"""

from datetime import timedelta

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the configured trusted proxy header."""
    header = settings.AMENDS_CLIENT_IP_HEADER
    if header and request.META.get(header):
        hops = [h.strip() for h in request.META[header].split(",") if h.strip()]
        # Each trusted proxy appends the address it saw; entries left of those may be forged.
        count = settings.AMENDS_TRUSTED_PROXY_COUNT
        if hops:
            return hops[-count] if len(hops) >= count else hops[0]
    return request.META.get("REMOTE_ADDR", "")


def address_is_spraying(ip: str, username: str = "") -> bool:
    """Has this address failed for too many different usernames within the cool-off?"""
    since = timezone.now() - timedelta(hours=settings.AXES_COOLOFF_TIME)
    others = (AccessAttempt.objects.filter(ip_address=ip, attempt_time__gte=since,
                                           failures_since_start__gt=0)
              .exclude(username=username).values("username").distinct().count())
    return others >= settings.AMENDS_LOGIN_IP_USERNAME_LIMIT


class ThrottleBackend(AxesStandaloneBackend):
    """Axes' per-pair check, plus the lock of an address guessing many usernames."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs):
        if request is not None and address_is_spraying(client_ip(request), username or ""):
            request.axes_locked_out = True
            raise AxesBackendPermissionDenied("this address failed for many usernames")
        return super().authenticate(request, username=username, password=password, **kwargs)
