"""The batch sending path shared by every ESP with a batch API (one module per ESP beside
this one: postmark_json, sendgrid_batch, mailgun_batch, sparkpost_batch, ses_batch,
brevo_batch, mailjet_batch, mandrill_batch).

A sender turns `OutgoingMessage`s into as few ESP calls as the ESP's documented per-call
maximum allows, and each call's answer into one `RecipientResult` per message, with the
contract the ledger relies on (messaging/broadcasts.py, "claim before, settle after"):

- 429, or no TCP connection: certainly not taken → retried (httpclient.retry_refused);
  when that runs out, EspTemporaryError for the first call of a batch (the rows go back to
  pending), FAILED for a later call's messages (their rows are settled, not resent).
- 5xx, a read timeout, a connection dropped after the request left: UNKNOWN (in doubt),
  never retried here; reconciliation decides.
- another 4xx: FAILED with the ESP's words.
- 2xx: the ESP's answer read per recipient where it gives one. Where it answers only for
  the whole call (SendGrid, Mailgun; SparkPost's counts), every row says so in its reason
  (`PER_CALL_NOTE`), and its outcome per person comes from the ESP's tracking events.

Merging: the apology is rendered once per locale with `{{ field }}` tags left in and the
per-person values in `merge_data`. Senders whose ESP takes one body per call translate the
tags once per body into the ESP's own merge syntax (`MergeBody`) and send the values per
recipient; senders whose ESP takes a body per message fill the tags themselves
(`JsonTemplate`, each body split and JSON-encoded once). Either way `merges_client_side`
is true: callers hand in merge_data, never filled bodies.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formataddr, parseaddr
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
    header_safe,
)
from .httpclient import (
    Refused,
    RetryPolicy,
    describe,
    esp_session,
    never_sent,
    parse_retry_after,
    retry_refused,
)

logger = logging.getLogger(__name__)

MERGE_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
ENCODE = json.encoder.encode_basestring_ascii  # the C encoder json.dumps uses
HTML_SUFFIX = "_html"  # the HTML-escaped twin of a merge value, for ESPs that do not escape

PER_CALL_NOTE = ("accepted for the whole call: {esp} does not answer per person; bounces "
                 "and deliveries come from its tracking events")


@dataclass(frozen=True)
class SendLimits:
    """What an ESP's batch API takes: its documented per-call maximum, and a default rate
    (messages per second) that an account may change to the customer's real limit."""

    max_per_call: int
    default_rate: int
    per_recipient_outcome: bool  # False: the ESP answers for the whole call only


# --- grouping ---------------------------------------------------------------------------

def content_key(message: OutgoingMessage, headers: Mapping[str, str] | None = None) -> tuple:
    headers = message.headers if headers is None else headers
    return (message.subject, message.html, message.text, message.from_email,
            tuple(message.reply_to), tuple(sorted(headers.items())))


def group_for_batches(messages: Sequence[OutgoingMessage], max_per_call: int, *,
                      per_recipient_headers: bool = True,
                      header_names_only: bool = False,
                      headers_of: Callable[[OutgoingMessage], Mapping[str, str]] = message_headers
                      ) -> list[list[int]]:
    """Indexes of `messages` grouped by identical content, at most `max_per_call` each,
    with each recipient at most once per group.

    Headers: with `per_recipient_headers` (the ESP takes each person's headers in the same
    call) only the message's own shared headers count. Without it, messages whose full
    headers differ (each person's List-Unsubscribe) never share a call. With
    `header_names_only` (the ESP substitutes a per-person variable into a shared header
    value, Mailgun and SparkPost), messages share a call when they carry the same header
    names, so every person of a call has a value for every substituted header."""
    groups: list[list[int]] = []
    open_groups: dict[tuple, list[tuple[list[int], set[str]]]] = {}
    # A batch's messages share their subject and body objects (one per locale): the content
    # key is built once per combination of those objects, not once per message. (The
    # messages stay alive through the call, so their ids stay theirs.)
    keys: dict[tuple, tuple] = {}
    for index, message in enumerate(messages):
        address = message.to.lower()
        if header_names_only:
            # The names are the whole key; the values (the person's own) do not group.
            names = tuple(headers_of(message))
            seen_as: tuple = (id(message.subject), id(message.html), id(message.text),
                              message.from_email, tuple(message.reply_to), names)
            key = keys.get(seen_as)
            if key is None:
                key = keys[seen_as] = content_key(message, dict.fromkeys(names, ""))
        else:
            headers = None if per_recipient_headers else headers_of(message)
            seen_as = (id(message.subject), id(message.html), id(message.text),
                       message.from_email, tuple(message.reply_to),
                       tuple((message.headers if headers is None else headers).items()))
            key = keys.get(seen_as)
            if key is None:
                key = keys[seen_as] = content_key(message, headers)
        candidates = open_groups.setdefault(key, [])
        for members, seen in candidates:
            if len(members) < max_per_call and address not in seen:
                members.append(index)
                seen.add(address)
                break
        else:
            members = [index]
            candidates.append((members, {address}))
            groups.append(members)
    return groups


