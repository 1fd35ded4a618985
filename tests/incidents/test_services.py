from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from incidents import services
from incidents.models import (
    EventKind,
    Kind,
    Severity,
    StakeholderRole,
    Status,
    StepStatus,
    TimelineEvent,
)
from tests.factories import declare

pytestmark = pytest.mark.django_db


def step(incident, number):
    return incident.steps.get(number=number)


def test_declaring_creates_six_steps_from_the_playbook_with_targets(marketer):
    incident = declare(marketer, severity=Severity.SEV1)
    steps = list(incident.steps.order_by("number"))
    assert [s.number for s in steps] == [1, 2, 3, 4, 5, 6]
    assert steps[0].title == "Own the problem"
    assert steps[1].target_minutes == 15  # step 2 within 15 minutes for SEV1
    assert all(s.status == StepStatus.NOT_STARTED for s in steps)
    assert incident.status == Status.DECLARED
    assert incident.lead == marketer
    assert incident.stakeholders.get().role == StakeholderRole.LEAD
    event = incident.events.get(kind=EventKind.DECLARED)
    assert event.actor == marketer and "SEV1" in event.message
    # Issue 9: SEV1 needs legal's sign-off, recorded from the start (and kept).
    assert incident.events.get(kind=EventKind.SIGNOFF).message.startswith(
        "Legal must now sign before subscribers are told (SEV1).")


def test_breach_gets_security_items_password_guidance_and_is_restricted(security_officer):
    incident = declare(security_officer, kind=Kind.DATA_BREACH, severity=Severity.SEV1)
    texts = list(incident.steps.values_list("items__text", flat=True))
    assert any(t.startswith("Security:") for t in texts)
    assert any("reset their password" in t for t in texts)
    assert incident.restricted and incident.pii_exposed


def test_suppression_list_send_says_do_not_apologise(marketer):
    incident = declare(marketer, kind=Kind.SUPPRESSION_SEND)
    assert step(incident, 4).items.filter(text__startswith="Do not send an apology").exists()
    assert not incident.restricted


def test_future_detection_time_is_refused(marketer):
    with pytest.raises(ValidationError):
        declare(marketer, detected_at=timezone.now() + timedelta(hours=1))


def test_status_follows_the_resolved_prefix_of_steps(marketer):
    incident = declare(marketer)
    services.step_set_status(step=step(incident, 1), actor=marketer, status=StepStatus.DONE,
                                 note="Handled by hand")
    services.step_set_status(step=step(incident, 3), actor=marketer, status=StepStatus.DONE,
                                 note="Handled by hand")
    incident.refresh_from_db()
    assert incident.status == Status.DECLARED  # step 2 still open
    services.step_set_status(step=step(incident, 2), actor=marketer, status=StepStatus.DONE,
                                 note="Handled by hand")
    incident.refresh_from_db()
    assert incident.status == Status.ASSESSED
    for n in (4, 5):
        services.step_set_status(step=step(incident, n), actor=marketer, status=StepStatus.DONE,
                                 note="Handled by hand")
    incident.refresh_from_db()
    assert incident.status == Status.NOTIFIED
    services.step_set_status(step=step(incident, 6), actor=marketer,
                             status=StepStatus.IN_PROGRESS)
    incident.refresh_from_db()
    assert incident.status == Status.MONITORING
    moves = incident.events.filter(kind=EventKind.STATUS).values_list("data", flat=True)
    assert [m["to"] for m in reversed(moves)] == ["assessed", "planned", "notified", "monitoring"]


def test_skipping_needs_a_reason_and_records_it(marketer):
    incident = declare(marketer)
    with pytest.raises(ValidationError):
        services.step_set_status(step=step(incident, 5), actor=marketer,
                                 status=StepStatus.SKIPPED)
    s = services.step_set_status(step=step(incident, 5), actor=marketer,
                                 status=StepStatus.SKIPPED, skip_reason="Suppression list")
    assert s.skip_reason == "Suppression list" and s.done_at is not None
    assert "Reason: Suppression list" in incident.events.filter(kind=EventKind.STEP)[0].message


