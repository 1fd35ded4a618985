"""Postmark's /email/batch spoken directly in JSON: the lean sending path for broadcasts.

Why not anymail here: Postmark's /email/batch does no merging (TemplateModel only works
with server-side templates), so every apology is rendered for its recipient and each message
in a batch carries its own body. anymail sends messages of identical content together, so
per-recipient bodies would become one HTTP call per message; and its per-recipient parsing
measured as the bottleneck of a fan-out (bench/esp_send_overhead.py). This sender builds the
documented JSON array itself, one call per `max_per_call` messages, and keeps the same
failure contract as AnymailSender:

- 429, or no TCP connection: certainly not taken → retried with backoff; when that runs
  out, EspTemporaryError (or FAILED for the later chunks of a call whose first chunks left).
- 5xx, a read timeout, a connection dropped after the request left: UNKNOWN (in doubt),
  never retried here.
- other 4xx: FAILED with Postmark's words.
- 200: one answer per message; ErrorCode 0 → accepted with its MessageID, 300 (invalid
  address) and 406 (inactive recipient) → rejected, anything else → failed.

Cost: each body is split at its merge tags and JSON-encoded once (per distinct body), so
a message costs a join of ready pieces instead of escaping its whole body again: this is
what brought the fan-out near raw HTTP (bench/apology_fanout.py).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import formataddr
from html import escape as html_escape
from typing import Any

import requests

from ..rendering import header_merge_data, message_headers
from .base import (
    EspNotSupported,
    EspTemporaryError,
    OutgoingMessage,
    RecipientResult,
    RecipientStatus,
    SentMessage,
)
from .httpclient import RetryPolicy, describe, parse_retry_after

logger = logging.getLogger(__name__)

REJECTED_CODES = frozenset({300, 406})


def _never_sent(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", None)
        return type(reason).__name__ == "NewConnectionError"
    return False


def postmark_message(message: OutgoingMessage) -> dict[str, Any]:
    """One entry of the /email/batch array."""
    data: dict[str, Any] = {
        "From": message.from_email,
        "To": formataddr((message.to_name, message.to)) if message.to_name else message.to,
        "Subject": message.subject,
        "Metadata": dict(message.metadata),
    }
    if message.html:
        data["HtmlBody"] = message.html
    if message.text:
        data["TextBody"] = message.text
    if message.reply_to:
        data["ReplyTo"] = ", ".join(message.reply_to)
    headers = message_headers(message)
    if headers:
        data["Headers"] = [{"Name": k, "Value": v} for k, v in headers.items()]
    return data


_ENCODE = json.encoder.encode_basestring_ascii  # the C encoder json.dumps uses
_MERGE_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


_PLAIN_NAME = re.compile(r"^[A-Za-z0-9 !#$%&'*+\-/=?^_`{|}~]*$")


def _address(name: str, address: str) -> str:
    """formataddr, with a fast path for the common plain-ASCII name."""
    if not name:
        return address
    if _PLAIN_NAME.match(name):
        return f"{name} <{address}>"
    return formataddr((name, address))


class _JsonTemplate:
    """A body split at its `{{ field }}` tags once, each piece already JSON-encoded, so a
    message's body is a join of ready pieces and its few encoded merge values."""

    def __init__(self, text: str, *, html: bool) -> None:
        self.pieces: list[str] = []
        self.keys: list[str] = []
        self.raw: list[str] = []
        pos = 0
        for match in _MERGE_TAG.finditer(text):
            self.pieces.append(_ENCODE(text[pos:match.start()])[1:-1])
            self.keys.append(match.group(1))
            self.raw.append(_ENCODE(match.group(0))[1:-1])
            pos = match.end()
        self.pieces.append(_ENCODE(text[pos:])[1:-1])
        self.html = html

    def encode(self, data: Mapping[str, Any]) -> str:
        out = [self.pieces[0]]
        for i, key in enumerate(self.keys):
            value = data.get(key)
            if value is None:
                out.append(self.raw[i])
            else:
                value = str(value)
                out.append(_ENCODE(html_escape(value) if self.html else value)[1:-1])
            out.append(self.pieces[i + 1])
        return '"' + "".join(out) + '"'


