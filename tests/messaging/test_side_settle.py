"""A chunk's settle run aside (broadcasts.SideSettle): on a connection of its own, while the
worker goes on, with its claim token held until it is done; a failed one leaves the chunk
claimed for the sweep. Committed data (transaction=True): the side connection is another
session and sees nothing uncommitted."""

import psycopg
import pytest
from django.db import connection, transaction

from incidents.assessment.services import affected_recipients
from messaging import broadcasts
from messaging.esp.sandbox import SandboxAdapter
from messaging.models import Broadcast, BroadcastStatus, Delivery, DeliveryState, WaitingChunk
from tests.messaging.send_world import sendable_incident
from tests.messaging.test_broadcasts import states

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def side_connection_closed():
    yield
    broadcasts.side_settle.close()


def sending(world, batch_size: int) -> Broadcast:
    """The apology's broadcast, sending, with its snapshot taken, and no chain enqueued: a
    worker the session runs elsewhere must not claim its chunks while this test does."""
    apology = world.incident.apology
    with transaction.atomic():
        broadcast = broadcasts.broadcast_create(
            source_ref=f"incident:{world.incident.pk}", content_version=apology.version,
            subject=apology.subject, from_email=apology.from_email,
            from_name=apology.from_name, brand_template=apology.brand_template,
            default_locale=apology.default_locale,
            bodies={"en": {"subject": apology.subject, "html": "<p>Sorry</p>",
                           "text": "Sorry"}},
            created_by=None, batch_size=batch_size)
        broadcasts.deliveries_materialise(
            broadcast=broadcast, recipients=affected_recipients(incident=world.incident))
        Broadcast.objects.filter(pk=broadcast.pk).update(status=BroadcastStatus.SENDING)
    return broadcast


def token_free(token: str) -> bool:
    """Whether another session could take the claim token's lock (a dead worker's claim)."""
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        taken = other.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [token]).fetchone()[0]
        if taken:
            other.execute("SELECT pg_advisory_unlock(hashtext(%s))", [token])
        return taken


def test_a_settle_aside_holds_the_claim_until_its_rows_are_written(marketer):
    broadcast = sending(sendable_incident(marketer, 6), batch_size=3)
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
    broadcast = sending(sendable_incident(marketer, 3), batch_size=500)
    claim = broadcasts.deliveries_claim(broadcast_id=broadcast.pk, token="aside-2")
    assert claim.chunk is not None and len(claim.rows) == 3
    side = broadcasts.SideSettle()
    side.submit("SELECT 1 / 0", [], "aside-2")  # a settle the database refuses
    side.close()  # logged, and the token let go of: the claim now looks dead
    assert token_free("aside-2")
    assert WaitingChunk.objects.filter(pk=claim.chunk, claim_token="aside-2").exists()
    assert broadcasts.deliveries_mark_abandoned(broadcast_id=broadcast.pk, grace=0) == 3
    assert states(broadcast) == {DeliveryState.IN_DOUBT: 3}
    assert not WaitingChunk.objects.filter(broadcast=broadcast).exists()
