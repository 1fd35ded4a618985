"""The learn step: the post-mortem drafted from the record, closing asks for it, follow-ups,
and lessons the playbook takes for every future incident of the kind."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.assessment.services import affected_audience_compute
from incidents.learn import services as learn
from incidents.learn.models import FollowUpAction, PostMortem, PostMortemStatus
from incidents.learn.selectors import follow_ups_overdue, postmortem_initial
from incidents.models import Cause, EventKind, Kind, StepStatus
from incidents.plan.services import FollowUp, plan_version_create
from tests.audiences.factories import campaign, segment, subscriber, suppress
from tests.factories import declare

pytestmark = pytest.mark.django_db


def finish_steps(incident, actor) -> None:
    for step in incident.steps.all():
        services.step_set_status(step=step, actor=actor, status=StepStatus.DONE,
                                 note="Handled by hand")


def learn_events(incident) -> list[str]:
    return list(incident.events.filter(kind=EventKind.LEARN).order_by("created_at", "id")
                .values_list("message", flat=True))


def test_the_draft_is_written_from_the_record(marketer, lawyer):
    everyone = segment("Everyone")
    people = [subscriber(f"p{i}@example.test", segments=(everyone,)) for i in range(4)]
    suppress("Old list", "p3@example.test")
    faulty = campaign("Spring", recipients=people, sent_at=timezone.now() - timedelta(hours=3))
    incident = declare(marketer, summary="VIP email to all.",
                       detected_at=timezone.now() - timedelta(hours=1))
    services.incident_update(incident=incident, actor=marketer, cause=Cause.COORDINATION)
    affected_audience_compute(incident=incident, actor=marketer, campaigns=[faulty])
    plan_version_create(incident=incident, actor=marketer, internal_steps="Pause it.",
                        process_changes="Two people check the segment.",
                        follow_ups=[FollowUp("Lock the picker", lawyer, date(2026, 3, 1))])
    incident.refresh_from_db()
    draft = postmortem_initial(incident=incident)
    assert draft.pk is None  # reading never writes
    assert draft.what_happened.startswith("VIP email to all.")
    assert "declared a SEV2 incident" in draft.what_happened
    assert draft.cause_category == Cause.COORDINATION
    assert draft.affected_count == 3 and draft.excluded_count == 1
    assert draft.suppressed_count == 1
    assert 115 <= draft.detection_delay_minutes <= 121  # first send → detection
    assert draft.lessons == "Two people check the segment."
    assert draft.detection_how.endswith(" later by Maya.")
    # The first save keeps the draft and copies the plan's follow-ups once.
    learn.postmortem_save(incident=incident, actor=marketer, root_cause="Picker default.")
    learn.postmortem_save(incident=incident, actor=marketer, root_cause="Picker default.")
    saved = PostMortem.objects.get(incident=incident)
    assert saved.what_happened == draft.what_happened and saved.root_cause == "Picker default."
    [follow_up] = FollowUpAction.objects.filter(incident=incident)
    assert (follow_up.action, follow_up.owner, follow_up.due_on) == (
        "Lock the picker", lawyer, date(2026, 3, 1))
    assert learn_events(incident) == [
        "Maya started the post-mortem from the incident's record.",
        "Maya edited the post-mortem: root cause."]


def test_finishing_needs_the_cause_and_the_lessons(marketer):
    incident = declare(marketer)
    with pytest.raises(ValidationError, match="Save the post-mortem"):
        learn.postmortem_finish(incident=incident, actor=marketer)
    learn.postmortem_save(incident=incident, actor=marketer, what_happened="Sent to all.")
    with pytest.raises(ValidationError, match="cause category, root cause, lessons"):
        learn.postmortem_finish(incident=incident, actor=marketer)
    learn.postmortem_save(incident=incident, actor=marketer, cause_category=Cause.HUMAN,
                          root_cause="Wrong list.", lessons="Check the list.")
    postmortem = learn.postmortem_finish(incident=incident, actor=marketer)
    assert postmortem.status == PostMortemStatus.FINISHED and postmortem.finished_by == marketer
    assert learn_events(incident)[-1] == "Maya finished the post-mortem."


def test_bad_values_are_refused_and_nothing_is_written(marketer):
    incident = declare(marketer)
    learn.postmortem_save(incident=incident, actor=marketer, what_happened="x")
    with pytest.raises(ValidationError) as exc:
        learn.postmortem_save(incident=incident, actor=marketer, cause_category="aliens")
    assert "cause_category" in exc.value.message_dict
    assert PostMortem.objects.get(incident=incident).cause_category == ""
    with pytest.raises(ValueError, match="not a post-mortem field: status"):
        learn.postmortem_save(incident=incident, actor=marketer, status="finished")


def test_closing_asks_for_the_post_mortem_or_a_reason(marketer):
    incident = declare(marketer)
    finish_steps(incident, marketer)
    with pytest.raises(ValidationError, match="Finish the post-mortem before closing"):
        services.incident_close(incident=incident, actor=marketer)
    incident.refresh_from_db()
    assert incident.closed_at is None
    services.incident_close(incident=incident, actor=marketer,
                            postmortem_skip_reason="A typo nobody saw.")
    incident.refresh_from_db()
    assert incident.closed_at is not None
    postmortem = PostMortem.objects.get(incident=incident)
    assert (postmortem.status, postmortem.skip_reason) == (PostMortemStatus.SKIPPED,
                                                           "A typo nobody saw.")
    assert "Maya skipped the post-mortem: A typo nobody saw." in learn_events(incident)


def test_a_finished_post_mortem_closes_without_a_reason(marketer):
    incident = declare(marketer)
    finish_steps(incident, marketer)
    learn.postmortem_save(incident=incident, actor=marketer, what_happened="x",
                          cause_category=Cause.HUMAN, root_cause="y", lessons="z")
    learn.postmortem_finish(incident=incident, actor=marketer)
    services.incident_close(incident=incident, actor=marketer)
    incident.refresh_from_db()
    assert incident.closed_at is not None
    with pytest.raises(ValidationError, match="cannot be skipped"):
        learn.postmortem_skip(incident=incident, actor=marketer, reason="Changed my mind")


def test_a_lesson_joins_the_checklist_of_every_future_incident_of_that_kind(marketer):
    past = declare(marketer, kind=Kind.WRONG_OFFER)
    other_kind = declare(marketer, kind=Kind.BROKEN_LINK)
    learn.lesson_adopt(incident=past, actor=marketer, step_number=2,
                       text="Try every coupon at checkout")
    with pytest.raises(ValidationError, match="already has this item"):
        learn.lesson_adopt(incident=past, actor=marketer, step_number=2,
                           text="Try every coupon at checkout")
    future = declare(marketer, kind=Kind.WRONG_OFFER)
    unrelated = declare(marketer, kind=Kind.BROKEN_LINK)

    def items(incident, number):
        return list(incident.steps.get(number=number).items.values_list("text", flat=True))

    assert items(future, 2)[-1] == "Try every coupon at checkout"
    assert future.steps.get(number=2).items.get(
        text="Try every coupon at checkout").from_playbook
    for incident in (past, other_kind, unrelated):  # past incidents keep their copy
        assert "Try every coupon at checkout" not in items(incident, 2)
    assert learn_events(past) == [
        "Maya added a lesson to the playbook for every “Wrong or expired offer or coupon” "
        "incident, step 2: “Try every coupon at checkout”."]


def test_overdue_follow_ups_are_scoped_to_what_the_user_may_see(marketer, lawyer, manager,
                                                                outsider):
    open_one = declare(marketer, title="Open")
    breach = declare(marketer, title="Leak", kind=Kind.DATA_BREACH)
    today = date(2026, 6, 10)
    late = learn.follow_up_add(incident=open_one, actor=marketer, action="Late", owner=lawyer,
                               due_on=date(2026, 6, 1))
    learn.follow_up_add(incident=open_one, actor=marketer, action="Not yet", owner=lawyer,
                        due_on=date(2026, 6, 30))
    secret = learn.follow_up_add(incident=breach, actor=marketer, action="Rotate keys",
                                 owner=marketer, due_on=date(2026, 6, 2))
    done = learn.follow_up_add(incident=open_one, actor=marketer, action="Done already",
                               owner=lawyer, due_on=date(2026, 6, 1))
    learn.follow_up_set_done(follow_up=done, actor=lawyer, done=True)
    assert set(follow_ups_overdue(user=manager, today=today)) == {late, secret}
    assert set(follow_ups_overdue(user=outsider, today=today)) == {late}
    assert "Leo marked the follow-up “Done already” done." in learn_events(open_one)


# --- Views ------------------------------------------------------------------------------------

def test_the_page_shows_the_draft_and_saves_it(client, marketer):
    incident = declare(marketer, summary="Sent to everyone.")
    client.force_login(marketer)
    url = reverse("incidents:postmortem", args=[incident.pk])
    page = client.get(url)
    assert page.status_code == 200 and b"drafted from the incident" in page.content
    assert b"Sent to everyone." in page.content
    assert not PostMortem.objects.filter(incident=incident).exists()
    save = reverse("incidents:postmortem-save", args=[incident.pk])
    bad = client.post(save, {"what_happened": "x", "cost": "-5", "currency": "EUR",
                             "affected_count": "0", "excluded_count": "0",
                             "suppressed_count": "0"})
    assert bad.status_code == 422 and b"The cost cannot be negative." in bad.content
    assert not PostMortem.objects.filter(incident=incident).exists()
    ok = client.post(save, {"what_happened": "Sent to all.", "cause_category": "human",
                            "currency": "EUR", "affected_count": "12",
                            "excluded_count": "0", "suppressed_count": "0"})
    assert ok.status_code == 302
    saved = PostMortem.objects.get(incident=incident)
    assert saved.what_happened == "Sent to all." and saved.affected_count == 12


def test_managers_read_the_post_mortem_but_cannot_change_it(client, marketer, manager):
    incident = declare(marketer)
    client.force_login(manager)
    page = client.get(reverse("incidents:postmortem", args=[incident.pk]))
    assert page.status_code == 200 and b"Export as PDF" in page.content
    assert b"Save the post-mortem" not in page.content
    assert client.post(reverse("incidents:postmortem-save", args=[incident.pk]),
                       {"what_happened": "x"}).status_code == 403


def test_the_close_page_offers_the_post_mortem_or_a_reason(client, marketer):
    incident = declare(marketer)
    finish_steps(incident, marketer)
    client.force_login(marketer)
    url = reverse("incidents:incident-close", args=[incident.pk])
    page = client.get(url)
    assert b"postmortem_skip_reason" in page.content
    assert reverse("incidents:postmortem", args=[incident.pk]).encode() in page.content
    client.post(url, {"postmortem_skip_reason": "  "})
    incident.refresh_from_db()
    assert incident.closed_at is None
    client.post(url, {"postmortem_skip_reason": "Cosmetic."})
    incident.refresh_from_db()
    assert incident.closed_at is not None
