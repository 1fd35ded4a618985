from datetime import date

import pytest
from django.core.exceptions import ValidationError

from incidents.models import EventKind, Kind, Severity
from incidents.plan.diff import plan_diff
from incidents.plan.models import PlanVersion
from incidents.plan.services import FollowUp, plan_version_create
from tests.factories import declare

pytestmark = pytest.mark.django_db


def write(incident, actor, **kw):
    kw.setdefault("internal_steps", "Rotate the API keys\nAudit the export job")
    kw.setdefault("subscriber_message", "We made a mistake.")
    return plan_version_create(incident=incident, actor=actor, **kw)


def test_every_edit_writes_a_new_version_and_the_timeline_says_what_changed(marketer):
    incident = declare(marketer)
    v1 = write(incident, marketer)
    v2 = write(incident, marketer, subscriber_message="We made a mistake. Sorry.")
    assert (v1.number, v2.number) == (1, 2)
    assert PlanVersion.objects.filter(incident=incident).count() == 2
    event = incident.events.filter(kind=EventKind.PLAN).first()
    assert "version 2" in event.message and "What subscribers are told" in event.message
    facts = {k: v for k, v in event.data.items() if k != "said"}  # beside the sentence
    assert facts == {"version": 2, "changed": ["subscriber_message"]}


def test_saving_an_unchanged_plan_writes_nothing(marketer):
    incident = declare(marketer)
    v1 = write(incident, marketer)
    assert write(incident, marketer) == v1
    assert incident.plan_versions.count() == 1


def test_versions_are_immutable(marketer):
    v1 = write(declare(marketer), marketer)
    v1.internal_steps = "rewritten history"
    with pytest.raises(TypeError):
        v1.save()
    with pytest.raises(TypeError):
        PlanVersion.objects.filter(pk=v1.pk).update(internal_steps="x")
    with pytest.raises(TypeError):
        v1.delete()


def test_follow_ups_need_action_owner_and_due_date(marketer, lawyer):
    incident = declare(marketer)
    with pytest.raises(ValidationError, match="Follow-up 1 .*choose an owner"):
        write(incident, marketer, follow_ups=[FollowUp("Fix the export", None, date(2026, 12, 1))])
    with pytest.raises(ValidationError, match="Follow-up 2 .*due date"):
        write(incident, marketer, follow_ups=[FollowUp("A", lawyer, date(2026, 12, 1)),
                                               FollowUp("B", lawyer, None)])
    v = write(incident, marketer, follow_ups=[FollowUp("Review DPA", lawyer, date(2026, 12, 1))])
    assert v.follow_ups == [{"action": "Review DPA", "owner": lawyer.pk, "owner_name": "Leo",
                             "due": "2026-12-01"}]


def test_compensation_and_required_action_must_be_spelled_out(marketer):
    incident = declare(marketer)
    with pytest.raises(ValidationError) as err:
        write(incident, marketer, compensation_kind="coupon", subscriber_action_required=True)
    assert set(err.value.message_dict) == {"compensation_value", "compensation_eligibility",
                                           "subscriber_actions"}
    assert not incident.plan_versions.exists()


def test_closed_incident_plan_cannot_change(marketer):
    incident = declare(marketer, kind=Kind.BROKEN_LINK, severity=Severity.SEV4)
    incident.closed_at = incident.declared_at
    incident.save(update_fields=["closed_at"])
    with pytest.raises(ValidationError, match="closed"):
        write(incident, marketer)


def test_diff_shows_added_and_removed_lines_per_field(marketer, lawyer):
    incident = declare(marketer)
    v1 = write(incident, marketer)
    v2 = write(incident, marketer, internal_steps="Rotate the API keys\nTell the DPO",
               compensation_kind="discount", compensation_value="20 %",
               compensation_eligibility="Everyone affected",
               follow_ups=[FollowUp("Add a send checklist", lawyer, date(2026, 12, 24))])
    diff = {d.name: d for d in plan_diff(old=v1, new=v2)}
    assert not diff["subscriber_message"].changed
    assert diff["internal_steps"].lines == [("same", "Rotate the API keys"),
                                            ("del", "Audit the export job"),
                                            ("add", "Tell the DPO")]
    assert diff["compensation_kind"].lines == [("del", "None"), ("add", "Discount")]
    assert diff["follow_ups"].lines == [("add", "Add a send checklist — Leo — due 2026-12-24")]