@functools.lru_cache(maxsize=64)  # asked per person and header while encoding a call
def header_variable(name: str) -> str:
    """A merge-variable name for a header's per-person value ("List-Unsubscribe" →
    "amends_h_list_unsubscribe"): letters, digits and underscores, as SparkPost's keys
    must be, never one of our merge fields."""
    return "amends_h_" + re.sub(r"[^A-Za-z0-9]", "_", name).lower()


def subject_safe_values(message: OutgoingMessage) -> Mapping[str, Any]:
    """The merge values of an ESP that fills one set of values into the subject and the
    bodies alike: each one line (header_merge_data), so no value can break the Subject
    header. A line break inside a name becomes a space in the body too."""
    return header_merge_data(message.merge_data)


def subject_safe_strings(message: OutgoingMessage, *, with_html: bool = False
                         ) -> dict[str, str]:
    """merge_values(subject_safe_values(message), with_html=…) in one pass: the values as
    strings, each one line, with HTML-escaped twins when asked. Asked per person by senders
    whose values may fill the subject."""
    out = {}
    twins = {}
    for key, value in message.merge_data.items():
        value = "" if value is None else str(value)
        if not value.isprintable():
            value = header_safe(value)
        out[str(key)] = value
        if with_html:
            twins[f"{key}{HTML_SUFFIX}"] = html_escape(value)
    if twins:
        out.update(twins)
    return out


# --- merge tags -------------------------------------------------------------------------

class JsonTemplate:
    """A body split at its `{{ field }}` tags once, each piece already JSON-encoded, so a
    message's body is a join of ready pieces and its few encoded merge values (values are
    HTML-escaped in an HTML part, as messaging.rendering.fill_merge_tags does)."""

    def __init__(self, text: str, *, html: bool) -> None:
        self.pieces: list[str] = []
        self.keys: list[str] = []
        self.raw: list[str] = []
        pos = 0
        for match in MERGE_TAG.finditer(text):
            self.pieces.append(ENCODE(text[pos:match.start()])[1:-1])
            self.keys.append(match.group(1))
            self.raw.append(ENCODE(match.group(0))[1:-1])
            pos = match.end()
        self.pieces.append(ENCODE(text[pos:])[1:-1])
        self.html = html
        # The opening and closing quotes ride on the first and last pieces, and each tag
        # travels with the piece after it: a fill is one join.
        self._first = '"' + self.pieces[0]
        if not self.keys:
            self._first += '"'
        self._rest = list(zip(self.keys, self.raw, [*self.pieces[1:-1], ""], strict=True)) \
            if self.keys else []
        self._last = self.pieces[-1] + '"'

    def encode(self, data: Mapping[str, Any]) -> str:
        """The filled body as a JSON string literal (quotes included)."""
        if not self.keys:
            return self._first
        out: list[str] = []
        self.encode_into(out, data)
        return "".join(out)

    def encode_into(self, out: list[str], data: Mapping[str, Any]) -> None:
        """encode(), its pieces appended to `out`: a caller that joins a whole ESP call at
        once copies each body once instead of once per level."""
        put = out.append
        put(self._first)
        if not self.keys:
            return
        for key, raw, piece in self._rest:
            value = data.get(key)
            if value is None:
                put(raw)
            else:
                value = str(value)
                put(ENCODE(html_escape(value) if self.html else value)[1:-1])
            put(piece)
        put(self._last)


class MergeBody:
    """A body with its `{{ field }}` tags rewritten once into an ESP's merge syntax.

    `tag(name)` gives the ESP's tag for a value; with `escape_suffix`, tags in an HTML part
    name the value's HTML-escaped twin (`first_name_html`), for ESPs that insert values
    as they are."""

    def __init__(self, text: str, *, tag: Callable[[str], str], html: bool = False,
                 escape_suffix: bool = False) -> None:
        suffix = HTML_SUFFIX if html and escape_suffix else ""
        self.text = MERGE_TAG.sub(lambda m: tag(m.group(1) + suffix), text) if text else text