class PostmarkJsonSender:
    """BatchSender for Postmark without anymail (see the module docstring).

    Postmark's /email/batch does not merge. This sender fills `{{ field }}` tags from each
    message's `merge_data` itself (values HTML-escaped in the HTML part, as
    messaging.rendering.fill_merge_tags does), so callers may hand it one body per locale
    and the values per recipient: `merges_client_side` says so.
    """

    esp_name = "Postmark"
    merges_client_side = True

    def __init__(self, *, server_token: str, base_url: str, max_per_call: int = 500,
                 retry: RetryPolicy | None = None,
                 timeout: float | tuple[float, float] = (3.05, 30.0),
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None,
                 session: requests.Session | None = None) -> None:
        if max_per_call < 1:
            raise ValueError(f"max_per_call must be >= 1, got {max_per_call}")
        self.url = base_url.rstrip("/") + "/email/batch"
        self.max_per_call = max_per_call
        self.retry = retry or RetryPolicy.from_settings()
        self.timeout = timeout
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._templates: dict[tuple[str, bool], _JsonTemplate] = {}
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json",
                                     "Content-Type": "application/json",
                                     "X-Postmark-Server-Token": server_token,
                                     "User-Agent": "Amends (incident response)"})

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        out: list[RecipientResult] = []
        for start in range(0, len(messages), self.max_per_call):
            chunk = messages[start:start + self.max_per_call]
            try:
                out.extend(self._send_chunk(chunk))
            except EspTemporaryError as exc:
                if not out:
                    raise  # nothing of this call left: the caller may retry all of it
                out.extend(_result(m, RecipientStatus.FAILED, error=str(exc)) for m in chunk)
        return out

    def lookup_messages(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        raise EspNotSupported("Postmark: lookups go through the adapter's message search",
                              provider="postmark")

    def _template(self, text: str, *, html: bool) -> _JsonTemplate:
        key = (text, html)
        found = self._templates.get(key)
        if found is None:
            if len(self._templates) > 64:
                self._templates.clear()
            found = self._templates[key] = _JsonTemplate(text, html=html)
        return found

    def encode(self, message: OutgoingMessage) -> str:
        """One /email/batch entry as JSON text (what postmark_message + json.dumps give,
        with merge tags filled)."""
        data = message.merge_data
        to = _address(message.to_name, message.to)
        subject = self._template(message.subject, html=False).encode(header_merge_data(data))
        parts = [f'{{"From":{_ENCODE(message.from_email)},"To":{_ENCODE(to)},'
                 f'"Subject":{subject},'
                 f'"Metadata":{json.dumps(dict(message.metadata), separators=(",", ":"))}']
        if message.html:
            parts.append(f'"HtmlBody":{self._template(message.html, html=True).encode(data)}')
        if message.text:
            parts.append(f'"TextBody":{self._template(message.text, html=False).encode(data)}')
        if message.reply_to:
            parts.append(f'"ReplyTo":{_ENCODE(", ".join(message.reply_to))}')
        headers = message_headers(message)
        if headers:
            parts.append('"Headers":' + json.dumps(
                [{"Name": k, "Value": v} for k, v in headers.items()]))
        return ",".join(parts) + "}"

    def _send_chunk(self, chunk: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        body = "[" + ",".join(self.encode(m) for m in chunk) + "]"
        for attempt in range(1, self.retry.max_attempts + 1):
            retry_after: float | None = None
            try:
                response = self.session.post(self.url, data=body, timeout=self.timeout)
            except requests.RequestException as exc:
                if not _never_sent(exc):
                    error = f"in doubt: the connection failed after sending: {exc}"
                    logger.warning("Postmark batch of %d: %s", len(chunk), error)
                    return [_result(m, RecipientStatus.UNKNOWN, error=error) for m in chunk]
                problem, status = f"connection failed: {exc}", None
            else:
                status = response.status_code
                if status == 200:
                    return self._read(chunk, response)
                if status != 429:
                    words = describe(_json_or_text(response))
                    if 400 <= status < 500:
                        error = f"Postmark refused the call ({status}): {words}"
                        return [_result(m, RecipientStatus.FAILED, error=error) for m in chunk]
                    error = f"in doubt: Postmark answered {status}: {words}"
                    logger.warning("Postmark batch of %d: %s", len(chunk), error)
                    return [_result(m, RecipientStatus.UNKNOWN, error=error) for m in chunk]
                problem = "HTTP 429"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt == self.retry.max_attempts or (
                    retry_after is not None and retry_after > self.retry.max_retry_after):
                raise EspTemporaryError(
                    f"Postmark: sending still refused after {attempt} attempt"
                    f"{'s' if attempt != 1 else ''} ({problem}); nothing was sent",
                    provider="postmark", http_status=status, attempts=attempt,
                    retry_after=retry_after, detail=problem)
            self.sleep(retry_after if retry_after is not None
                       else self.retry.backoff(attempt, self.rng))
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, chunk: Sequence[OutgoingMessage], response: requests.Response
              ) -> list[RecipientResult]:
        try:
            answers = response.json()
        except ValueError:
            answers = None
        if not isinstance(answers, list) or len(answers) != len(chunk):
            error = "in doubt: Postmark's answer did not list every message"
            return [_result(m, RecipientStatus.UNKNOWN, error=error) for m in chunk]
        out = []
        for message, answer in zip(chunk, answers, strict=True):
            code = answer.get("ErrorCode")
            if code == 0 and answer.get("MessageID"):
                out.append(_result(message, RecipientStatus.ACCEPTED,
                                   message_id=str(answer["MessageID"])))
            else:
                status = RecipientStatus.REJECTED if code in REJECTED_CODES \
                    else RecipientStatus.FAILED
                out.append(_result(message, status,
                                   error=f"Postmark {code}: {answer.get('Message', '')}"))
        return out


def _result(message: OutgoingMessage, status: RecipientStatus, *,
            message_id: str | None = None, error: str = "") -> RecipientResult:
    return RecipientResult(recipient=message.to, status=status, message_id=message_id,
                           error=error, metadata=message.metadata)


def _json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
