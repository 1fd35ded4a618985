"""Mailgun tracking webhooks with replay protection.

anymail checks Mailgun's HMAC of timestamp + token, but neither the signature's age nor
whether its token was used before: a signature block copied from one real request can be
sent again with any body. Here a signature older (or newer) than the tolerance is refused,
and a token is remembered for twice the tolerance together with the digest of the body it
came with: the same body again (a retry) passes, a different body is refused.
"""

import hashlib
import time

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from ..repair import loads
from .timestamps import TimestampRepair

TOKEN_KEY = "deliverability:mailgun-token:{}"


def _signature_block(request: HttpRequest) -> tuple[str, str]:
    if request.content_type == "application/json":
        block = loads(request.body.decode("utf-8"))["signature"]
        return str(block["timestamp"]), str(block["token"])
    return request.POST["timestamp"], request.POST["token"]


def mailgun_replay_check(request: HttpRequest, *, now: float | None = None) -> None:
    """Raise AnymailWebhookValidationFailure for a stale or reused signature block.

    Call only after the HMAC was verified: a forged request must not use up a token.
    """
    tolerance = settings.MAILGUN_WEBHOOK_TOLERANCE_SECONDS
    timestamp, token = _signature_block(request)
    try:
        age = (now or time.time()) - int(timestamp)
    except ValueError as exc:
        raise AnymailWebhookValidationFailure("Mailgun signature timestamp is not a number"
                                              ) from exc
    if abs(age) > tolerance:
        raise AnymailWebhookValidationFailure(
            f"Mailgun signature timestamp is {int(age)} s from now; the tolerance is "
            f"{tolerance} s (MAILGUN_WEBHOOK_TOLERANCE_SECONDS)")
    key = TOKEN_KEY.format(hashlib.sha256(token.encode()).hexdigest())
    body = hashlib.sha256(request.body).hexdigest()
    # add() is atomic in Redis: of two concurrent uses of a token, one wins.
    if not cache.add(key, body, timeout=2 * tolerance) and cache.get(key) != body:
        raise AnymailWebhookValidationFailure(
            "Mailgun signature token was already used with a different body (replay)")


class MailgunTrackingView(TimestampRepair, MailgunTrackingWebhookView):
    replaces = MailgunTrackingWebhookView

    # anymail runs every validate_request in the MRO itself, subclass first; the replay
    # check must follow the HMAC check, so it hooks the runner instead.
    def run_validators(self, request: HttpRequest) -> None:
        super().run_validators(request)
        mailgun_replay_check(request)
