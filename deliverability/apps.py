from django.apps import AppConfig


class DeliverabilityConfig(AppConfig):
    name = "deliverability"

    def ready(self) -> None:
        from anymail.signals import tracking

        from .ingest import tracking_received

        tracking.connect(tracking_received, dispatch_uid="deliverability.tracking_received")

        from .webhooks import install_tolerant_json

        install_tolerant_json()

        from .feedback import SubscriberFeedback, delivery_listener_register
        from .subscriber_feedback import AudiencesPort

        delivery_listener_register(SubscriberFeedback(AudiencesPort()),
                                   kinds=SubscriberFeedback.KINDS)

        from messaging.signals import sandbox_events_emitted

        from .sandbox_bridge import sandbox_events_received

        sandbox_events_emitted.connect(sandbox_events_received,
                                       dispatch_uid="deliverability.sandbox_events")
