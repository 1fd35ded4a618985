"""Sending through django-anymail: batch sends with merge_data and our metadata.

Messages with the same content (subject, bodies, sender, reply-to, headers) go out as one
anymail batch send: one ESP call, one individual message per recipient (never one message
with everyone in To), per-recipient `merge_data` for the ESP's merge tags and
`merge_metadata` so tracking events come back carrying our broadcast and recipient ids.

What a failure means for exactly-once sending:
- 429, or a connection that never opened: the ESP certainly did not take the messages.
  We retry with backoff; if that runs out, the call raises EspTemporaryError (or, when an
  earlier group of the same call already went out, those recipients come back FAILED).
- 5xx, a timeout or a dropped connection after the request left: the ESP may have taken
  them. Those recipients come back UNKNOWN (in doubt) and are never retried here.
- other 4xx: the ESP refused the whole call; recipients come back FAILED with its words.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from email.utils import formataddr
from typing import Any

from anymail.exceptions import AnymailAPIError, AnymailError
from anymail.message import AnymailMessage
from django.core.mail import get_connection
from django.utils.translation import gettext_lazy as _

from core.sentences import said

from ..rendering import header_merge_data, message_headers
from .base import (
    BatchSender,
    Capabilities,
    ControlResult,
    EspAdapter,
    EspError,
    EspNotSupported,
    EspTemporaryError,
    OutgoingMessage,
    RecipientResult,
    RecipientStatus,
    SentMessage,
    StopAction,
)
from .batch import group_for_batches, json_or_text, result
from .httpclient import Refused, RetryPolicy, describe, never_sent, parse_retry_after, retry_refused

logger = logging.getLogger(__name__)

STATUS_FROM_ANYMAIL = {
    "sent": RecipientStatus.ACCEPTED,
    "queued": RecipientStatus.QUEUED,
    "scheduled": RecipientStatus.QUEUED,
    "rejected": RecipientStatus.REJECTED,
    "invalid": RecipientStatus.REJECTED,
    "failed": RecipientStatus.FAILED,
    "unknown": RecipientStatus.UNKNOWN,
}


# anymail backends that send per-recipient headers in a batch (`merge_headers`); with the
# others each message's own headers (List-Unsubscribe is per person) make it a call alone.
MERGE_HEADERS_BACKENDS = frozenset({"brevo", "mailgun", "mailjet", "postmark", "resend",
                                    "sendgrid", "sparkpost", "unisender_go", "test"})


class AnymailSender:
    """Sends OutgoingMessages through one anymail backend (one ESP account)."""

    def __init__(self, *, backend: str, backend_options: Mapping[str, Any] | None = None,
                 esp_name: str = "", max_per_call: int = 500,
                 retry: RetryPolicy | None = None, retry_statuses: Sequence[int] = (429,),
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        if max_per_call < 1:
            raise ValueError(f"max_per_call must be >= 1, got {max_per_call}")
        self.backend = backend
        # Per-account overrides of anymail settings (api_key, server_token, api_url...).
        # ignore_recipient_status: a refused recipient is a result for us, not an exception.
        self.backend_options = {"ignore_recipient_status": True, **(backend_options or {})}
        self.esp_name = esp_name or backend.rsplit(".", 2)[-2]
        self.merges_headers = backend.rsplit(".", 2)[-2] in MERGE_HEADERS_BACKENDS
        self.max_per_call = max_per_call
        self.retry = retry or RetryPolicy.from_settings()
        self.retry_statuses = frozenset(retry_statuses)
        self.sleep = sleep
        self.rng = rng or random.Random()

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        results: dict[int, RecipientResult] = {}
        connection = get_connection(self.backend, **self.backend_options)
        connection.open()
        try:
            for group in group_for_batches(messages, self.max_per_call,
                                           per_recipient_headers=self.merges_headers):
                batch = [messages[i] for i in group]
                try:
                    outcome = self._send_group(connection, batch)
                except EspTemporaryError as exc:
                    if not results:
                        raise  # nothing of this call went out: the whole call may be retried
                    outcome = [self._result(m, RecipientStatus.FAILED, error=str(exc))
                               for m in batch]
                results.update(zip(group, outcome, strict=True))
        finally:
            connection.close()
        return [results[i] for i in range(len(messages))]

    def lookup_messages(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        raise EspNotSupported(f"{self.esp_name}: looking messages up is not supported",
                              provider=self.esp_name)

    # --- one ESP call ----------------------------------------------------------------------
    def _build(self, connection: Any, batch: list[OutgoingMessage]) -> AnymailMessage:
        first = batch[0]
        message = AnymailMessage(
            subject=first.subject, body=first.text or first.html,
            from_email=first.from_email,
            to=[formataddr((m.to_name, m.to)) if m.to_name else m.to for m in batch],
            reply_to=list(first.reply_to), connection=connection)
        headers = {m.to: message_headers(m) for m in batch}
        if self.merges_headers:
            # The group's shared headers on the message (the group shares first.headers),
            # each person's own (List-Unsubscribe) as merge_headers.
            message.extra_headers = {k: v for k, v in headers[first.to].items()
                                     if k in first.headers}
            own = {to: {k: v for k, v in h.items() if k not in first.headers}
                   for to, h in headers.items()}
            if any(own.values()):
                message.merge_headers = own
        else:
            # Grouped by their full headers (group_for_batches): all alike, mostly alone.
            message.extra_headers = dict(headers[first.to])
        if first.html and first.text:
            message.attach_alternative(first.html, "text/html")
        elif first.html:
            message.content_subtype = "html"
        # Always a batch send (each recipient gets their own message): merge_metadata is set
        # for everyone, merge_data only when there is some (ESPs without templates choke on it).
        message.merge_metadata = {m.to: dict(m.metadata) for m in batch}
        if any(m.merge_data for m in batch):
            # The ESP fills the Subject from these too: one line each.
            message.merge_data = {m.to: dict(header_merge_data(m.merge_data)) for m in batch}
        return message

    def _send_group(self, connection: Any, batch: list[OutgoingMessage]
                    ) -> list[RecipientResult]:
        outcome: list[RecipientResult] = []

        def attempt() -> AnymailMessage:
            message = self._build(connection, batch)
            try:
                message.send()
            except AnymailAPIError as exc:
                status = getattr(exc, "status_code", None)
                cause = exc.__cause__
                if status in self.retry_statuses or (status is None and never_sent(cause)):
                    response = getattr(exc, "response", None)
                    raise Refused(
                        f"HTTP {status}" if status else f"connection failed: {cause}",
                        status=status, retry_after=parse_retry_after(
                            response.headers.get("Retry-After") if response is not None
                            else None)) from exc
                outcome.extend(self._failed_call(batch, exc, status))
            except AnymailError as exc:  # built wrong (unsupported feature, bad address...)
                outcome.extend(self._result(m, RecipientStatus.FAILED, error=str(exc))
                               for m in batch)
            return message

        message = retry_refused(attempt, policy=self.retry, sleep=self.sleep, rng=self.rng,
                                esp_name=self.esp_name, provider=self.esp_name)
        return outcome or self._read_status(message, batch)

    def _failed_call(self, batch: list[OutgoingMessage], exc: AnymailAPIError,
                     status: int | None) -> list[RecipientResult]:
        response = getattr(exc, "response", None)
        words = describe(json_or_text(response)) if response is not None else str(exc.__cause__
                                                                                   or exc)
        if status is not None and 400 <= status < 500:
            verdict = RecipientStatus.FAILED
            error = f"{self.esp_name} refused the call ({status}): {words}"
        else:
            verdict = RecipientStatus.UNKNOWN
            error = (f"in doubt: {self.esp_name} answered {status}: {words}" if status
                     else f"in doubt: the connection failed after sending: {words}")
        logger.warning("%s batch of %d: %s", self.esp_name, len(batch), error)
        return [self._result(m, verdict, error=error) for m in batch]

    def _read_status(self, message: AnymailMessage, batch: list[OutgoingMessage]
                     ) -> list[RecipientResult]:
        statuses = message.anymail_status.recipients
        lowered = {k.lower(): v for k, v in statuses.items()}
        out = []
        for m in batch:
            status = statuses.get(m.to) or lowered.get(m.to.lower())
            if status is None:
                out.append(self._result(m, RecipientStatus.UNKNOWN,
                                        error=f"{self.esp_name} did not report this recipient"))
                continue
            verdict = STATUS_FROM_ANYMAIL.get(status.status or "unknown",
                                              RecipientStatus.UNKNOWN)
            error = "" if verdict in (RecipientStatus.ACCEPTED, RecipientStatus.QUEUED) \
                else f"{self.esp_name} reported “{status.status}”"
            out.append(self._result(m, verdict, message_id=status.message_id, error=error))
        return out

    _result = staticmethod(result)


ANYMAIL_CAPABILITIES = Capabilities(
    can_stop_live_send=False,
    can_pause_scheduled=False,
    can_resume=False,
    stop_action=StopAction.NONE,
    explanation=_(
        "This ESP only sends what we hand it; it has no campaigns to pause. Mail we send "
        "through it stops between batches, with our own pause."),
)


class AnymailAdapter(EspAdapter):
    """An ESP we only send through (no campaign control in its API); `sender` is any
    BatchSender (an AnymailSender, or one of the HTTP batch senders: send_only.py)."""

    provider = "anymail"
    display_name = "Anymail"
    capabilities = ANYMAIL_CAPABILITIES

    def __init__(self, *, sender: BatchSender) -> None:
        self.sender = sender

    def _unsupported(self) -> EspError:
        return EspNotSupported(said(self.capabilities.explanation), provider=self.provider)

    def pause_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                       ) -> ControlResult:
        raise self._unsupported()

    def resume_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        raise self._unsupported()

    def cancel_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        raise self._unsupported()

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        return self.sender.send_batch(messages)

    def lookup_messages(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        return self.sender.lookup_messages(metadata)
