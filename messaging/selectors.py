import math
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import translation
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from audiences.models import Subscriber

from .models import MAX_BATCH, BrandTemplate, EspAccount


def brand_template_list() -> QuerySet[BrandTemplate]:
    return BrandTemplate.objects.all()


def brand_template_default() -> BrandTemplate | None:
    return BrandTemplate.objects.filter(is_default=True).first()


def default_brand_name() -> str:
    template = brand_template_default()
    return template.brand_name if template else ""


def unsubscribe_subscriber(*, subscriber_id: int | None) -> Subscriber | None:
    """The person an unsubscribe link names (its MAC already checked), if they exist."""
    if subscriber_id is None:
        return None
    return Subscriber.objects.filter(pk=subscriber_id).first()


def subscriber_language(subscriber: Subscriber) -> str:
    """The site language closest to the subscriber's locale ("pl-PL" → "pl"), else ours."""
    try:
        return translation.get_supported_language_variant(
            (subscriber.locale or "").replace("_", "-").lower())
    except LookupError:
        return settings.LANGUAGE_CODE


def masked_address(email: str) -> str:
    """Enough of the address to recognise it, not enough to harvest it: "a•••@example.com"."""
    local, _sep, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"


# --- Sending limits of an ESP account (issue 13) ------------------------------------------

@dataclass(frozen=True)
class AccountSendLimits:
    """How fast and in what batches an account sends: the account's own limits, else the
    ESP's documented per-call maximum and usual rate."""

    provider: str
    label: str
    rate_per_second: int
    batch_size: int
    per_recipient_outcome: bool


def account_send_limits(account: EspAccount | None) -> AccountSendLimits | None:
    """None when Amends cannot send through this account's ESP. No account: the sandbox."""
    from .esp.registry import Provider, send_limits

    provider = account.provider if account is not None else Provider.SANDBOX
    limits = send_limits(provider)
    if limits is None:
        return None
    return AccountSendLimits(
        provider=provider, label=account.label if account is not None else "",
        rate_per_second=(account.rate_per_second if account is not None
                         and account.rate_per_second else limits.default_rate),
        batch_size=min(account.batch_size if account is not None and account.batch_size
                       else limits.max_per_call, MAX_BATCH),
        per_recipient_outcome=limits.per_recipient_outcome)


def send_settings_within(*, limits: AccountSendLimits, rate_per_second: int | None = None,
                         batch_size: int | None = None) -> tuple[int, int]:
    """The rate and batch size a send uses: the account's, or lower ones asked for; never
    higher (ValidationError naming the field and the account's limit)."""
    rate = limits.rate_per_second if rate_per_second is None else rate_per_second
    batch = limits.batch_size if batch_size is None else batch_size
    errors: dict[str, str] = {}
    account = limits.label or _("the sandbox")
    if rate < 1 or rate > limits.rate_per_second:
        errors["rate_per_second"] = _(
            "The rate must be between 1 and %(max)s messages a second, the limit of "
            "%(account)s.") % {"max": number_format(limits.rate_per_second,
                                                      force_grouping=True),
                               "account": account}
    if batch < 1 or batch > limits.batch_size:
        errors["batch_size"] = _(
            "The batch size must be between 1 and %(max)s messages a call, the limit of "
            "%(account)s.") % {"max": number_format(limits.batch_size, force_grouping=True),
                               "account": account}
    if errors:
        raise ValidationError(errors)
    return rate, batch


def send_duration(count: int, rate_per_second: int) -> str:
    """How long sending `count` messages takes at a rate: "about 3 min 20 s"."""
    seconds = math.ceil(count / max(rate_per_second, 1))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("about %(h)s h %(m)s min") % {"h": hours, "m": minutes}
    if minutes:
        return _("about %(m)s min %(s)s s") % {"m": minutes, "s": secs}
    return _("about %(s)s s") % {"s": secs}


def send_estimate(count: int, limits: AccountSendLimits, rate_per_second: int | None = None
                  ) -> str:
    """"1,000,000 people at 5,000/s: about 3 min 20 s" for the send confirmation."""
    rate = rate_per_second or limits.rate_per_second
    return _("%(n)s people at %(rate)s/s: %(time)s") % {
        "n": number_format(count, force_grouping=True),
        "rate": number_format(rate, force_grouping=True), "time": send_duration(count, rate)}
