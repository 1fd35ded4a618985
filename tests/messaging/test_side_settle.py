"""A chunk's settle run aside (broadcasts.SideSettle): on a connection of its own, while the
worker goes on, with its claim token held until it is done; a failed one leaves the chunk
claimed for the sweep. Committed data (transaction=True): the side connection is another
session and sees nothing uncommitted."""

import psycopg
import pytest
from django.db import connection

from incidents.apology.send import apology_send_start
from messaging import broadcasts
from messaging.esp.sandbox import SandboxAdapter
from messaging.models import Delivery, DeliveryState, WaitingChunk
from tests.messaging.send_world import sendable_incident
from tests.messaging.test_broadcasts import states

pytestmark = pytest.mark.django_db(transaction=True)


def token_free(token: str) -> bool:
    """Whether another session could take the claim token's lock (a dead worker's claim)."""
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        taken = other.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [token]).fetchone()[0]
        if taken:
            other.execute("SELECT pg_advisory_unlock(hashtext(%s))", [token])
        return taken


def test_a_settle_aside_holds_the_claim_until_its_rows_are_written(marketer):
    world = sendable_incident(marketer, 6)
    broadcast = apology_send_start(incident=world.incident, actor=marketer, batch_size=3)
    try:
        outcome = broadcasts.broadcast_run_batch(
            broadcast_id=broadcast.pk, token="aside-1",
            adapter=SandboxAdapter(outcomes={}, seed=7))
        assert outcome.settling and outcome.sent == 3
        assert not token_free("aside-1")  # in flight or done, not yet let go of
    finally:
        broadcasts.side_settle.flush()
    assert token_free("aside-1")
    assert states(broadcast) == {DeliveryState.SENT: 3, DeliveryState.PENDING: 3}
    assert set(Delivery.objects.filter(broadcast=broadcast).values_list(
        "claim_token", flat=True)) == {"aside-1"}


def test_a_failed_settle_aside_leaves_the_chunk_claimed_for_the_sweep(marketer):
    world = sendable_incident(marketer, 3)
    broadcast = apology_send_start(incident=world.incident, actor=marketer)
    claim = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="aside-2")
    assert claim.chunk is not None and len(claim.rows) == 3
    side = broadcasts.SideSettle()
    side.submit("SELECT 1 / 0", [], "aside-2")  # a settle the database refuses
    side.flush()  # logged, and the token let go of: the claim now looks dead
    assert token_free("aside-2")
    assert WaitingChunk.objects.filter(pk=claim.chunk, claim_token="aside-2").exists()
    assert broadcasts.deliveries_mark_abandoned(broadcast_id=broadcast.pk, grace=0) == 3
    assert states(broadcast) == {DeliveryState.IN_DOUBT: 3}
    assert not WaitingChunk.objects.filter(broadcast=broadcast).exists()
