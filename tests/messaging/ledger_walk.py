"""One walk through the delivery ledger's snapshot and claims, run in-process on
PostgreSQL (tests/messaging/test_broadcasts.py) and on the embedded SQLite
(tests/messaging/ledger_embedded_drive.py): both databases must tell the same story."""

from incidents.apology.send import apology_send_cancel, apology_send_start, broadcast_counts
from messaging import broadcasts
from messaging.esp.sandbox import SandboxAdapter
from messaging.models import Delivery, WaitingChunk
from tests.messaging.send_world import sendable_incident


def ledger(broadcast) -> dict:
    return {state: n for state, (n, _r)
            in sorted(broadcasts.deliveries_state_counts(broadcast.pk).items())}


def ledger_walk(maya) -> dict:
    """Seven people in chunks of three: claims of two (the first chunk written out), one
    (its rest, a pending row) and three (a whole chunk), then a cancel while one person is
    still in the snapshot and the whole chunk has not reached its gate."""
    world = sendable_incident(maya, 7, excluded=1)
    broadcast = apology_send_start(incident=world.incident, actor=maya, batch_size=3)
    seen: dict = {"chunks": sorted(WaitingChunk.objects.filter(broadcast=broadcast)
                                   .values_list("size", flat=True)),
                  "rows_at_start": Delivery.objects.filter(broadcast=broadcast).count()}
    first = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="a", limit=2)
    seen["first_claim"] = [r.email for r in first.rows]
    seen["after_first"] = ledger(broadcast)
    # The chunk's third person was written pending: the next claim takes them first.
    second = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="b")
    seen["second_claim"] = [r.email for r in second.rows]
    third = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="c")
    seen["third_claim"] = sorted(r.email for r in third.rows)  # in the chunk's own order
    apology_send_cancel(incident=world.incident, actor=maya)
    seen["after_cancel"] = ledger(broadcast)
    # The third claim was a whole chunk, still without rows: its gate sees the cancel and
    # writes its people cancelled.
    seen["third_released"] = broadcasts.deliveries_send_claimed(
        broadcast=broadcast, claim=third, token="c",
        adapter=SandboxAdapter(outcomes={}, seed=7)).released
    seen["cancelled_rows"] = sorted(Delivery.objects.filter(
        broadcast=broadcast, state="cancelled").values_list("email", flat=True))
    seen["chunks_left"] = WaitingChunk.objects.filter(broadcast=broadcast).count()
    progress = broadcast_counts(broadcast=broadcast)
    seen["progress"] = [progress.total, progress.claimed, progress.cancelled,
                        progress.pending]
    seen["everyone_once"] = sorted(Delivery.objects.filter(broadcast=broadcast)
                                   .values_list("email", flat=True)) == sorted(world.included)
    return seen


# What both databases must show (sendable_incident's people are p0…p6, by subscriber id).
EXPECTED = {
    "chunks": [1, 3, 3], "rows_at_start": 0,
    "first_claim": ["p0@example.test", "p1@example.test"],
    "after_first": {"claimed": 2, "pending": 5},
    "second_claim": ["p2@example.test"],
    "third_claim": ["p3@example.test", "p4@example.test", "p5@example.test"],
    "after_cancel": {"cancelled": 1, "claimed": 6}, "third_released": 3,
    "cancelled_rows": ["p3@example.test", "p4@example.test", "p5@example.test",
                       "p6@example.test"],
    "chunks_left": 0, "progress": [7, 3, 4, 0], "everyone_once": True,
}
