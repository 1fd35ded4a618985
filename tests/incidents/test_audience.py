from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audiences.models import SubscriberStatus
from incidents import services
from incidents.assessment.services import (
    affected_audience_compute,
    affected_audience_lookup,
    affected_audience_summary,
    affected_recipients,
)
from incidents.models import AffectedRecipient, EventKind, ExclusionReason, Kind, StepStatus
from tests.audiences.factories import campaign, segment, subscriber, suppress
from tests.factories import declare

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Two segments in scope, one outside; one person per exclusion reason."""
    vip, regulars, staff = segment("VIP"), segment("Regulars"), segment("Staff")
    people = {
        "ann": subscriber("ann@example.test", segments=(vip,)),
        "bob": subscriber("bob@example.test", SubscriberStatus.UNSUBSCRIBED,
                          segments=(regulars,)),
        "cat": subscriber("cat@example.test", SubscriberStatus.BOUNCED, segments=(regulars,)),
        "dan": subscriber("dan@example.test", SubscriberStatus.COMPLAINED,
                          segments=(regulars,)),
        # Upper case in the list, mixed case on the subscriber: still the same person.
        "eve": subscriber("Eve@Example.test", segments=(regulars,)),
        "fay": subscriber("fay@example.test", segments=(vip, regulars)),  # overlapping
        "gus": subscriber("gus@example.test", segments=(staff,)),  # only outside scope
        "hal": subscriber("hal@example.test", segments=(vip,)),  # did not get it
        "ivy": subscriber("ivy@example.test"),  # in no segment at all
        # Unsubscribed AND suppressed: the list wins (it names where the rule comes from).
        "jon": subscriber("jon@example.test", SubscriberStatus.UNSUBSCRIBED,
                          segments=(vip,)),
    }
    old = suppress("Old 2019 unsubscribes", "EVE@EXAMPLE.TEST", "jon@example.test")
    suppress("Legal hold", "jon@example.test")
    received = [p for k, p in people.items() if k != "hal"]
    faulty = campaign("Spring sale", recipients=received)
    return {"people": people, "segments": (vip, regulars, staff), "faulty": faulty,
            "old_list": old}


def rows(incident) -> dict[str, str]:
    return {r.subscriber.email.lower(): r.exclusion_reason for r in
            AffectedRecipient.objects.filter(incident=incident).select_related("subscriber")}


def test_default_scope_counts_everyone_once_with_each_exclusion_reason(marketer, world):
    incident = declare(marketer)
    audience = affected_audience_compute(incident=incident, actor=marketer,
                                         campaigns=[world["faulty"]])
    assert rows(incident) == {
        "ann@example.test": "",
        "bob@example.test": ExclusionReason.UNSUBSCRIBED,
        "cat@example.test": ExclusionReason.BOUNCED,
        "dan@example.test": ExclusionReason.COMPLAINED,
        "eve@example.test": ExclusionReason.SUPPRESSED,
        "fay@example.test": "",
        "gus@example.test": "",
        "jon@example.test": ExclusionReason.SUPPRESSED,
    }
    assert audience.reached_count == 8
    assert audience.affected_count == 3
    assert audience.excluded_counts == {"unsubscribed": 1, "bounced": 1, "complained": 1,
                                        "suppressed": 2}
    eve = AffectedRecipient.objects.get(incident=incident, subscriber=world["people"]["eve"])
    assert eve.suppression_list == world["old_list"]
    assert set(affected_recipients(incident=incident).values_list("email", flat=True)) == {
        "ann@example.test", "fay@example.test", "gus@example.test"}


def test_chosen_segments_narrow_the_scope_and_overlaps_count_once(marketer, world):
    vip, regulars, _staff = world["segments"]
    incident = declare(marketer)
    audience = affected_audience_compute(incident=incident, actor=marketer,
                                         campaigns=[world["faulty"]],
                                         segments=[vip, regulars])
    assert "gus@example.test" not in rows(incident)
    assert audience.reached_count == 7
    assert audience.affected_count == 2  # ann and fay; fay is in both segments, once
    summary = affected_audience_summary(incident=incident)
    table = {row.segment.name: (row.reached, row.affected) for row in summary.per_segment}
    assert table == {"VIP": (3, 2), "Regulars": (5, 1)}
    # jon is on two lists; he is counted once, under the first list.
    assert summary.suppressed_by_list == [("Old 2019 unsubscribes", 2)]


def test_recomputing_replaces_the_snapshot_and_logs_before_and_after(marketer, world):
    vip, regulars, _staff = world["segments"]
    incident = declare(marketer)
    affected_audience_compute(incident=incident, actor=marketer,
                              campaigns=[world["faulty"]], segments=[vip])
    assert set(rows(incident)) == {"ann@example.test", "fay@example.test",
                                   "jon@example.test"}
    # Ann unsubscribes meanwhile; scope widens to regulars too.
    ann = world["people"]["ann"]
    ann.status = SubscriberStatus.UNSUBSCRIBED
    ann.save(update_fields=["status"])
    audience = affected_audience_compute(incident=incident, actor=marketer,
                                         campaigns=[world["faulty"]],
                                         segments=[vip, regulars])
    assert AffectedRecipient.objects.filter(incident=incident).count() == 7
    assert rows(incident)["ann@example.test"] == ExclusionReason.UNSUBSCRIBED
    assert audience.affected_count == 1
    events = list(incident.events.filter(kind=EventKind.UPDATED).order_by("id"))
    assert len(events) == 2
    data = events[1].data["audience"]
    assert data["before"] == {"reached": 3, "affected": 2, "excluded": {"suppressed": 1}}
    assert data["after"]["reached"] == 7 and data["after"]["affected"] == 1
    assert "Before: 3 reached, 2 in the apology audience" in events[1].message


def test_suppression_list_send_has_nobody_in_the_apology_audience(marketer, world):
    incident = declare(marketer, kind=Kind.SUPPRESSION_SEND)
    audience = affected_audience_compute(incident=incident, actor=marketer,
                                         campaigns=[world["faulty"]])
    assert audience.reached_count == 8
    assert audience.affected_count == 0
    assert audience.excluded_counts[ExclusionReason.NO_APOLOGY] == 3
    assert audience.excluded_counts[ExclusionReason.SUPPRESSED] == 2
    assert not affected_recipients(incident=incident).exists()


def test_two_faulty_campaigns_count_a_person_once_with_the_first_receipt(marketer, world):
    people = world["people"]
    earlier = timezone.now() - timedelta(days=1)
    resend = campaign("Spring sale again", recipients=[people["ann"], people["hal"]],
                      sent_at=earlier)
    incident = declare(marketer)
    audience = affected_audience_compute(incident=incident, actor=marketer,
                                         campaigns=[world["faulty"], resend])
    assert audience.reached_count == 9  # hal joins through the second campaign
    ann = AffectedRecipient.objects.get(incident=incident, subscriber=people["ann"])
    assert ann.campaign == resend and ann.sent_at == earlier


def test_lookup_answers_for_one_address(marketer, world):
    incident = declare(marketer)
    assert not affected_audience_lookup(incident=incident, email="fay@example.test").computed
    affected_audience_compute(incident=incident, actor=marketer, campaigns=[world["faulty"]])
    answer = affected_audience_lookup(incident=incident, email="  FAY@example.test ")
    assert answer.received and answer.in_apology_audience
    assert answer.receipts[0].campaign == world["faulty"]
    answer = affected_audience_lookup(incident=incident, email="eve@example.test")
    assert answer.received and not answer.in_apology_audience
    assert answer.row.exclusion_reason == ExclusionReason.SUPPRESSED
    answer = affected_audience_lookup(incident=incident, email="hal@example.test")
    assert not answer.received and answer.row is None
    answer = affected_audience_lookup(incident=incident, email="nobody@example.test")
    assert answer.subscriber is None and not answer.received


def test_scope_needs_a_campaign_and_an_open_incident(marketer, world):
    incident = declare(marketer)
    with pytest.raises(ValidationError):
        affected_audience_compute(incident=incident, actor=marketer, campaigns=[])
    with pytest.raises(ValidationError):
        affected_audience_compute(incident=incident, actor=marketer, campaigns=[999999])
    for step in incident.steps.all():
        services.step_set_status(step=step, actor=marketer, status=StepStatus.DONE,
                                 note="Handled by hand")
    services.incident_close(incident=incident, actor=marketer)
    with pytest.raises(ValidationError):
        affected_audience_compute(incident=incident, actor=marketer,
                                  campaigns=[world["faulty"]])
    assert not AffectedRecipient.objects.filter(incident=incident).exists()
