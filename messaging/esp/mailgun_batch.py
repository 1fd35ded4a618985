"""Mailgun: POST /v3/{domain}/messages as a batch send (up to 1,000 recipients a call).

Many `to` fields plus `recipient-variables` (a JSON object keyed by address) make Mailgun
send each recipient their own message; our `{{ field }}` tags become `%recipient.field%`
(inserted as they are, so the HTML part names an escaped twin). Custom variables travel as
`v:broadcast_id` and `v:recipient_id=%recipient.recipient_id%` and come back on every event.
Headers the same way: `h:List-Unsubscribe=%recipient.amends_h_list_unsubscribe%` with each
person's own value (messaging.rendering.message_headers) in their recipient variables, as
Mailgun's own SDK does for a batch's List-Unsubscribe; a call's messages carry the same
header names (group_for_batches, `header_names_only`). Values are one line each, since they
may fill the subject. Mailgun answers 200 `{"id": "<…>", "message": "Queued. Thank you."}`
for the whole call: rows are sent with that id and say so; per person, its events. Auth:
HTTP basic, user "api", password the API key. EU accounts: base_url
https://api.eu.mailgun.net.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from .base import OutgoingMessage, RecipientResult
from .batch import (
    HttpBatchSender,
    MergeBody,
    SendLimits,
    content_key,
    display_address,
    header_variable,
    subject_safe_strings,
)

DEFAULT_URL = "https://api.mailgun.net"


def _tag(name: str) -> str:
    return f"%recipient.{name}%"


class MailgunBatchSender(HttpBatchSender):
    esp_name = "Mailgun"
    provider = "mailgun"
    # "The maximum number of recipients allowed for Batch Sending is 1,000."
    limits = SendLimits(max_per_call=1000, default_rate=1000, per_recipient_outcome=False)
    header_mode = "substituted"

    def __init__(self, *, api_key: str, domain: str, base_url: str = DEFAULT_URL,
                 **options: Any) -> None:
        if not api_key or not domain:
            raise ValueError("Mailgun: api_key and domain are required")
        self.path = f"/v3/{quote(domain)}/messages"
        super().__init__(base_url=base_url, auth=("api", api_key), **options)

    def _content(self, first: OutgoingMessage) -> list[tuple[str, str]]:
        def make() -> list[tuple[str, str]]:
            fields = [("from", first.from_email),
                      ("subject", MergeBody(first.subject, tag=_tag).text)]
            if first.text:
                fields.append(("text", MergeBody(first.text, tag=_tag).text))
            if first.html:
                fields.append(("html", MergeBody(first.html, tag=_tag, html=True,
                                                 escape_suffix=True).text))
            if first.reply_to:
                fields.append(("h:Reply-To", ", ".join(first.reply_to)))
            return fields
        return self.cached(("mailgun", *content_key(first)), make)

    def encode(self, chunk: Sequence[OutgoingMessage]) -> tuple[str, str]:
        first = chunk[0]
        fields = list(self._content(first))
        names = list(self.headers(first))  # the same names for the whole call (grouping)
        fields.extend((f"h:{name}", _tag(header_variable(name))) for name in names)
        variables: dict[str, dict[str, str]] = {}
        for m in chunk:
            fields.append(("to", display_address(m.to_name, m.to)))
            headers = self.headers(m)
            variables[m.to] = {**subject_safe_strings(m, with_html=True),
                               **{f"meta_{k}": v for k, v in m.metadata.items()},
                               **{header_variable(name): headers[name] for name in names}}
        for key in first.metadata:
            fields.append((f"v:{key}", _tag(f"meta_{key}")))
        fields.append(("recipient-variables", json.dumps(variables, separators=(",", ":"))))
        return urlencode(fields), "application/x-www-form-urlencoded"

    def read(self, chunk: Sequence[OutgoingMessage], status: int, body: Any,
             headers: Mapping[str, str]) -> list[RecipientResult] | None:
        if not isinstance(body, dict) or not body.get("id"):
            return None
        return self.per_call(chunk, str(body["id"]).strip("<>"))
