from datetime import timedelta

from django.utils import timezone

from incidents import services
from incidents.models import Incident, Kind, Severity


def declare(actor, *, title: str = "Sale sent to everyone", kind: str = Kind.WRONG_SEGMENT,
            severity: int = Severity.SEV2, **kwargs) -> Incident:
    kwargs.setdefault("detected_at", timezone.now() - timedelta(minutes=5))
    return services.incident_declare(actor=actor, title=title, kind=kind, severity=severity,
                                     **kwargs)
