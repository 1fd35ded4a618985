"""What a long-lived process (a gunicorn worker, a Celery worker) does once it has loaded
the framework."""

import ctypes
import ctypes.util
import gc

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BELOW = 32 * 1024 * 1024  # the most M_MMAP_THRESHOLD takes on 64-bit glibc
TRIM_ABOVE = 256 * 1024 * 1024


def freeze_loaded_objects() -> None:
    """Keep everything loaded so far out of the cyclic collector's reach: it lives as long as
    the process. Otherwise the full collections that big work triggers (a 1,000-event
    webhook, a 1,000-message batch: tens of thousands of new objects) walk all of Django,
    Celery and the app every time."""
    gc.collect()
    gc.freeze()


def reuse_freed_memory() -> bool:
    """Let glibc's malloc keep the memory a request or a batch frees, for the next one.

    A batch's ESP call body is a few megabytes. Above its mmap threshold glibc maps each
    such buffer afresh and unmaps it when freed, so every batch paid a page fault per 4 kB
    touched, about 2,300 a batch (a tenth of a worker's time). Served from the heap and not
    trimmed, the same pages are used again. Returns False where the C library is not glibc
    (nothing changes there)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BELOW)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_ABOVE))


def settle_long_lived_process() -> None:
    freeze_loaded_objects()
    reuse_freed_memory()
