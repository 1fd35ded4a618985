"""Pytest fixtures: one started loopback ESP per test, stopped afterwards.

Import these names into a conftest.py (pytest only honours `pytest_plugins` in the
rootdir conftest, which is shared, so per-directory conftests import them instead).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .esps import (
    BrevoLoopback,
    KlaviyoLoopback,
    MailchimpLoopback,
    PostmarkLoopback,
    SendGridLoopback,
    SparkPostLoopback,
)


@pytest.fixture
def mailchimp_esp() -> Iterator[MailchimpLoopback]:
    with MailchimpLoopback() as server:
        yield server


@pytest.fixture
def sendgrid_esp() -> Iterator[SendGridLoopback]:
    with SendGridLoopback() as server:
        yield server


@pytest.fixture
def brevo_esp() -> Iterator[BrevoLoopback]:
    with BrevoLoopback() as server:
        yield server


@pytest.fixture
def sparkpost_esp() -> Iterator[SparkPostLoopback]:
    with SparkPostLoopback() as server:
        yield server


@pytest.fixture
def postmark_esp() -> Iterator[PostmarkLoopback]:
    with PostmarkLoopback() as server:
        yield server


@pytest.fixture
def klaviyo_esp() -> Iterator[KlaviyoLoopback]:
    with KlaviyoLoopback() as server:
        yield server
