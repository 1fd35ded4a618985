"""A tiny time freezer: patches django.utils.timezone.now, which every service calls.

Model-field defaults bound to the real function (default=timezone.now) are not frozen;
services that care about time pass it explicitly.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest import mock


class FrozenClock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@contextmanager
def frozen_time(at: datetime) -> Iterator[FrozenClock]:
    if at.tzinfo is None:
        raise ValueError("freeze at an aware datetime")
    clock = FrozenClock(at)
    with mock.patch("django.utils.timezone.now", side_effect=lambda: clock.now):
        yield clock
