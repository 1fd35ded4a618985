from datetime import timedelta

import pytest
from django.utils import timezone

from deliverability import services
from deliverability.demo import demo_delivery_events_seed
from deliverability.models import DeliveryEvent
from incidents.monitoring import services as monitoring
from tests.factories import declare

pytestmark = pytest.mark.django_db


def test_demo_events_cross_a_threshold_after_the_incident(marketer):
    incident = declare(marketer)
    now = timezone.now()
    assert demo_delivery_events_seed(declared_at=incident.declared_at, now=now) == 15000
    assert demo_delivery_events_seed(declared_at=incident.declared_at, now=now) == 0
    services.delivery_events_normalise()
    assert DeliveryEvent.objects.count() == 15000
    raised = monitoring.deliverability_check(incident=incident,
                                             now=now + timedelta(minutes=1))
    assert {e.data["metric"] for e in raised} == {"complaint_rate", "bounce_rate"}
    panel = monitoring.deliverability_panel(incident=incident)
    assert panel.has_events and len(panel.charts) == 3
