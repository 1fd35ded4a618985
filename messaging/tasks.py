"""Celery tasks of messaging: thin wrappers over messaging.broadcasts."""

import logging

from celery import shared_task

from . import broadcasts

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, acks_late=True)
def broadcast_send_batch(broadcast_id: int) -> None:
    """One batch of a broadcast's fan-out; the chain re-enqueues itself while work is left."""
    outcome = broadcasts.broadcast_run_batch(broadcast_id=broadcast_id)
    if outcome.note:
        log.info("broadcast %s: %s", broadcast_id, outcome.note)
    if outcome.next_in is not None:
        broadcast_send_batch.apply_async((broadcast_id,), countdown=outcome.next_in or None)


@shared_task(ignore_result=True)
def broadcast_watchdog(stale_after: float | None = None) -> list[int]:
    return broadcasts.broadcast_watchdog(stale_after=stale_after)
