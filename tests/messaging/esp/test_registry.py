import pytest

from messaging.esp.base import EspAdapter, StopAction
from messaging.esp.registry import (
    ADAPTERS,
    Provider,
    capabilities_for,
    default_adapter,
    get_adapter,
)
from messaging.esp.sandbox import SandboxAdapter
from messaging.esp.sendgrid import SendGridAdapter


def test_every_provider_has_an_adapter_with_capabilities_in_words():
    assert set(ADAPTERS) == set(Provider.values)
    for provider in Provider.values:
        caps = capabilities_for(provider)
        assert str(caps.explanation) and isinstance(caps.stop_action, StopAction)
        assert issubclass(ADAPTERS[provider], EspAdapter)


def test_get_adapter_builds_by_name():
    adapter = get_adapter("sendgrid", api_key="k", base_url="http://127.0.0.1:1")
    assert isinstance(adapter, SendGridAdapter)
    assert adapter.client.retry.max_attempts == 5  # from settings.AMENDS_ESP


def test_unknown_provider_is_named():
    with pytest.raises(ValueError, match="Unknown ESP provider 'sendmail'; known: brevo"):
        get_adapter("sendmail")


def test_default_is_the_sandbox(settings):
    settings.AMENDS_ESP = {**settings.AMENDS_ESP, "SANDBOX_SEED": 4}
    settings.REDIS_URL = ""
    adapter = default_adapter()
    assert isinstance(adapter, SandboxAdapter) and adapter.seed == 4
