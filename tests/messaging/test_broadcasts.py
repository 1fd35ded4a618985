"""The delivery ledger, in-process against the sandbox ESP (no worker): claim, kill switch,
settle, in-doubt rows, reconciliation, human decisions, the guard and the linter."""

from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from incidents.apology.send import (
    apology_delivery_decide,
    apology_send_pause,
    apology_send_progress,
    apology_send_resume,
    apology_send_start,
    broadcast_counts,
)
from incidents.apology.services import apology_save
from incidents.models import Kind
from incidents.plan.signoff import ApologyBlocked
from messaging import broadcasts
from messaging.esp.base import EspTemporaryError, RecipientResult, RecipientStatus
from messaging.esp.sandbox import SandboxAdapter
from messaging.models import (
    Broadcast,
    BroadcastStatus,
    Delivery,
    DeliveryState,
    WaitingChunk,
)
from tests.factories import declare
from tests.messaging.ledger_walk import EXPECTED as LEDGER_WALK
from tests.messaging.ledger_walk import ledger_walk
from tests.messaging.send_world import sendable_incident

pytestmark = pytest.mark.django_db


def sandbox(**kwargs) -> SandboxAdapter:
    return SandboxAdapter(outcomes={}, seed=7, **kwargs)


def run_to_end(broadcast: Broadcast, adapter, *, limit: int = 200) -> None:
    """What the Celery chain does, in this process."""
    for _ in range(limit):
        outcome = broadcasts.broadcast_run_batch(broadcast_id=broadcast.pk, adapter=adapter)
        if outcome.next_in is None:
            return
    pytest.fail("the chain did not end")


def states(broadcast) -> Counter:
    """The people of the broadcast by state, those still in the snapshot as pending."""
    return Counter({state: n for state, (n, _recent)
                    in broadcasts.deliveries_state_counts(broadcast.pk).items()})


def snapshot_emails(broadcast) -> set[str]:
    """Everyone the broadcast goes to: ledger rows and people still in the snapshot."""
    written = Delivery.objects.filter(broadcast=broadcast).values_list("email", flat=True)
    waiting = WaitingChunk.objects.filter(broadcast=broadcast).values_list("emails",
                                                                           flat=True)
    return {*written, *(email for emails in waiting for email in emails)}


def test_start_materialises_only_the_affected_audience(marketer):
    world = sendable_incident(marketer, 40)
    broadcast = apology_send_start(incident=world.incident, actor=marketer, batch_size=15)
    emails = snapshot_emails(broadcast)
    assert not Delivery.objects.filter(broadcast=broadcast).exists()  # written per claim
    assert emails == world.included and not emails & world.excluded
    assert broadcast.status == BroadcastStatus.SENDING and broadcast.recipient_count == 40
    assert broadcast.content_version == 1 and set(broadcast.bodies) == {"en", "nl"}
    event = world.incident.events.order_by("-id").first()
    assert event.data["broadcast"] == broadcast.pk and "40 people" in event.message


def test_the_snapshot_is_claimed_in_pieces_and_cancelled_whole(marketer):
    """A claim smaller than a chunk writes the rest pending; cancel writes the snapshot's
    people cancelled (the same walk runs on SQLite: test_ledger_embedded.py)."""
    assert ledger_walk(marketer) == LEDGER_WALK


def test_a_chunk_answer_that_names_someone_else_leaves_the_person_in_doubt(marketer):
    """A chunk's answers are zipped with its people by position, each naming its person: a
    list out of order (cannot happen) must never settle one person with another's answer."""
    world = sendable_incident(marketer, 3)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    claim = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="t")
    shuffled = list(reversed(claim.rows))  # the middle person keeps their place
    answers = [RecipientResult(r.email, RecipientStatus.ACCEPTED, message_id=f"m-{r.email}")
               for r in shuffled]
    broadcasts._settle_chunk(broadcast.pk, claim.chunk, "t", shuffled, answers,
                             timezone.now(), unsent_state=DeliveryState.PENDING)
    assert states(broadcast) == {DeliveryState.IN_DOUBT: 2, DeliveryState.SENT: 1}
    sent = Delivery.objects.get(broadcast=broadcast, state=DeliveryState.SENT)
    assert sent.esp_message_id == f"m-{sent.email}"
    assert set(Delivery.objects.filter(state=DeliveryState.IN_DOUBT).values_list(
        "esp_message_id", flat=True)) == {""}


