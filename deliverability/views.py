"""Webhook endpoints: anymail's tracking views for every ESP, plus the sandbox ESP's.

Each view is wrapped by `accept_events`, which (1) collects the events anymail parses and
writes them in one INSERT once the whole request is accepted, (2) answers 401/403 for
missing or bad authentication and 400 for a payload that cannot be parsed — anymail alone
would answer 400 and 500 — and stores nothing in either case.
"""

import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps

from anymail.exceptions import AnymailAPIError, AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent, tracking
from anymail.utils import get_anymail_setting, get_request_basic_auth
from anymail.webhooks.base import AnymailCoreWebhookView
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt

from . import ingest, repair, services
from .models import DeliveryKind
from .webhooks.amazon_ses import WebhookNotConfigured
from .webhooks.sns import SnsCertificateUnavailable
from .webhooks.timestamps import note_repair

log = logging.getLogger(__name__)

# What a payload that cannot be parsed raises in anymail's parsers (and ours). Overflow and
# recursion are listed so that anything content can still provoke is a 400, never a 500;
# what can be stored is repaired first (repair.py, webhooks/timestamps.py).
MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError,
             RecursionError, AnymailAPIError)


def _secrets() -> list[str]:
    value = get_anymail_setting("webhook_secret", default=[])
    return [value] if isinstance(value, str) and value else list(value or [])


def _refuse(request: HttpRequest, reason: str) -> HttpResponse:
    log.warning("webhook %s refused: %s", request.path, reason)
    if "HTTP_AUTHORIZATION" not in request.META:
        response = HttpResponse("Authentication required.\n", status=401,
                                content_type="text/plain")
        response["WWW-Authenticate"] = 'Basic realm="Amends webhooks"'
        return response
    return HttpResponse("Authentication failed.\n", status=403, content_type="text/plain")


def accept_events(view: Callable) -> Callable:
    @csrf_exempt
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST" and not _secrets():
            # Authentication is never optional: no secret configured, no events accepted.
            return HttpResponse("Webhooks are disabled: ANYMAIL_WEBHOOK_SECRET is not set.\n",
                                status=403, content_type="text/plain")
        with ingest.collect() as rows, repair.counting() as request_repairs:
            try:
                response = view(request, *args, **kwargs)
            except AnymailWebhookValidationFailure as exc:
                return _refuse(request, str(exc))
            except WebhookNotConfigured as exc:
                return HttpResponse(f"{exc}\n", status=403, content_type="text/plain")
            except SnsCertificateUnavailable as exc:
                # Our side (network, cache): SNS retries a 5xx later.
                log.error("webhook %s: %s", request.path, exc)
                response = HttpResponse("Cannot verify the signature right now.\n",
                                        status=503, content_type="text/plain")
                response["Retry-After"] = "60"
                return response
            except ImproperlyConfigured as exc:
                # e.g. Mailgun's signing key is not set: we cannot authenticate the post.
                log.error("webhook %s is not configured: %s", request.path, exc)
                return HttpResponse("This webhook is not configured on this server.\n",
                                    status=403, content_type="text/plain")
            except MALFORMED as exc:
                # The ESP will not retry a 400: say loudly what was refused.
                log.warning("webhook %s: malformed payload refused: %r", request.path, exc)
                return HttpResponse(f"Malformed webhook payload: {exc}\n"[:500], status=400,
                                    content_type="text/plain")
        if response.status_code < 300 and rows:
            batch = services.raw_events_store(esp=rows[0].esp, rows=rows,
                                              request_repairs=request_repairs)
            if batch.repairs:
                log.warning("webhook %s: stored %d events in batch %s, repaired %s",
                            request.path, len(rows), batch.pk,
                            ", ".join(f"{k}={v}" for k, v in sorted(batch.repairs.items())))
        return response

    return wrapped


# --- The sandbox ESP ----------------------------------------------------------------------

