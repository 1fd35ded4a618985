import logging

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError

from . import services

log = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=5, ignore_result=True)
def normalise_delivery_events(self) -> int:
    """Process whatever raw events are pending (any worker may take any of them)."""
    # Clear the flag first: a batch stored from now on queues a new run.
    cache.delete(services.NORMALISE_QUEUED_KEY)
    try:
        result = services.delivery_events_normalise()
        services.delivery_events_dispatch()
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=2 ** self.request.retries * 5) from exc
    return result.processed


@shared_task(ignore_result=True)
def sweep_delivery_events() -> int:
    """Periodic safety net: anything left pending by a lost task or a failed listener."""
    result = services.delivery_events_normalise()
    return result.processed + services.delivery_events_dispatch()


@shared_task(ignore_result=True)
def prune_raw_delivery_events() -> int:
    """Daily: raw webhook payloads past DELIVERABILITY_RAW_RETENTION_DAYS, once normalised."""
    return services.raw_events_prune()