def test_sending_twice_is_refused(marketer):
    world = sendable_incident(marketer, 5)
    apology_send_start(incident=world.incident, actor=marketer)
    with pytest.raises(ValidationError, match="already been sent"):
        apology_send_start(incident=world.incident, actor=marketer)


def test_each_person_gets_exactly_one_message_in_their_language(marketer):
    world = sendable_incident(marketer, 53)
    broadcast = apology_send_start(incident=world.incident, actor=marketer, batch_size=10)
    esp = sandbox()
    run_to_end(broadcast, esp)
    sent = esp.store.all_messages()
    assert Counter(m.recipient for m in sent) == Counter(world.included)
    assert states(broadcast) == {DeliveryState.SENT: 53}
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.COMPLETED and broadcast.finished_at
    assert world.incident.events.filter(message__contains="finished sending").exists()
    # Sending proved step 5 done: Amends ticks "send only to the affected audience, once"
    # and marks the step done, saying what proved it.
    step5 = world.incident.steps.get(number=5)
    assert step5.status == "done"
    assert step5.items.get(text__startswith="Send only to the affected").done
    assert "The apology reached 53 people, each once." in (
        world.incident.events.order_by("-id").first().message)
    # A second run sends nothing more.
    run_to_end(broadcast, esp)
    assert len(esp.store.all_messages()) == 53


def test_messages_are_filled_per_recipient_and_carry_our_metadata(marketer):
    world = sendable_incident(marketer, 6)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    rows = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="t").rows
    messages = {m.to: m for m in broadcasts.build_messages(broadcast, rows)}
    dutch, english = messages["p0@example.test"], messages["p1@example.test"]
    assert "Beste Person0" in dutch.text and "Dear Person1" in english.text
    assert "Person1" in english.html and "{{" not in english.html + english.text
    assert "/unsubscribe/" in english.html
    assert english.metadata["broadcast_id"] == str(broadcast.pk)
    row = next(r for r in rows if r.email == "p1@example.test")
    assert english.metadata["recipient_id"] == str(row.subscriber_id)
    assert english.from_email == "Northwind <care@northwind.test>"


def test_a_batch_claimed_before_pause_is_released_not_sent(marketer):
    world = sendable_incident(marketer, 20)
    broadcast = apology_send_start(incident=world.incident, actor=marketer, batch_size=8)
    claim = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="w1")
    assert len(claim.rows) == 8
    apology_send_pause(incident=world.incident, actor=marketer)
    esp = sandbox()
    outcome = broadcasts.deliveries_send_claimed(broadcast=broadcast, claim=claim,
                                                 token="w1", adapter=esp)
    assert outcome.released == 8 and outcome.sent == 0
    assert esp.store.all_messages() == []
    assert states(broadcast) == {DeliveryState.PENDING: 20}
    # While paused, nothing is claimed either.
    assert broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="w2").rows == []
    apology_send_resume(incident=world.incident, actor=marketer)
    run_to_end(broadcast, esp)
    assert Counter(m.recipient for m in esp.store.all_messages()) == Counter(world.included)


def test_an_answer_lost_leaves_rows_in_doubt_and_reconciliation_never_resends(marketer):
    world = sendable_incident(marketer, 12)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    esp = sandbox(in_doubt_rate=1.0)
    broadcasts.broadcast_run_batch(broadcast_id=broadcast.pk, adapter=esp)
    assert states(broadcast) == {DeliveryState.IN_DOUBT: 12}
    result = broadcasts.broadcast_reconcile(broadcast=broadcast, adapter=esp, settle=0)
    assert result.resolved_sent == 12 and result.requeued == 0
    assert states(broadcast) == {DeliveryState.RESOLVED_SENT: 12}
    assert len(esp.store.all_messages()) == 12  # the sandbox had them all: none resent
    assert Delivery.objects.filter(broadcast=broadcast, esp_message_id="").count() == 0


