"""The apology fan-out with a real Celery worker on Redis, through a loopback Postmark.

Counting happens at the loopback ESP: what it accepted is what people would receive.
Includes the fault tests of issue 4: a worker SIGKILLed at random moments, and an ESP
answering 429/5xx on 30% of calls.
"""

import random
import time
from collections import Counter

import pytest

from incidents.apology.send import apology_send_pause, apology_send_resume, apology_send_start
from messaging import broadcasts
from messaging.models import Broadcast, BroadcastStatus, Delivery, DeliveryState
from tests.conftest import wait_for
from tests.messaging.send_world import sendable_incident

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def received(esp) -> Counter:
    return esp.recipient_counts()


def ledger(broadcast) -> dict[str, str]:
    return dict(Delivery.objects.filter(broadcast=broadcast).values_list("email", "state"))


def status(broadcast) -> str:
    return Broadcast.objects.values_list("status", flat=True).get(pk=broadcast.pk)


def test_each_affected_person_gets_exactly_one_message_excluded_never(marketer, send_worker,
                                                                        send_esp):
    world = sendable_incident(marketer, 1200, provider="postmark")
    broadcast = apology_send_start(incident=world.incident, actor=marketer,
                                   batch_size=500, rate_per_second=5000)
    wait_for(lambda: status(broadcast) == BroadcastStatus.COMPLETED, timeout=60)
    counts = received(send_esp)
    assert counts == Counter(world.included)
    assert not set(counts) & world.excluded
    assert set(ledger(broadcast).values()) == {DeliveryState.SENT}
    sent = send_esp.deliveries[0]
    assert sent.metadata["broadcast_id"] == str(broadcast.pk)
    assert "wrong sale" in sent.subject or sent.subject == "We made a mistake"


def test_after_pause_no_message_leaves_and_resume_completes(marketer, send_worker, send_esp):
    world = sendable_incident(marketer, 1500, provider="postmark")
    broadcast = apology_send_start(incident=world.incident, actor=marketer,
                                   batch_size=100, rate_per_second=400)
    wait_for(lambda: len(send_esp.deliveries) >= 200, timeout=60)
    apology_send_pause(incident=world.incident, actor=marketer)
    acknowledged = time.time()
    # A batch already at the ESP settles; nothing starts after the acknowledgement.
    wait_for(lambda: chains_idle(broadcast), timeout=30)
    late = [c for c in send_esp.calls_to("POST", "/email/batch") if c.at > acknowledged]
    assert not late
    received_at_pause = sum(received(send_esp).values())
    assert received_at_pause < 1500
    sent_rows = Delivery.objects.filter(broadcast=broadcast, state=DeliveryState.SENT).count()
    assert sent_rows == received_at_pause
    apology_send_resume(incident=world.incident, actor=marketer)
    wait_for(lambda: status(broadcast) == BroadcastStatus.COMPLETED, timeout=60)
    assert received(send_esp) == Counter(world.included)


def chains_idle(broadcast) -> bool:
    """No batch task runs, none is at the ESP and no row is claimed: read from the locks
    a running task and a batch at the ESP hold (broadcast_liveness), not from a pause. After
    a pause this is stable: a task that starts later finds the broadcast paused at its
    claim and claims nothing."""
    live = broadcasts.broadcast_liveness(broadcast=broadcast)
    return not live.chains and not live.at_esp and not Delivery.objects.filter(
        broadcast=broadcast, state=DeliveryState.CLAIMED).exists()


def _check_invariant(world, broadcast, esp) -> int:
    """Nobody got two; everyone who got one is sent or in doubt; sent means got one.
    Returns how many rows are in doubt."""
    counts = received(esp)
    assert not esp.duplicates()
    rows = ledger(broadcast)
    for email, state in rows.items():
        got = counts.get(email, 0)
        if state == DeliveryState.SENT:
            assert got == 1, (email, state)
        elif got:
            assert state in (DeliveryState.IN_DOUBT, DeliveryState.RESOLVED_SENT), (email, state)
    assert not set(counts) & world.excluded
    return sum(1 for state in rows.values() if state == DeliveryState.IN_DOUBT)


def test_fault_sigkill_the_worker_three_times(marketer, send_worker, send_esp):
    """5,000 recipients; the worker is killed at random moments and restarted; 0 duplicates
    throughout, and 0 misses once the in-doubt rows are reconciled from the ESP."""
    rng = random.Random(4)
    world = sendable_incident(marketer, 5000, provider="postmark")
    # The ESP takes each batch at once but answers 0.3 s later: a kill often lands between
    # the ESP's accept and our commit (the case reconciliation is for).
    send_esp.delay_next(0.3, times=10_000)
    broadcast = apology_send_start(incident=world.incident, actor=marketer,
                                   batch_size=250, rate_per_second=1500)
    kills, in_doubt = 0, []
    while kills < 3:
        before = len(send_esp.deliveries)
        wait_for(lambda b=before: len(send_esp.deliveries) > b
                 or status(broadcast) == BroadcastStatus.COMPLETED, timeout=60)
        time.sleep(rng.uniform(0.0, 0.4))
        if status(broadcast) == BroadcastStatus.COMPLETED:
            break
        send_worker.kill()
        kills += 1
        # What the next batch (or the watchdog) does: claims no live worker holds.
        wait_for(lambda: broadcasts.deliveries_mark_abandoned(
            broadcast_id=broadcast.pk, grace=0) >= 0 and not Delivery.objects.filter(
            broadcast=broadcast, state=DeliveryState.CLAIMED).exists(), timeout=30)
        in_doubt.append(_check_invariant(world, broadcast, send_esp))
        send_worker.start()
        broadcasts.broadcast_watchdog(stale_after=0)  # the beat's job: restart the chain
    assert kills == 3, ("the send finished before the worker could be killed three times",
                        len(send_esp.deliveries), Counter(ledger(broadcast).values()))
    wait_for(lambda: status(broadcast) == BroadcastStatus.COMPLETED, timeout=90)
    _check_invariant(world, broadcast, send_esp)
    assert received(send_esp) == Counter(world.included)  # reconciled: 0 misses
    states = Counter(ledger(broadcast).values())
    assert set(states) <= {DeliveryState.SENT, DeliveryState.RESOLVED_SENT}
    assert sum(states.values()) == 5000
    print(f"in doubt after each kill: {in_doubt}; final: {dict(states)}")


def test_fault_esp_answers_429_or_5xx_on_30_percent_of_calls(marketer, send_worker,
                                                             send_esp):
    world = sendable_incident(marketer, 3000, provider="postmark")
    send_esp.set_faults(0.3, seed=2, paths=r"^/email/batch$")
    broadcast = apology_send_start(incident=world.incident, actor=marketer,
                                   batch_size=200, rate_per_second=5000)
    wait_for(lambda: status(broadcast) == BroadcastStatus.COMPLETED, timeout=90)
    faults = [c for c in send_esp.calls_to("POST", "/email/batch") if c.fault]
    assert 429 in {c.status for c in faults} and {500, 503} & {c.status for c in faults}
    assert not send_esp.duplicates()
    assert received(send_esp) == Counter(world.included)
