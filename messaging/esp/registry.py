"""Adapters by provider name: `get_adapter("mailchimp", api_key=..., base_url=...)`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .base import Capabilities, EspAdapter
from .brevo import BrevoAdapter
from .httpclient import RetryPolicy
from .klaviyo import KlaviyoAdapter
from .mailchimp import MailchimpAdapter
from .postmark import PostmarkAdapter
from .sandbox import RedisSandboxStore, SandboxAdapter
from .sendgrid import SendGridAdapter
from .sparkpost import SparkPostAdapter


class Provider(models.TextChoices):
    SANDBOX = "sandbox", _("Sandbox (simulated, offline)")
    MAILCHIMP = "mailchimp", _("Mailchimp")
    SENDGRID = "sendgrid", _("SendGrid")
    BREVO = "brevo", _("Brevo")
    SPARKPOST = "sparkpost", _("SparkPost")
    POSTMARK = "postmark", _("Postmark")
    KLAVIYO = "klaviyo", _("Klaviyo")


ADAPTERS: dict[str, type[EspAdapter]] = {
    Provider.SANDBOX: SandboxAdapter,
    Provider.MAILCHIMP: MailchimpAdapter,
    Provider.SENDGRID: SendGridAdapter,
    Provider.BREVO: BrevoAdapter,
    Provider.SPARKPOST: SparkPostAdapter,
    Provider.POSTMARK: PostmarkAdapter,
    Provider.KLAVIYO: KlaviyoAdapter,
}


def adapter_class(provider: str) -> type[EspAdapter]:
    try:
        return ADAPTERS[provider]
    except KeyError:
        raise ValueError(f"Unknown ESP provider {provider!r}; known: "
                         f"{', '.join(sorted(ADAPTERS))}") from None


def capabilities_for(provider: str) -> Capabilities:
    return adapter_class(provider).capabilities


def get_adapter(provider: str, **config: Any) -> EspAdapter:
    """An adapter for one ESP account. `config` are the adapter's keyword arguments
    (api_key / server_token, base_url, sender, sleep...); retries default to AMENDS_ESP."""
    cls = adapter_class(provider)
    config.setdefault("retry", RetryPolicy.from_settings())
    return cls(**config)


def default_adapter(**overrides: Any) -> EspAdapter:
    """The adapter settings.AMENDS_ESP names (the sandbox unless configured otherwise)."""
    conf = settings.AMENDS_ESP
    provider = conf["PROVIDER"]
    if provider == Provider.SANDBOX:
        options: dict[str, Any] = {
            "latency": conf["SANDBOX_LATENCY"], "failure_rate": conf["SANDBOX_FAILURE_RATE"],
            "seed": conf["SANDBOX_SEED"], "emit_events": True}
        if settings.REDIS_URL:
            options["store"] = RedisSandboxStore(settings.REDIS_URL)
        return get_adapter(provider, **{**options, **overrides})
    return get_adapter(provider, **overrides)


def broadcast_sender_for(account: Any, **overrides: Any) -> EspAdapter:
    """The adapter a broadcast (the apology) sends its batches through, for one EspAccount.

    The one seam between the ledger and the ESPs: credentials come from the account's
    secret variables (settings.AMENDS_ESP_ACCOUNTS, as a campaign stop's do), and each
    provider's batch path is chosen here. `overrides` are adapter options the ledger adds
    (a pause-aware `sleep` and `session`); a provider's adapter that takes neither gets
    only what it accepts.
    """
    from messaging.stops import esp_adapter_for  # stops imports this module

    from .accounts import account_key

    if account.provider != Provider.SANDBOX and not settings.AMENDS_ESP_ACCOUNTS.get(
            account_key(account.label)):
        return esp_adapter_for(account)  # no credentials: raises, naming what to set
    if account.provider == Provider.SANDBOX:
        overrides = {k: v for k, v in overrides.items() if k not in ("session",)}
        overrides.setdefault("emit_events", True)
    elif account.provider == Provider.POSTMARK:
        # Per-recipient bodies straight to /email/batch (postmark_json.py).
        overrides.setdefault("json_batch", True)
    else:
        overrides = {k: v for k, v in overrides.items() if k not in ("session", "sleep")}
    return esp_adapter_for(account, **overrides)
