"""Celery tasks of audiences: thin, by id; the work lives in services."""

import logging

from celery import shared_task

from . import services

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, acks_late=True)
def audience_import_run(import_id: int) -> None:
    """Read and apply one uploaded CSV file (an AudienceImport row)."""
    done = services.audience_import_execute(import_id=import_id)
    if done is None:
        log.info("audience import %s: nothing to do (missing, finished or running)", import_id)


@shared_task(ignore_result=True)
def audience_import_watchdog() -> dict[str, int]:
    return services.audience_import_watchdog()
