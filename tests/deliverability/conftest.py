import pytest

from deliverability import feedback, services

from .payloads import MAILGUN_KEY


@pytest.fixture
def mailgun_signing_key(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    return MAILGUN_KEY


@pytest.fixture
def no_listeners():
    """Tests that register listeners leave the registry as they found it."""
    before = feedback.delivery_listeners()
    yield
    for listener in feedback.delivery_listeners():
        if listener not in before:
            feedback.delivery_listener_unregister(listener)


@pytest.fixture(params=["postgresql", "portable"])
def storage_path(request, monkeypatch):
    """Run a test through the PostgreSQL fast path (COPY, INSERT ... SELECT) and through
    the portable ORM path the embedded SQLite run uses."""
    if request.param == "portable":
        monkeypatch.setattr(services.connection, "vendor", "sqlite")
    return request.param
