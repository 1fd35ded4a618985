"""SendGrid: POST /v3/mail/send with one personalization per recipient (up to 1,000 a call).

Each personalization has its own `to`, `substitutions` (our `{{ field }}` tags become
`-field-`; SendGrid inserts values as they are, so the HTML part names an escaped twin; each
value one line, since it fills the subject too), `custom_args` (recipient_id; broadcast_id
is the call's) and `headers` (the person's own List-Unsubscribe pair and our other headers,
messaging.rendering.message_headers). SendGrid answers 202 with one X-Message-Id for the
whole call and nothing per person: rows are settled as sent with that id and say so; per-
person outcome comes from the event webhook (sg_message_id starts with the X-Message-Id,
custom_args come back on every event). Auth: Bearer API key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .base import OutgoingMessage, RecipientResult
from .batch import (
    HttpBatchSender,
    MergeBody,
    SendLimits,
    content_key,
    split_address,
    subject_safe_strings,
)

DEFAULT_URL = "https://api.sendgrid.com"


def _tag(name: str) -> str:
    return f"-{name}-"


class SendGridBatchSender(HttpBatchSender):
    esp_name = "SendGrid"
    provider = "sendgrid"
    path = "/v3/mail/send"
    # "personalizations ... maximum of 1000"; mail/send has no per-second cap in the docs.
    limits = SendLimits(max_per_call=1000, default_rate=5000, per_recipient_outcome=False)

    def __init__(self, *, api_key: str, base_url: str = DEFAULT_URL, **options: Any) -> None:
        if not api_key:
            raise ValueError("SendGrid: api_key is required")
        super().__init__(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"},
                         **options)

    def _content(self, first: OutgoingMessage) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            name, address = split_address(first.from_email)
            content = []
            if first.text:
                content.append({"type": "text/plain",
                                "value": MergeBody(first.text, tag=_tag).text})
            if first.html:
                content.append({"type": "text/html", "value": MergeBody(
                    first.html, tag=_tag, html=True, escape_suffix=True).text})
            data: dict[str, Any] = {
                "from": {"email": address, **({"name": name} if name else {})},
                "subject": MergeBody(first.subject, tag=_tag).text, "content": content}
            if first.reply_to:
                data["reply_to"] = {"email": split_address(first.reply_to[0])[1]}
            return data
        return self.cached(("sendgrid", *content_key(first)), make)

    def encode(self, chunk: Sequence[OutgoingMessage]) -> tuple[str, str]:
        first = chunk[0]
        common = {k: v for k, v in first.metadata.items() if k != "recipient_id"}
        personalizations = []
        for m in chunk:
            to = {"email": m.to, **({"name": m.to_name} if m.to_name else {})}
            p: dict[str, Any] = {"to": [to], "custom_args": {
                k: v for k, v in m.metadata.items() if k not in common}}
            if m.merge_data:
                values = subject_safe_strings(m, with_html=True)
                p["substitutions"] = {_tag(k): v for k, v in values.items()}
            headers = self.headers(m)
            if headers:
                p["headers"] = dict(headers)
            personalizations.append(p)
        body = {"personalizations": personalizations, **self._content(first),
                "custom_args": common}
        return json.dumps(body, separators=(",", ":")), "application/json"

    def read(self, chunk: Sequence[OutgoingMessage], status: int, body: Any,
             headers: Mapping[str, str]) -> list[RecipientResult] | None:
        if status != 202:
            return None
        return self.per_call(chunk, headers.get("X-Message-Id"))