def test_ticking_records_who_and_when_and_starts_the_step(marketer, lawyer):
    incident = declare(marketer)
    item = step(incident, 1).items.first()
    services.checklist_item_set_done(item=item, actor=lawyer, done=True)
    item.refresh_from_db()
    assert item.done and item.done_by == lawyer and item.done_at is not None
    assert step(incident, 1).status == StepStatus.IN_PROGRESS
    tick = incident.events.filter(kind=EventKind.CHECKLIST).get()
    assert tick.actor == lawyer and item.text in tick.message
    services.checklist_item_set_done(item=item, actor=lawyer, done=False)
    item.refresh_from_db()
    assert not item.done and item.done_by is None


def test_repeated_tick_writes_nothing_new(marketer):
    incident = declare(marketer)
    item = step(incident, 1).items.first()
    services.checklist_item_set_done(item=item, actor=marketer, done=True)
    count = incident.events.count()
    services.checklist_item_set_done(item=item, actor=marketer, done=True)
    assert incident.events.count() == count


def test_add_edit_and_move_items(marketer):
    incident = declare(marketer)
    s2 = step(incident, 2)
    first = s2.items.first()
    added = services.checklist_item_add(step=s2, actor=marketer, text="  Call the ESP  ")
    assert added.text == "Call the ESP" and list(s2.items.all())[-1] == added
    services.checklist_item_move(item=added, actor=marketer, offset=-1)
    services.checklist_item_move(item=first, actor=marketer, offset=1)
    order = list(s2.items.values_list("text", flat=True))
    assert order.index("Call the ESP") == len(order) - 2
    services.checklist_item_edit(item=added, actor=marketer, text="Call the ESP account manager")
    added.refresh_from_db()
    assert added.text == "Call the ESP account manager"
    with pytest.raises(ValidationError):
        services.checklist_item_add(step=s2, actor=marketer, text="   ")
    actions = [e.data.get("action") for e in incident.events.filter(kind=EventKind.CHECKLIST)]
    assert sorted(actions) == ["add", "edit", "move", "move"]


def test_owner_change_is_recorded(marketer, lawyer):
    incident = declare(marketer)
    services.step_assign_owner(step=step(incident, 3), actor=marketer, owner=lawyer)
    assert step(incident, 3).owner == lawyer
    event = incident.events.filter(kind=EventKind.OWNER).get()
    facts = {k: v for k, v in event.data.items() if k != "said"}  # beside the sentence
    assert "Leo" in event.message and facts == {"step": 3, "owner": lawyer.pk}


def test_stakeholders_add_and_remove_but_never_the_lead(marketer, lawyer):
    incident = declare(marketer)
    stake = services.stakeholder_add(incident=incident, actor=marketer, user=lawyer,
                                     role=StakeholderRole.LEGAL)
    services.stakeholder_add(incident=incident, actor=marketer, user=lawyer,
                             role=StakeholderRole.LEGAL)  # idempotent
    assert incident.stakeholders.count() == 2
    services.stakeholder_remove(stakeholder=stake, actor=marketer)
    with pytest.raises(ValidationError):
        services.stakeholder_remove(stakeholder=incident.stakeholders.get(), actor=marketer)
    assert incident.events.filter(kind=EventKind.STAKEHOLDER).count() == 2


def test_close_needs_every_step_resolved_then_freezes(marketer):
    incident = declare(marketer)
    with pytest.raises(ValidationError, match="open: 1, 2, 3, 4, 5, 6"):
        services.incident_close(incident=incident, actor=marketer,
                                postmortem_skip_reason="A test incident.")
    for s in incident.steps.all():
        services.step_set_status(step=s, actor=marketer, status=StepStatus.DONE,
                                 note="Handled by hand")
    services.incident_close(incident=incident, actor=marketer,
                            postmortem_skip_reason="A test incident.")
    incident.refresh_from_db()
    assert incident.status == Status.CLOSED and incident.closed_at
    with pytest.raises(ValidationError):
        services.checklist_item_add(step=step(incident, 1), actor=marketer, text="late")
    services.incident_reopen(incident=incident, actor=marketer, reason="Complaints rising")
    incident.refresh_from_db()
    assert incident.status == Status.MONITORING and incident.closed_at is None


