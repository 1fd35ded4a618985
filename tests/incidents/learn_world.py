"""A demo-like incident worked through all six steps and closed with a finished
post-mortem: what the PDF tests render."""

from datetime import date, timedelta

from django.utils import timezone

from incidents import services
from incidents.assessment.services import affected_audience_compute
from incidents.learn import services as learn
from incidents.models import Cause, Incident, Kind, Severity, StakeholderRole, StepStatus
from incidents.plan.models import CompensationKind
from incidents.plan.services import FollowUp, plan_version_create
from incidents.plan.signoff import signoff_record
from messaging.models import Broadcast, BroadcastStatus, Delivery, DeliveryState
from tests.audiences.factories import campaign, segment, subscriber, suppress
from tests.deliverability.helpers import add_events
from tests.factories import declare

HOSTILE_TITLE = '<script>alert("pwn")</script> & <b>Dear {{FirstName}}</b>'


def worked_incident(lead, lawyer, *, title: str = HOSTILE_TITLE, notes: int = 0,
                    close: bool = True) -> Incident:
    vip, regulars = segment("VIP & <friends>"), segment("Regulars")
    people = [subscriber(f"p{i}@example.test", segments=(vip if i % 2 else regulars,))
              for i in range(6)]
    suppress("Old 2019 unsubscribes", "p5@example.test")
    faulty = campaign("Spring sale", recipients=people,
                      sent_at=timezone.now() - timedelta(hours=2))
    incident = declare(lead, title=title, kind=Kind.WRONG_SEGMENT, severity=Severity.SEV2,
                       summary="The VIP email went to everyone <i>at once</i>.",
                       detected_at=timezone.now() - timedelta(minutes=30))
    services.stakeholder_add(incident=incident, actor=lead, user=lawyer,
                             role=StakeholderRole.LEGAL)
    affected_audience_compute(incident=incident, actor=lead, campaigns=[faulty])
    version = plan_version_create(
        incident=incident, actor=lead, internal_steps="Pause the journey.",
        subscriber_message="We sent you an email meant for others.",
        compensation_kind=CompensationKind.DISCOUNT, compensation_value="10% off",
        compensation_eligibility="Everyone who got it.",
        follow_ups=[FollowUp("Lock the segment picker", lawyer, date(2026, 1, 15))])
    signoff_record(incident=incident, version=version, actor=lawyer, decision="approved")
    broadcast = Broadcast.objects.create(
        source_ref=f"incident:{incident.pk}", subject="We made a mistake",
        from_email="care@shop.test", from_name="Shop", default_locale="en",
        provider="sandbox", status=BroadcastStatus.COMPLETED, recipient_count=2,
        started_at=timezone.now(), finished_at=timezone.now(),
        bodies={"en": {"subject": "We made a mistake", "html": "<p>x</p>",
                       "text": "Hello {{ first_name }},\nwe are sorry <really>."},
                "nl": {"subject": "Wij hebben een fout gemaakt", "html": "<p>x</p>",
                       "text": "Hallo {{ first_name }},\nhet spijt ons."}})
    Delivery.objects.bulk_create(
        Delivery(broadcast=broadcast, subscriber=p, email=p.email, state=DeliveryState.SENT)
        for p in people[:2])
    before = incident.declared_at - timedelta(days=3)
    add_events("delivered", 3000, before)
    add_events("complained", 2, before)
    add_events("delivered", 2000, incident.declared_at)
    add_events("complained", 14, incident.declared_at)
    add_events("bounced_hard", 30, incident.declared_at)
    for i in range(notes):
        services.timeline_note_add(incident=incident, actor=lead, message=f"Note {i}")
    for step in incident.steps.all():
        services.step_set_status(step=step, actor=lead, status=StepStatus.DONE,
                                 note="Handled by hand")
    learn.postmortem_save(
        incident=incident, actor=lead, cause_category=Cause.HUMAN,
        root_cause="The segment picker defaulted to <All subscribers>.",
        went_well="Paused within minutes.", went_badly="Nobody checked the count.",
        lessons="Show the recipient count before every send.")
    learn.follow_up_add(incident=incident, actor=lead, action="Add a send-count check",
                        owner=lead, due_on=date(2026, 2, 1))
    learn.lesson_adopt(incident=incident, actor=lead, step_number=2,
                       text="Compare the recipient count with the intended segment")
    learn.postmortem_finish(incident=incident, actor=lead)
    if close:
        services.incident_close(incident=incident, actor=lead)
    incident.refresh_from_db()
    return incident
