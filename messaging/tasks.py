"""Celery tasks of messaging: thin, by id; the work lives in services (stops, broadcasts)."""

import logging
import time

from celery import shared_task

from . import broadcasts
from .esp.base import EspTemporaryError

log = logging.getLogger(__name__)


STOP_MAX_RETRIES = 6


def _countdown(exc: EspTemporaryError, retries: int) -> float:
    """The ESP's Retry-After when it gave one, else 5 s doubling up to 5 minutes."""
    if exc.retry_after is not None:
        return max(1.0, exc.retry_after)
    return min(300.0, 5.0 * 2 ** retries)


@shared_task(bind=True, max_retries=STOP_MAX_RETRIES, acks_late=True)
def campaign_stop_run(self, stop_id: int) -> None:
    """Stop one campaign at its ESP (one CampaignStop row)."""
    from .stops import campaign_stop_execute

    try:
        stop = campaign_stop_execute(stop_id=stop_id,
                                     final_attempt=self.request.retries >= self.max_retries)
    except EspTemporaryError as exc:
        raise self.retry(exc=exc, countdown=_countdown(exc, self.request.retries)) from exc
    if stop is None:
        log.info("campaign stop %s: nothing to do (settled or held elsewhere)", stop_id)


# --- Broadcasts: the apology fan-out -------------------------------------------------


# A task sends batch after batch for up to this long, then hands over to a fresh task, so
# one chain never holds a worker process for long (other queues, deploys, restarts).
TASK_SLICE = 3.0


@shared_task(ignore_result=True, acks_late=True)
def broadcast_send_batch(broadcast_id: int) -> None:
    """Batches of a broadcast's fan-out; the chain re-enqueues itself while work is left.
    While it runs it holds the broadcast's chain lock, which is how the watchdog tells a
    dead chain from a busy one."""
    started = time.monotonic()
    with broadcasts.chain_running(broadcast_id):
        try:
            while True:
                outcome = broadcasts.broadcast_run_batch(broadcast_id=broadcast_id)
                if outcome.note:
                    log.info("broadcast %s: %s", broadcast_id, outcome.note)
                if outcome.next_in != 0 or time.monotonic() - started > TASK_SLICE:
                    break
        finally:
            broadcasts.side_settle.flush()  # nothing of this task is left in flight
    if outcome.next_in is not None:
        broadcast_send_batch.apply_async((broadcast_id,), countdown=outcome.next_in or None)


@shared_task(ignore_result=True)
def broadcast_watchdog(stale_after: float | None = None) -> list[int]:
    return broadcasts.broadcast_watchdog(stale_after=stale_after)


@shared_task(ignore_result=True)
def broadcast_reconcile_task(broadcast_id: int) -> None:
    """Ask the ESP again about a broadcast's rows in doubt (the watchdog's periodic retry);
    rows it finds missing are sent (the broadcast reopens)."""
    from .models import Broadcast

    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    if broadcast is None:
        log.warning("broadcast %s is gone; nothing to reconcile", broadcast_id)
        return
    result = broadcasts.broadcast_reconcile(broadcast=broadcast)
    log.info("broadcast %s reconciled: %s", broadcast_id, result)
