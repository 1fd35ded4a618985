from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = _("Incidents")

    def ready(self) -> None:
        # Step 2: campaign stop outcomes land on the incident timeline (messaging signals,
        # incidents listens; messaging never imports incidents).
        from incidents.containment.services import stop_settled_on_timeline
        from messaging.signals import campaign_stop_settled

        campaign_stop_settled.connect(stop_settled_on_timeline,
                                      dispatch_uid="incidents.containment.timeline")
        # Issue 4, send: the receiver that writes "the apology finished sending".
        from incidents.apology import send  # noqa: F401

        # The learn step: closing asks for the post-mortem (incidents.signals.incident_closing).
        from incidents.learn import services as learn_services  # noqa: F401

        # The plan step: sign-off requirements follow the incident's details
        # (incidents.signals.incident_details_changed).
        from incidents.plan import signoff  # noqa: F401
