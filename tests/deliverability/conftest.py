import pytest

from deliverability import feedback, services
from deliverability.webhooks.sns import forget_certificates
from tests.loopback.sns import SnsLoopback

from . import payloads
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


@pytest.fixture(scope="session")
def sns_server():
    with SnsLoopback() as server:
        yield server


@pytest.fixture(autouse=True)
def sns(sns_server, settings):
    """SNS signing for this test: the certificate is served from a loopback server, which
    AMAZON_SNS_CERT_URL_PATTERN trusts (only) for the test's duration."""
    settings.AMAZON_SNS_CERT_URL_PATTERN = sns_server.cert_url_pattern
    payloads.SNS.loopback = sns_server
    forget_certificates()
    sns_server.reset_calls()
    yield sns_server
    payloads.SNS.loopback = None
