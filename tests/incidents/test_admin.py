"""Issue 9: the Django admin is not a back door into incidents."""

import pytest
from django.urls import reverse

from incidents.models import ChecklistItem, Incident, Kind, Severity
from tests.factories import declare

pytestmark = pytest.mark.django_db


def test_admin_cannot_turn_restricted_off_on_a_breach(client, admin_user, security_officer):
    breach = declare(security_officer, kind=Kind.DATA_BREACH, severity=Severity.SEV1)
    events = breach.events.count()
    client.force_login(admin_user)
    url = reverse("admin:incidents_incident_change", args=[breach.pk])
    page = client.get(url)
    assert page.status_code == 200 and b"Customer" not in page.content
    assert b'name="restricted"' not in page.content  # shown, not editable
    response = client.post(url, {"title": breach.title, "kind": Kind.OTHER, "severity": 4,
                                 "restricted": "", "pii_exposed": ""})
    assert response.status_code == 403
    breach.refresh_from_db()
    assert breach.restricted and breach.kind == Kind.DATA_BREACH
    assert breach.events.count() == events
    assert client.post(reverse("admin:incidents_incident_delete", args=[breach.pk]),
                       {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:incidents_incident_add")).status_code == 403
    assert Incident.objects.filter(pk=breach.pk).exists()


def test_admin_cannot_tick_checklist_items(client, admin_user, marketer):
    incident = declare(marketer)
    item = ChecklistItem.objects.filter(step__incident=incident).first()
    client.force_login(admin_user)
    url = reverse("admin:incidents_checklistitem_change", args=[item.pk])
    assert client.post(url, {"text": item.text, "done": "on"}).status_code == 403
    item.refresh_from_db()
    assert not item.done
