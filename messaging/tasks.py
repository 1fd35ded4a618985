"""Celery tasks of messaging: thin wrappers over messaging.broadcasts."""

import logging
import time

from celery import shared_task

from . import broadcasts

log = logging.getLogger(__name__)


# A task sends batch after batch for up to this long, then hands over to a fresh task, so
# one chain never holds a worker process for long (other queues, deploys, restarts).
TASK_SLICE = 3.0


@shared_task(ignore_result=True, acks_late=True)
def broadcast_send_batch(broadcast_id: int) -> None:
    """Batches of a broadcast's fan-out; the chain re-enqueues itself while work is left."""
    started = time.monotonic()
    while True:
        outcome = broadcasts.broadcast_run_batch(broadcast_id=broadcast_id)
        if outcome.note:
            log.info("broadcast %s: %s", broadcast_id, outcome.note)
        if outcome.next_in != 0 or time.monotonic() - started > TASK_SLICE:
            break
    if outcome.next_in is not None:
        broadcast_send_batch.apply_async((broadcast_id,), countdown=outcome.next_in or None)


@shared_task(ignore_result=True)
def broadcast_watchdog(stale_after: float | None = None) -> list[int]:
    return broadcasts.broadcast_watchdog(stale_after=stale_after)