def test_update_records_each_change_and_breach_restricts(marketer):
    incident = declare(marketer)
    changed = services.incident_update(incident=incident, actor=marketer,
                                       severity=Severity.SEV1, kind=Kind.DATA_BREACH)
    incident.refresh_from_db()
    assert set(changed) >= {"severity", "kind", "restricted", "pii_exposed"}
    assert incident.restricted and incident.pii_exposed
    event = incident.events.filter(kind=EventKind.UPDATED).get()
    assert event.data["changes"]["severity"] == [2, 1]
    assert services.incident_update(incident=incident, actor=marketer,
                                    severity=Severity.SEV1) == []


def test_timeline_is_append_only_and_corrections_point_back(marketer):
    incident = declare(marketer)
    note = services.timeline_note_add(incident=incident, actor=marketer, message="ESP says 9:30")
    note.message = "rewritten"
    with pytest.raises(TypeError):
        note.save()
    with pytest.raises(TypeError):
        note.delete()
    with pytest.raises(TypeError):
        TimelineEvent.objects.filter(pk=note.pk).update(message="x")
    with pytest.raises(TypeError):
        TimelineEvent.objects.filter(pk=note.pk).delete()
    fix = services.timeline_correct(event=note, actor=marketer, message="ESP says 9:31")
    assert fix.corrects == note and fix.kind == EventKind.CORRECTION
    with pytest.raises(ValidationError):
        services.timeline_note_add(incident=incident, actor=marketer, message="  ")


def test_overdue_steps_raise_one_alert_each(marketer):
    incident = declare(marketer, severity=Severity.SEV1)
    later = timezone.now() + timedelta(minutes=16)
    assert services.steps_flag_overdue(now=later) == 2  # steps 1 (10 min) and 2 (15 min)
    assert services.steps_flag_overdue(now=later) == 0
    alerts = incident.events.filter(kind=EventKind.ALERT)
    assert alerts.count() == 2 and all(a.actor is None for a in alerts)


def test_done_with_open_items_needs_a_reason_and_records_it(marketer):
    incident = declare(marketer)
    with pytest.raises(ValidationError) as refused:
        services.step_set_status(step=step(incident, 1), actor=marketer, status=StepStatus.DONE)
    assert "3 checklist items are still open" in " ".join(refused.value.messages)
    services.step_set_status(step=step(incident, 1), actor=marketer, status=StepStatus.DONE,
                             note="Leadership was told on the phone")
    event = incident.events.filter(kind=EventKind.STEP).latest("pk")
    assert "3 items left open: Leadership was told on the phone" in event.message
    assert event.data["open_items"] == 3


def test_done_with_every_item_ticked_needs_no_reason(marketer):
    incident = declare(marketer)
    for item in step(incident, 1).items.all():
        services.checklist_item_set_done(item=item, actor=marketer, done=True)
    services.step_set_status(step=step(incident, 1), actor=marketer, status=StepStatus.DONE)
    assert step(incident, 1).status == StepStatus.DONE


def test_an_action_ticks_the_item_it_proves_as_amends(marketer):
    from incidents import playbook

    incident = declare(marketer)
    item = services.checklist_item_prove(incident=incident, step_number=2,
                                         text=playbook.PROOF_PAUSED, proof="All stopped.")
    assert item.done and item.done_by is None
    event = incident.events.filter(kind=EventKind.CHECKLIST).latest("pk")
    assert event.actor is None and event.message.startswith("Amends ticked “Pause or cancel")
    assert event.message.endswith("All stopped.")
    assert step(incident, 2).status == StepStatus.IN_PROGRESS  # the work has begun
    # Already ticked (or reworded by a person): left as people left it.
    assert services.checklist_item_prove(incident=incident, step_number=2,
                                         text=playbook.PROOF_PAUSED, proof="Again.") is None
