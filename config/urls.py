from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from deliverability.urls import anymail_urlpatterns
from messaging.views import unsubscribe

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="incidents:incident-list"), name="home"),
    path("accounts/", include("accounts.urls")),
    path("incidents/", include("incidents.urls")),
    path("audiences/", include("audiences.urls")),
    path("messaging/", include("messaging.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("unsubscribe/<str:token>/", unsubscribe, name="unsubscribe"),
    path("admin/", admin.site.urls),
    path("webhooks/", include((anymail_urlpatterns, "anymail"))),
    path("webhooks/", include("deliverability.urls")),
]
