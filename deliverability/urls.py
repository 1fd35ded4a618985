"""Webhook URLs, mounted at /webhooks/ by config/urls.py.

`anymail_urlpatterns` are anymail's own routes (same paths and names, namespace
"anymail": e.g. /webhooks/sendgrid/tracking/ is "anymail:sendgrid_tracking_webhook"),
each view rebuilt from our hardened subclass (deliverability/webhooks/) and wrapped by
accept_events. `urlpatterns` holds the sandbox ESP's endpoint.
"""

from anymail import urls as anymail_urls
from django.urls import path
from django.urls.resolvers import URLPattern

from .views import accept_events, sandbox_tracking
from .webhooks import hardened_view

app_name = "deliverability"

anymail_urlpatterns = [
    URLPattern(p.pattern, accept_events(hardened_view(p.callback)), p.default_args, p.name)
    for p in anymail_urls.urlpatterns
]

urlpatterns = [
    path("sandbox/tracking/", sandbox_tracking, name="sandbox-tracking"),
]
