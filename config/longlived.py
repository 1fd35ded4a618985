"""What a long-lived process (a gunicorn worker, a Celery worker) does once it has loaded
the framework."""

import gc


def freeze_loaded_objects() -> None:
    """Keep everything loaded so far out of the cyclic collector's reach: it lives as long as
    the process. Otherwise the full collections that big work triggers (a 1,000-event
    webhook, a 1,000-message batch: tens of thousands of new objects) walk all of Django,
    Celery and the app every time."""
    gc.collect()
    gc.freeze()
