"""Our hardening of anymail's webhook views, one subclass per anymail view class.

- every tracking view: impossible timestamps are dropped instead of failing the batch
  (timestamps.py);
- Mailgun: signatures have an age limit and a token is good for one body (mailgun.py);
- Amazon SES: SNS message signatures are verified, and a SubscriptionConfirmation never
  reaches for AWS credentials that are not configured (amazon_ses.py, sns.py).

anymail's parsers call `json.loads` on the body; `install_tolerant_json` points their
module-level `json` name at a copy of the module whose `loads` survives absurd nesting
(repair.loads), so a 10,000-deep value costs that value, not the batch, and signatures
are still checked on the untouched body.
"""

import importlib
from collections.abc import Callable

from anymail.signals import tracking

from ..repair import tolerant_json_module
from .timestamps import TimestampRepair

_ANYMAIL_WEBHOOK_MODULES = (
    "amazon_ses", "brevo", "mailersend", "mailgun", "mailjet", "mandrill", "postal",
    "postmark", "resend", "sendgrid", "sparkpost", "unisender_go",
)


def install_tolerant_json() -> None:
    shim = tolerant_json_module()
    for name in _ANYMAIL_WEBHOOK_MODULES:
        module = importlib.import_module(f"anymail.webhooks.{name}")
        if getattr(module, "json", None) is not None:
            module.json = shim


def _replacements() -> dict[type, type]:
    from .amazon_ses import AmazonSESTrackingView
    from .mailgun import MailgunTrackingView

    return {cls.replaces: cls for cls in (AmazonSESTrackingView, MailgunTrackingView)}


def hardened_view(callback: Callable) -> Callable:
    """anymail's `as_view()` callback -> the same view built from our subclass."""
    view_class = getattr(callback, "view_class", None)
    if view_class is None or getattr(view_class, "signal", None) is not tracking:
        return callback
    ours = _replacements().get(view_class)
    if ours is None:
        if not hasattr(view_class, "esp_to_anymail_event"):
            return callback
        ours = type(view_class.__name__, (TimestampRepair, view_class),
                    {"__module__": __name__, "__doc__": view_class.__doc__})
    return ours.as_view(**getattr(callback, "view_initkwargs", {}))
