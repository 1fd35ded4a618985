from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = _("Incidents")

    def ready(self) -> None:
        # Step 2: campaign stop outcomes land on the incident timeline (messaging signals,
        # incidents listens; messaging never imports incidents).
        from messaging.signals import campaign_stop_settled

        from .containment import stop_settled_on_timeline

        campaign_stop_settled.connect(stop_settled_on_timeline,
                                      dispatch_uid="incidents.containment.timeline")
        # Issue 4, send: the receiver that writes "the apology finished sending".
        from . import apology_send  # noqa: F401
