"""Step 3's background work: computing the affected audience out of the web request."""

import logging

from celery import shared_task

from incidents.assessment.services import affected_audience_run, affected_audience_watchdog

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def compute_affected_audience(run_id: int) -> None:
    # No retry: a failed computation is recorded as failed (on the timeline, with its
    # error) and leaves the previous snapshot; the person asks again.
    if affected_audience_run(run_id=run_id) is None:
        log.info("audience computation %s: nothing to do (gone, cancelled or taken)", run_id)


@shared_task(ignore_result=True)
def audience_watchdog() -> list[int]:
    return affected_audience_watchdog()