def test_a_dead_workers_claim_becomes_in_doubt_then_missing_rows_are_sent_once(marketer):
    world = sendable_incident(marketer, 10)
    broadcast = apology_send_start(incident=world.incident, actor=marketer, batch_size=4)
    broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="dead-worker")
    assert broadcasts.deliveries_mark_abandoned(broadcast_id=broadcast.pk, grace=0) == 4
    assert states(broadcast) == {DeliveryState.IN_DOUBT: 4, DeliveryState.PENDING: 6}
    esp = sandbox()
    # The ESP never got them; too recent to call them missing → still in doubt.
    recent = broadcasts.broadcast_reconcile(broadcast=broadcast, adapter=esp, settle=3600)
    assert recent.still_in_doubt == 4 and recent.requeued == 0
    settled = broadcasts.broadcast_reconcile(broadcast=broadcast, adapter=esp, settle=0)
    assert settled.requeued == 4
    run_to_end(broadcast, esp)
    assert Counter(m.recipient for m in esp.store.all_messages()) == Counter(world.included)


def test_rows_stay_in_doubt_when_the_esp_cannot_look_up(marketer):
    world = sendable_incident(marketer, 3)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)

    class Blind:
        def send_batch(self, messages):
            return [RecipientResult(m.to, RecipientStatus.UNKNOWN, error="in doubt: 502",
                                    metadata=m.metadata) for m in messages]

        def lookup_messages(self, metadata):
            from messaging.esp.base import EspNotSupported
            raise EspNotSupported("no search")

    run_to_end(broadcast, Blind())
    assert states(broadcast) == {DeliveryState.IN_DOUBT: 3}
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.COMPLETED  # listed for a decision
    progress = apology_send_progress(incident=world.incident)
    assert progress.in_doubt == 3 and progress.remaining == 0


def test_a_temporary_refusal_gives_the_rows_back(marketer):
    world = sendable_incident(marketer, 5)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)

    class Busy:
        def send_batch(self, messages):
            raise EspTemporaryError("429 for a while", retry_after=3)

    outcome = broadcasts.broadcast_run_batch(broadcast_id=broadcast.pk, adapter=Busy())
    assert outcome.released == 5 and outcome.next_in == 3
    assert states(broadcast) == {DeliveryState.PENDING: 5}


def test_rejected_recipients_fail_with_the_esps_words(marketer):
    world = sendable_incident(marketer, 4)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    chunk = WaitingChunk.objects.get(broadcast=broadcast)  # the snapshot, before any claim
    chunk.emails = [e.replace("p1@example.test", "p1@nowhere.invalid") for e in chunk.emails]
    chunk.save()
    run_to_end(broadcast, sandbox())
    failed = Delivery.objects.get(broadcast=broadcast, state=DeliveryState.FAILED)
    assert "not deliverable" in failed.reason


def test_the_rate_limit_spaces_batches(marketer):
    world = sendable_incident(marketer, 30)
    broadcast = apology_send_start(incident=world.incident, actor=marketer, batch_size=5,
                                   rate_per_second=10)
    slots = []
    for token in ("a", "b", "c"):
        claim = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token=token)
        assert len(claim.rows) == 5
        slots.append(claim.slot)
    assert [(b - a).total_seconds() for a, b in zip(slots, slots[1:], strict=False)] == [0.5, 0.5]
    # The next slot is more than a second away: the task is told to come back later.
    later = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="d")
    assert later.rows == [] and later.wait > 1.0


def test_a_person_decides_on_rows_in_doubt(marketer):
    world = sendable_incident(marketer, 3)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="gone")
    broadcasts.deliveries_mark_abandoned(broadcast_id=broadcast.pk, grace=0)
    first, second, third = Delivery.objects.filter(broadcast=broadcast).order_by("email")
    apology_delivery_decide(incident=world.incident, actor=marketer, delivery_id=first.pk,
                            resend=True)
    apology_delivery_decide(incident=world.incident, actor=marketer, delivery_id=second.pk,
                            resend=False)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == DeliveryState.PENDING and first.decided_by == marketer
    assert second.state == DeliveryState.FAILED and "not to send" in second.reason
    messages = list(world.incident.events.order_by("-id").values_list("message", flat=True)[:2])
    assert "not to send the apology again to p1@example.test" in messages[0]
    assert "send the apology again to p0@example.test" in messages[1]
    with pytest.raises(ValidationError):
        apology_delivery_decide(incident=world.incident, actor=marketer,
                                delivery_id=first.pk, resend=False)


