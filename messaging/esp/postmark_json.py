"""Postmark's /email/batch spoken directly in JSON: the lean sending path for broadcasts.

Why not anymail here: Postmark's /email/batch does no merging (TemplateModel only works
with server-side templates), so every apology is rendered for its recipient and each message
in a batch carries its own body. anymail sends messages of identical content together, so
per-recipient bodies would become one HTTP call per message; and its per-recipient parsing
measured as the bottleneck of a fan-out (bench/esp_send_overhead.py). This sender builds the
documented JSON array itself, one call per `max_per_call` messages, on the shared batch
sender (batch.py), with the same failure contract as every sending path:

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

import re
from collections.abc import Mapping, Sequence
from email.utils import formataddr
from typing import Any

from ..rendering import header_merge_data, message_headers
from .base import OutgoingMessage, RecipientResult, RecipientStatus
from .batch import ENCODE, HttpBatchSender, JsonTemplate, SendLimits, json_object, result

REJECTED_CODES = frozenset({300, 406})


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


_PLAIN_NAME = re.compile(r"^[A-Za-z0-9 !#$%&'*+\-/=?^_`{|}~]*$")


def fast_address(name: str, address: str) -> str:
    """formataddr, with a fast path for the common plain-ASCII name."""
    if not name:
        return address
    if _PLAIN_NAME.match(name):
        return f"{name} <{address}>"
    return formataddr((name, address))


class PostmarkJsonSender(HttpBatchSender):
    """Batch sender for Postmark without anymail (see the module docstring).

    Postmark's /email/batch does not merge. This sender fills `{{ field }}` tags from each
    message's `merge_data` itself (values HTML-escaped in the HTML part, as
    messaging.rendering.fill_merge_tags does), so callers may hand it one body per locale
    and the values per recipient: `merges_client_side` says so.
    """

    esp_name = "Postmark"
    provider = "postmark"
    path = "/email/batch"
    # Postmark: "up to 500 messages in a single API call"; no published per-second limit.
    limits = SendLimits(max_per_call=500, default_rate=5000, per_recipient_outcome=True)
    shared_content = False

    def __init__(self, *, server_token: str, base_url: str, **options: Any) -> None:
        super().__init__(base_url=base_url, headers={"X-Postmark-Server-Token": server_token},
                         **options)

    def _template(self, text: str, *, html: bool) -> JsonTemplate:
        return self.cached(("postmark", text, html), lambda: JsonTemplate(text, html=html))

    def encode_one(self, message: OutgoingMessage,
                   templates: tuple[JsonTemplate, JsonTemplate | None, JsonTemplate | None]
                   | None = None) -> str:
        """One /email/batch entry as JSON text (what postmark_message + json.dumps give,
        with merge tags filled)."""
        out: list[str] = []
        self._encode_into(out, message, templates or self._templates(message))
        return "".join(out)

    def _encode_into(self, out: list[str], message: OutgoingMessage,
                     templates: tuple[JsonTemplate, JsonTemplate | None, JsonTemplate | None]
                     ) -> None:
        """encode_one's pieces appended to `out` (encode joins a whole call once)."""
        subject_t, html_t, text_t = templates
        data = message.merge_data
        put = out.append
        put('{"From":')
        put(ENCODE(message.from_email))
        put(',"To":')
        put(ENCODE(fast_address(message.to_name, message.to)))
        put(',"Subject":')
        # A merge value with a line break must not break the Subject header: one line each.
        subject_t.encode_into(out, header_merge_data(data) if subject_t.keys else data)
        put(',"Metadata":')
        put(json_object(message.metadata))
        if html_t is not None:
            put(',"HtmlBody":')
            html_t.encode_into(out, data)
        if text_t is not None:
            put(',"TextBody":')
            text_t.encode_into(out, data)
        if message.reply_to:
            put(',"ReplyTo":')
            put(ENCODE(", ".join(message.reply_to)))
        headers = self.headers(message)
        if headers:
            put(',"Headers":[')
            put(",".join(f'{{"Name":{ENCODE(k)},"Value":{ENCODE(v)}}}'
                         for k, v in headers.items()))
            put("]")
        put("}")

    def _templates(self, message: OutgoingMessage
                   ) -> tuple[JsonTemplate, JsonTemplate | None, JsonTemplate | None]:
        return (self._template(message.subject, html=False),
                self._template(message.html, html=True) if message.html else None,
                self._template(message.text, html=False) if message.text else None)

    def encode(self, chunk: Sequence[OutgoingMessage]) -> tuple[bytes, str]:
        # A call's messages share a few body objects (one per locale): their templates are
        # looked up once per combination, not per message.
        by_body: dict[tuple[int, int, int], tuple] = {}
        if not chunk:
            return b"[]", "application/json"
        # The whole call is one list of pieces, joined and encoded once: each body is
        # copied twice, not once per level of nesting (four times before).
        out: list[str] = []
        put = out.append
        for message in chunk:
            key = (id(message.subject), id(message.html), id(message.text))
            templates = by_body.get(key)
            if templates is None:
                templates = by_body[key] = self._templates(message)
            put(",")
            self._encode_into(out, message, templates)
        out[0] = "["
        put("]")
        return "".join(out).encode("ascii"), "application/json"

    def read(self, chunk: Sequence[OutgoingMessage], status: int, body: Any,
             headers: Mapping[str, str]) -> list[RecipientResult] | None:
        if not isinstance(body, list) or len(body) != len(chunk):
            return None
        out = []
        for message, answer in zip(chunk, body, strict=True):
            code = answer.get("ErrorCode")
            if code == 0 and answer.get("MessageID"):
                out.append(result(message, RecipientStatus.ACCEPTED,
                                  message_id=str(answer["MessageID"])))
            else:
                verdict = RecipientStatus.REJECTED if code in REJECTED_CODES \
                    else RecipientStatus.FAILED
                out.append(result(message, verdict,
                                  error=f"Postmark {code}: {answer.get('Message', '')}"))
        return out