SANDBOX_FIELDS = {"event_id", "type", "recipient", "message_id", "timestamp", "metadata",
                  "description"}
# Our kinds onto anymail's types (the raw row keeps our exact kind: see normalise.classify).
_SANDBOX_TO_ANYMAIL = {
    DeliveryKind.DELIVERED: "delivered", DeliveryKind.BOUNCED_HARD: "bounced",
    DeliveryKind.BOUNCED_SOFT: "bounced", DeliveryKind.DEFERRED: "deferred",
    DeliveryKind.COMPLAINED: "complained", DeliveryKind.UNSUBSCRIBED: "unsubscribed",
    DeliveryKind.REJECTED: "rejected", DeliveryKind.OPENED: "opened",
    DeliveryKind.CLICKED: "clicked", DeliveryKind.OTHER: "unknown",
}


def _sandbox_timestamp(value, where: str) -> datetime | None:
    """None for a number no calendar holds (the caller notes the repair)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, ValueError, OSError):
            return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"{where}.timestamp: expected ISO 8601 with a time zone, "
                         f"or Unix seconds; got {value!r}")
    return parsed


class SandboxTrackingWebhookView(AnymailCoreWebhookView):
    """Events from our sandbox ESP; the shape is documented in docs/deliverability.md.

    Authenticated by the shared basic-auth secret, or by an HMAC-SHA256 of the body in
    `X-Amends-Signature: sha256=<hex>` keyed with ANYMAIL["SANDBOX_WEBHOOK_SIGNING_KEY"].
    """

    esp_name = "Sandbox"
    signal = tracking

    def validate_request(self, request: HttpRequest) -> None:
        signature = request.headers.get("X-Amends-Signature", "")
        key = get_anymail_setting("webhook_signing_key", esp_name=self.esp_name, default="")
        if signature and key:
            expected = "sha256=" + hmac.new(key.encode(), request.body,
                                            hashlib.sha256).hexdigest()
            if constant_time_compare(signature, expected):
                return
            raise AnymailWebhookValidationFailure("Sandbox webhook signature does not match")
        given = get_request_basic_auth(request)
        if not given or not any(constant_time_compare(given, s) for s in _secrets()):
            raise AnymailWebhookValidationFailure("Missing or invalid basic auth")

    def parse_events(self, request: HttpRequest) -> list[AnymailTrackingEvent]:
        payload = repair.loads(request.body.decode("utf-8"))
        if not isinstance(payload, list):
            raise ValueError("body: expected a JSON list of events")
        return [self._event(item, f"events[{i}]") for i, item in enumerate(payload)]

    def _event(self, item, where: str) -> AnymailTrackingEvent:
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object")
        unknown = set(item) - SANDBOX_FIELDS
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        kind = item.get("type")
        if kind not in DeliveryKind.values:
            raise ValueError(f"{where}.type: expected one of {', '.join(DeliveryKind.values)};"
                             f" got {kind!r}")
        recipient = item.get("recipient")
        if not isinstance(recipient, str) or "@" not in recipient:
            raise ValueError(f"{where}.recipient: expected an email address")
        metadata = item.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ValueError(f"{where}.metadata: expected an object")
        for name in ("event_id", "message_id", "description"):
            if not isinstance(item.get(name, ""), str):
                raise ValueError(f"{where}.{name}: expected a string")
        timestamp = _sandbox_timestamp(item.get("timestamp"), where)
        event = AnymailTrackingEvent(
            event_type=_SANDBOX_TO_ANYMAIL[kind], esp_event=item, timestamp=timestamp,
            event_id=item.get("event_id") or None, message_id=item.get("message_id") or None,
            recipient=recipient, metadata=metadata, description=item.get("description"),
        )
        # The raw row keeps our exact kind (bounced_hard vs bounced_soft).
        event.event_type = kind
        if timestamp is None and item.get("timestamp") is not None:
            note_repair(event, item["timestamp"])
        return event


sandbox_tracking = accept_events(SandboxTrackingWebhookView.as_view())
