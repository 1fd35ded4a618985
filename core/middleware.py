from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# Pages need no inline script: htmx and our own JS are static files. Styles allow inline
# for server-rendered SVG charts, which carry their own <style> element.
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response


class HealthCheckMiddleware:
    """`/healthz` for container health checks: answered first, before the host check and
    the HTTPS redirect (a probe inside the container speaks plain HTTP to 127.0.0.1), and
    only "ok" when the database answers."""

    PATH = "/healthz"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path != self.PATH:
            return self.get_response(request)
        from django.db import DatabaseError, connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            return HttpResponse("database unavailable\n", status=503,
                                content_type="text/plain")
        return HttpResponse("ok\n", content_type="text/plain",
                            headers={"Cache-Control": "no-store"})
