"""Celery tasks of messaging: thin, by id, the work lives in services."""

import logging

from celery import shared_task

from .esp.base import EspTemporaryError

logger = logging.getLogger(__name__)

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
        logger.info("campaign stop %s: nothing to do (settled or held elsewhere)", stop_id)