def test_progress_counts_in_one_query(marketer, django_assert_num_queries):
    world = sendable_incident(marketer, 9)
    broadcast = apology_send_start(incident=world.incident, actor=marketer, batch_size=4)
    broadcasts.broadcast_run_batch(broadcast_id=broadcast.pk, adapter=sandbox())
    with django_assert_num_queries(1):
        progress = broadcast_counts(broadcast=broadcast)
    assert (progress.total, progress.sent, progress.pending) == (9, 4, 5)
    assert progress.percent == 44 and progress.rate == 0.4


# --- The guard and the linter, in the service ---------------------------------------------

def test_a_breach_apology_needs_legal_and_security_signoff(security_officer):
    world = sendable_incident(security_officer, 5, kind=Kind.DATA_BREACH)
    with pytest.raises(ApologyBlocked) as blocked:
        apology_send_start(incident=world.incident, actor=security_officer)
    assert any("plan" in r for r in blocked.value.reasons)
    assert not Broadcast.objects.exists() and not Delivery.objects.exists()


def test_linter_errors_block_the_send(marketer):
    world = sendable_incident(marketer, 5)
    apology = world.incident.apology
    apology_save(incident=world.incident, actor=marketer, expected_version=apology.version,
                 subject=apology.subject, from_name="Northwind",
                 from_email="no-reply@northwind.test", reply_to="",
                 brand_template=apology.brand_template, default_locale="en",
                 bodies=apology.bodies)
    with pytest.raises(ValidationError, match="no-reply|noreply|reply"):
        apology_send_start(incident=world.incident, actor=marketer)
    assert not Broadcast.objects.exists()


def test_no_computed_audience_blocks_the_send(marketer):
    incident = declare(marketer)
    apology_save(incident=incident, actor=marketer, expected_version=0,
                 subject="We made a mistake", from_name="Northwind",
                 from_email="care@northwind.test", reply_to="", brand_template=None,
                 default_locale="en", bodies={"en": "Sorry, we sent the wrong sale."})
    with pytest.raises(ValidationError, match="affected audience"):
        apology_send_start(incident=incident, actor=marketer)


def test_a_changed_audience_since_the_page_was_shown_is_refused(marketer):
    world = sendable_incident(marketer, 5)
    with pytest.raises(ValidationError, match="changed"):
        apology_send_start(incident=world.incident, actor=marketer, expected_count=6)
    assert not Broadcast.objects.exists()


def test_a_suppression_list_incident_never_sends(marketer):
    world = sendable_incident(marketer, 5, kind=Kind.SUPPRESSION_SEND)
    with pytest.raises((ApologyBlocked, ValidationError)):
        apology_send_start(incident=world.incident, actor=marketer)
    assert not Delivery.objects.exists()


def test_rows_in_doubt_are_settled_by_the_esps_tracking_events(marketer):
    """No lookup call: the sandbox's events come in through deliverability and settle the
    ledger; nothing is resent, and the same events again change nothing."""
    from deliverability import services as deliverability

    world = sendable_incident(marketer, 12)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    esp = sandbox(in_doubt_rate=1.0, emit_events=True)
    broadcasts.broadcast_run_batch(broadcast_id=broadcast.pk, adapter=esp)
    assert states(broadcast) == {DeliveryState.IN_DOUBT: 12}
    deliverability.delivery_events_normalise()
    assert states(broadcast) == {DeliveryState.RESOLVED_SENT: 12}
    assert len(esp.store.all_messages()) == 12
    assert Delivery.objects.filter(broadcast=broadcast, esp_message_id="").count() == 0