def merge_values(data: Mapping[str, Any], *, with_html: bool) -> dict[str, str]:
    """A recipient's merge values as strings, with HTML-escaped twins when asked."""
    values = {str(k): "" if v is None else str(v) for k, v in data.items()}
    if with_html:
        values.update({k + HTML_SUFFIX: html_escape(v) for k, v in list(values.items())})
    return values


def json_object(values: Mapping[str, str]) -> str:
    """A flat mapping of strings as compact JSON text (what json.dumps gives with
    separators=(",", ":")), without json.dumps' per-call encoder set-up: metadata is
    encoded once per message."""
    return "{" + ",".join(f"{ENCODE(k)}:{ENCODE(v)}" for k, v in values.items()) + "}"


def split_address(value: str) -> tuple[str, str]:
    """("Name", "address") from "Name <address>" or a bare address."""
    name, address = parseaddr(value)
    return name, address or value


def display_address(name: str, address: str) -> str:
    return formataddr((name, address)) if name else address


def result(message: OutgoingMessage, status: RecipientStatus, *,
           message_id: str | None = None, error: str = "") -> RecipientResult:
    # Made through the instance dict, as OutgoingMessage.for_person does: a frozen
    # dataclass's __init__ sets each field through object.__setattr__, and a batch makes a
    # thousand of these.
    made = object.__new__(RecipientResult)
    made.__dict__.update(recipient=message.to, status=status,
                         message_id=str(message_id) if message_id else None, error=error,
                         metadata=message.metadata)
    return made


def json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class _InDoubt(Exception):
    """The request left and the connection failed before the answer: in doubt."""


# --- the base sender ----------------------------------------------------------------------

