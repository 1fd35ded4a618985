from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = _("Incidents")

    def ready(self) -> None:
        # Issue 4, send: the receiver that writes "the apology finished sending".
        from . import apology_send  # noqa: F401
