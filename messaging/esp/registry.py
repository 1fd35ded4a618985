"""Adapters by provider name: `get_adapter("mailchimp", api_key=..., base_url=...)`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .accounts import account_key
from .base import BatchSender, Capabilities, EspAdapter
from .batch import HttpBatchSender, SendLimits
from .brevo import BrevoAdapter
from .brevo_batch import BrevoBatchSender
from .httpclient import CLIENT_OPTIONS, RetryPolicy
from .klaviyo import KlaviyoAdapter
from .mailchimp import MailchimpAdapter
from .mailgun_batch import MailgunBatchSender
from .mailjet_batch import MailjetBatchSender
from .mandrill_batch import MandrillBatchSender
from .postmark import PostmarkAdapter
from .postmark_json import PostmarkJsonSender
from .sandbox import RedisSandboxStore, SandboxAdapter
from .send_only import MailgunAdapter, MailjetAdapter, MandrillAdapter, SesAdapter
from .sendgrid import SendGridAdapter
from .sendgrid_batch import SendGridBatchSender
from .ses_batch import SesBatchSender
from .sparkpost import SparkPostAdapter
from .sparkpost_batch import SparkPostBatchSender


class Provider(models.TextChoices):
    SANDBOX = "sandbox", _("Sandbox (simulated, offline)")
    MAILCHIMP = "mailchimp", _("Mailchimp")
    SENDGRID = "sendgrid", _("SendGrid")
    BREVO = "brevo", _("Brevo")
    SPARKPOST = "sparkpost", _("SparkPost")
    POSTMARK = "postmark", _("Postmark")
    KLAVIYO = "klaviyo", _("Klaviyo")
    MAILGUN = "mailgun", _("Mailgun")
    SES = "ses", _("Amazon SES")
    MAILJET = "mailjet", _("Mailjet")
    MANDRILL = "mandrill", _("Mandrill (Mailchimp Transactional)")


ADAPTERS: dict[str, type[EspAdapter]] = {
    Provider.SANDBOX: SandboxAdapter,
    Provider.MAILCHIMP: MailchimpAdapter,
    Provider.SENDGRID: SendGridAdapter,
    Provider.BREVO: BrevoAdapter,
    Provider.SPARKPOST: SparkPostAdapter,
    Provider.POSTMARK: PostmarkAdapter,
    Provider.KLAVIYO: KlaviyoAdapter,
    Provider.MAILGUN: MailgunAdapter,
    Provider.SES: SesAdapter,
    Provider.MAILJET: MailjetAdapter,
    Provider.MANDRILL: MandrillAdapter,
}

# The batch path of each ESP that has one (issue 13): broadcasts send through these.
BATCH_SENDERS: dict[str, type[HttpBatchSender]] = {
    Provider.POSTMARK: PostmarkJsonSender,
    Provider.SENDGRID: SendGridBatchSender,
    Provider.MAILGUN: MailgunBatchSender,
    Provider.SPARKPOST: SparkPostBatchSender,
    Provider.SES: SesBatchSender,
    Provider.BREVO: BrevoBatchSender,
    Provider.MAILJET: MailjetBatchSender,
    Provider.MANDRILL: MandrillBatchSender,
}

# The sandbox simulates an ESP; its figures are what a send from the demo uses.
SANDBOX_LIMITS = SendLimits(max_per_call=1000, default_rate=5000, per_recipient_outcome=True)


def adapter_class(provider: str) -> type[EspAdapter]:
    try:
        return ADAPTERS[provider]
    except KeyError:
        raise ValueError(f"Unknown ESP provider {provider!r}; known: "
                         f"{', '.join(sorted(ADAPTERS))}") from None


def capabilities_for(provider: str) -> Capabilities:
    return adapter_class(provider).capabilities


def send_limits(provider: str) -> SendLimits | None:
    """The ESP's documented per-call maximum and our default rate; None when Amends cannot
    send through this ESP (Mailchimp and Klaviyo campaigns are only controlled)."""
    if provider == Provider.SANDBOX:
        return SANDBOX_LIMITS
    sender = BATCH_SENDERS.get(provider)
    return sender.limits if sender is not None else None


def _account_options(account: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    options = dict(settings.AMENDS_ESP_ACCOUNTS.get(account_key(account.label), {}))
    options.update(overrides)
    if not options and account.provider != Provider.SANDBOX:
        key = account_key(account.label)
        raise ValueError(
            f"ESP account “{account.label}” ({account.provider}) has no credentials: set "
            f"AMENDS_ESP_ACCOUNT_{key}_API_KEY (and _BASE_URL if needed) or an entry "
            f"“{account.label}” in AMENDS_ESP_ACCOUNTS.")
    return options


def batch_sender(provider: str, **options: Any) -> BatchSender:
    """The batch sending path for one ESP account, from the account's options (api_key /
    server_token / domain..., base_url) and client options (retry, sleep, rng, timeout,
    session, max_per_call). The sandbox adapter is its own sender."""
    if provider == Provider.SANDBOX:
        return default_adapter(**options)
    cls = BATCH_SENDERS.get(provider)
    if cls is None:
        raise ValueError(f"{provider}: Amends has no sending path for this ESP (its API "
                         f"controls campaigns only); known: {', '.join(sorted(BATCH_SENDERS))}")
    options.setdefault("retry", RetryPolicy.from_settings())
    try:
        return cls(**options)
    except TypeError as exc:  # an option this sender does not take
        raise ValueError(f"{cls.esp_name}: {exc}") from exc


def batch_sender_for(account: Any, **overrides: Any) -> BatchSender:
    """The batch sender for an EspAccount (anything with `provider` and `label`), its
    credentials from settings.AMENDS_ESP_ACCOUNTS (the account's secret variables).
    `max_per_call` is the account's batch size unless overridden."""
    options = _account_options(account, overrides)
    batch_size = getattr(account, "batch_size", None)
    if batch_size and account.provider != Provider.SANDBOX:
        options.setdefault("max_per_call", batch_size)
    return batch_sender(account.provider, **options)


def sending_adapter_for(account: Any, **overrides: Any) -> EspAdapter:
    """An adapter for the account whose send_batch is the batch path (for broadcasts:
    sending, and lookups where the ESP has them)."""
    options = _account_options(account, overrides)
    if account.provider == Provider.SANDBOX:
        return default_adapter(**options)
    if account.provider == Provider.POSTMARK:
        return get_adapter(Provider.POSTMARK, json_batch=True, **options)
    if account.provider in (Provider.SENDGRID, Provider.BREVO, Provider.SPARKPOST):
        control = {k: v for k, v in options.items() if k in ("api_key", "base_url",
                                                             *CLIENT_OPTIONS)}
        adapter = get_adapter(account.provider, **control,
                              sender=batch_sender_for(account, **overrides))
        adapter.merges_client_side = True  # type: ignore[attr-defined]
        return adapter
    return get_adapter(account.provider, **options)


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
            options["store"] = RedisSandboxStore.from_settings()
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
    # Each ESP's batch path (Postmark's per-person JSON, the HTTP batch senders); they all
    # take the ledger's pause-aware sleep and session, so a pause interrupts their retries.
    return sending_adapter_for(account, **overrides)