class HttpBatchSender:
    """Base of the per-ESP batch senders: grouping, one shared retry loop, the failure
    contract above. Subclasses set the class attributes and write `encode` and `read`."""

    esp_name = ""
    provider = ""
    path = ""
    limits = SendLimits(max_per_call=1000, default_rate=1000, per_recipient_outcome=True)
    merges_client_side = True
    # True: one body per call (messages of a call must share their content);
    # False: the ESP takes a body per message, calls are plain slices.
    shared_content = True
    # How each person's headers (messaging.rendering.message_headers) travel:
    # "per_recipient" — in the person's own slot of the call (SendGrid personalizations,
    # Brevo versions, Mailjet messages, SES entries); "substituted" — one header value
    # holding a per-person variable (Mailgun, SparkPost): a call's messages carry the same
    # header names; "per_call" — the ESP has neither: messages whose headers differ never
    # share a call (Mandrill).
    header_mode = "per_recipient"
    # Non-2xx statuses whose body still answers per message (Mailjet's 400 on a partial
    # failure, Mandrill's 500 error objects): `read` is tried before the status decides.
    read_statuses: frozenset[int] = frozenset()

    def __init__(self, *, base_url: str, max_per_call: int | None = None,
                 retry: RetryPolicy | None = None,
                 timeout: float | tuple[float, float] = (3.05, 30.0),
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None,
                 session: requests.Session | None = None,
                 headers: Mapping[str, str] | None = None,
                 auth: Any = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{self.esp_name}: base URL must start with http:// or "
                             f"https://, got {base_url!r}")
        max_per_call = max_per_call or self.limits.max_per_call
        if max_per_call < 1:
            raise ValueError(f"max_per_call must be >= 1, got {max_per_call}")
        # A loopback may take more than the ESP documents (benchmarks); the account's own
        # batch size is checked against limits.max_per_call where it is stored.
        self.max_per_call = max_per_call
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + self.path
        self.retry = retry or RetryPolicy.from_settings()
        self.timeout = timeout
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.session = esp_session(session, headers=headers, auth=auth)
        self._bodies: dict[tuple, Any] = {}
        # Inside send_batch only (its messages stay alive meanwhile): headers by id(message).
        self._headers: dict[int, Mapping[str, str]] | None = None

    # --- what subclasses write -----------------------------------------------------------
    def encode(self, chunk: Sequence[OutgoingMessage]) -> tuple[str | bytes, str]:
        """The request body for one call, and its content type."""
        raise NotImplementedError

    def read(self, chunk: Sequence[OutgoingMessage], status: int, body: Any,
             headers: Mapping[str, str]) -> list[RecipientResult] | None:
        """One result per message from the ESP's answer (status, parsed body, headers);
        None: the answer does not say (the HTTP status decides)."""
        raise NotImplementedError

    # --- shared --------------------------------------------------------------------------
    def cached(self, key: tuple, make: Callable[[], Any]) -> Any:
        """Per-body work (templates, translated tags) done once per distinct body."""
        found = self._bodies.get(key)
        if found is None:
            if len(self._bodies) > 64:
                self._bodies.clear()
            found = self._bodies[key] = make()
        return found

    def headers(self, message: OutgoingMessage) -> Mapping[str, str]:
        """The person's headers (messaging.rendering.message_headers), worked out once per
        message of the batch being sent: grouping and encoding both need them."""
        if self._headers is None:  # outside send_batch: nothing to remember them by
            return message_headers(message)
        found = self._headers.get(id(message))
        if found is None:
            found = self._headers[id(message)] = message_headers(message)
        return found

    def groups(self, messages: Sequence[OutgoingMessage]) -> list[list[int]]:
        if self.shared_content:
            return group_for_batches(
                messages, self.max_per_call,
                per_recipient_headers=self.header_mode != "per_call",
                header_names_only=self.header_mode == "substituted",
                headers_of=self.headers)
        return [list(range(start, min(start + self.max_per_call, len(messages))))
                for start in range(0, len(messages), self.max_per_call)]

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        self._headers = {}
        try:
            return self._send_groups(messages)
        finally:
            self._headers = None

    def _send_groups(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        out: dict[int, RecipientResult] = {}
        for group in self.groups(messages):
            chunk = [messages[i] for i in group]
            try:
                answers = self._send_call(chunk)
            except EspTemporaryError as exc:
                if not out:
                    raise  # nothing of this batch left: the caller may give it all back
                answers = [result(m, RecipientStatus.FAILED, error=str(exc)) for m in chunk]
            out.update(zip(group, answers, strict=True))
        return [out[i] for i in range(len(messages))]

    def lookup_messages(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        raise EspNotSupported(f"{self.esp_name}: looking messages up goes through the "
                              "account's adapter or its tracking events",
                              provider=self.provider)

    def per_call(self, chunk: Sequence[OutgoingMessage], message_id: str | None
                 ) -> list[RecipientResult]:
        """The ESP took the whole call and says no more: sent, and the rows say so."""
        note = PER_CALL_NOTE.format(esp=self.esp_name)
        message_id = str(message_id) if message_id else None
        accepted = RecipientStatus.ACCEPTED
        return [RecipientResult(m.to, accepted, message_id, note, m.metadata) for m in chunk]

    def _post(self, body: str | bytes, content_type: str) -> requests.Response:
        try:
            response = self.session.post(self.url, data=body, timeout=self.timeout,
                                         headers={"Content-Type": content_type})
        except requests.RequestException as exc:
            if never_sent(exc):
                raise Refused(f"connection failed: {exc}") from exc
            raise _InDoubt(f"in doubt: the connection failed after sending: {exc}") from exc
        if response.status_code == 429:
            raise Refused("HTTP 429", status=429,
                          retry_after=parse_retry_after(response.headers.get("Retry-After")))
        return response

    def _send_call(self, chunk: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        body, content_type = self.encode(chunk)
        try:
            response = retry_refused(lambda: self._post(body, content_type),
                                     policy=self.retry, sleep=self.sleep, rng=self.rng,
                                     esp_name=self.esp_name, provider=self.provider)
        except _InDoubt as exc:
            logger.warning("%s call of %d: %s", self.esp_name, len(chunk), exc)
            return [result(m, RecipientStatus.UNKNOWN, error=str(exc)) for m in chunk]
        status = response.status_code
        answer = json_or_text(response) if response.content else None
        if 200 <= status < 300 or status in self.read_statuses:
            try:
                read = None if isinstance(answer, str) \
                    else self.read(chunk, status, answer, response.headers)
            except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                read = None
            if read is not None:
                return read
            if 200 <= status < 300:
                error = f"in doubt: {self.esp_name}'s answer did not account for every message"
                return [result(m, RecipientStatus.UNKNOWN, error=error) for m in chunk]
        words = describe(answer)
        if 400 <= status < 500:
            error = f"{self.esp_name} refused the call ({status}): {words}"
            return [result(m, RecipientStatus.FAILED, error=error) for m in chunk]
        error = f"in doubt: {self.esp_name} answered {status}: {words}"
        logger.warning("%s call of %d: %s", self.esp_name, len(chunk), error)
        return [result(m, RecipientStatus.UNKNOWN, error=error) for m in chunk]

