"""Drives an embedded Amends (SQLite, filesystem broker, a real solo worker elsewhere)
through one incident: declare, compute the audience, pause the faulty campaign, send the
apology, receive a webhook. Run by tests/core/test_embedded.py in a process of its own,
with bin/demo's environment; prints what it saw as one JSON line.

Not a test module itself (pytest collects test_*.py only)."""

import base64
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.roles import Role  # noqa: E402
from accounts.services import user_create_with_role  # noqa: E402
from audiences.models import Subscriber  # noqa: E402
from deliverability.models import DeliveryEvent  # noqa: E402
from incidents.apology.send import apology_send_start  # noqa: E402
from messaging.models import (  # noqa: E402
    Broadcast,
    BroadcastStatus,
    Campaign,
    CampaignStatus,
    CampaignStop,
)
from tests.messaging.send_world import sendable_incident  # noqa: E402

TIMEOUT = float(os.environ.get("EMBEDDED_STEP_TIMEOUT", "40"))


def wait(what: str, predicate):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"embedded run: no {what} within {TIMEOUT:.0f} s (is the worker up?)")


def main() -> dict:
    seen: dict = {
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "broker": settings.CELERY_BROKER_URL,
        "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    }
    maya = user_create_with_role(username="maya", password="amends-demo-pass",
                                 role=Role.MARKETING, first_name="Maya")
    # 1. Declare, 3. compute the affected audience (set-based SQL, on SQLite here), and
    # write the apology: the suite's own world (12 people who got the faulty campaign).
    world = sendable_incident(maya, 12, excluded=0)
    incident = world.incident
    seen["affected"] = incident.affected_recipients.filter(exclusion_reason="").count()
    campaign = Campaign.objects.get(name="Spring sale p")  # send_world's faulty campaign
    # It is still going out when the incident is declared.
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SENDING)

    # 2. Pause through the war room's own view; the worker asks the (sandbox) ESP.
    web = Client(HTTP_HOST="127.0.0.1")  # what bin/demo serves
    web.force_login(maya)
    response = web.post(reverse("incidents:campaigns-stop", args=[incident.pk]))
    seen["pause_status"] = response.status_code
    stop = wait("answer to the pause", lambda: CampaignStop.objects.filter(
        campaign=campaign, finished_at__isnull=False).first())
    campaign.refresh_from_db()
    seen["pause"] = {"outcome": stop.outcome, "campaign": campaign.status}

    # 5. The apology, fanned out by the worker through the sandbox ESP.
    broadcast = apology_send_start(incident=incident, actor=maya)
    wait("finished apology", lambda: Broadcast.objects.filter(
        pk=broadcast.pk, status=BroadcastStatus.COMPLETED).exists())
    seen["apology"] = dict(Broadcast.objects.filter(pk=broadcast.pk).values(
        "recipient_count", "status").get())

    # 6. A tracking webhook, as an ESP would post it; the worker normalises it.
    token = base64.b64encode(settings.ANYMAIL["WEBHOOK_SECRET"][0].encode()).decode()
    payload = [{"event_id": "embedded-bounce-1", "type": "bounced_hard",
                "recipient": "p1@example.test", "message_id": "sbx-embedded-1",
                "timestamp": timezone.now().isoformat(),
                "metadata": {"broadcast_id": str(broadcast.pk)}}]
    response = Client(HTTP_HOST="127.0.0.1").post(reverse("deliverability:sandbox-tracking"),
                             data=json.dumps(payload), content_type="application/json",
                             HTTP_AUTHORIZATION=f"Basic {token}")
    seen["webhook_status"] = response.status_code
    event = wait("delivery event from the webhook", lambda: DeliveryEvent.objects.filter(
        event_id="embedded-bounce-1").first())
    seen["webhook_event"] = event.kind
    seen["bounced_subscriber"] = wait("subscriber feedback", lambda: Subscriber.objects.filter(
        email="p1@example.test", status="bounced").exists())
    seen["timeline"] = incident.events.count()
    return seen


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
