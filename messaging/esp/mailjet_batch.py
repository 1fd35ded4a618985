"""Mailjet: POST /v3.1/send with a `Messages` array (up to 50 messages a call).

Each message is complete and for one person, so the tags are filled here (values
HTML-escaped in HTMLPart; one line each in the Subject) and its `Headers` are the person's
own (List-Unsubscribe pair and our other headers, messaging.rendering.message_headers);
`CustomID` and `EventPayload` carry our metadata and come back on Mailjet's events. Mailjet
answers per message, in order: `{"Status": "success", "To": [{"Email", "MessageUUID",
"MessageID"}]}` or `{"Status": "error", "Errors": [...]}`; when some messages fail the call
answers 400 but the others were sent, so a 400 carrying that list is read message by
message. Auth: HTTP basic, API key and secret key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..rendering import header_merge_data
from .base import OutgoingMessage, RecipientResult, RecipientStatus
from .batch import (
    ENCODE,
    HttpBatchSender,
    JsonTemplate,
    SendLimits,
    content_key,
    result,
    split_address,
)

DEFAULT_URL = "https://api.mailjet.com"


class MailjetBatchSender(HttpBatchSender):
    esp_name = "Mailjet"
    provider = "mailjet"
    path = "/v3.1/send"
    # Send API v3.1: at most 50 messages in one call.
    limits = SendLimits(max_per_call=50, default_rate=1000, per_recipient_outcome=True)
    shared_content = False
    read_statuses = frozenset({400})

    def __init__(self, *, api_key: str, secret_key: str, base_url: str = DEFAULT_URL,
                 **options: Any) -> None:
        if not api_key or not secret_key:
            raise ValueError("Mailjet: api_key and secret_key are required")
        super().__init__(base_url=base_url, auth=(api_key, secret_key), **options)

    def _shared(self, m: OutgoingMessage) -> tuple[str, JsonTemplate, JsonTemplate | None,
                                                   JsonTemplate | None]:
        def make() -> tuple[str, JsonTemplate, JsonTemplate | None, JsonTemplate | None]:
            name, address = split_address(m.from_email)
            head: dict[str, Any] = {"From": {"Email": address, **({"Name": name} if name
                                                                  else {})}}
            if m.reply_to:
                head["ReplyTo"] = {"Email": split_address(m.reply_to[0])[1]}
            return (json.dumps(head, separators=(",", ":"))[1:-1],
                    JsonTemplate(m.subject, html=False),
                    JsonTemplate(m.text, html=False) if m.text else None,
                    JsonTemplate(m.html, html=True) if m.html else None)
        return self.cached(("mailjet", *content_key(m)), make)

    def encode(self, chunk: Sequence[OutgoingMessage]) -> tuple[str, str]:
        out = []
        for m in chunk:
            head, subject, text, html = self._shared(m)
            to = {"Email": m.to, **({"Name": m.to_name} if m.to_name else {})}
            meta = json.dumps(dict(m.metadata), separators=(",", ":"))
            custom = ":".join(m.metadata.get(k, "") for k in ("broadcast_id", "recipient_id"))
            parts = [head, f'"To":[{json.dumps(to, separators=(",", ":"))}]',
                     f'"Subject":{subject.encode(header_merge_data(m.merge_data))}',
                     f'"CustomID":{ENCODE(custom)}', f'"EventPayload":{ENCODE(meta)}']
            headers = self.headers(m)
            if headers:
                parts.append('"Headers":' + json.dumps(dict(headers), separators=(",", ":")))
            if text is not None:
                parts.append(f'"TextPart":{text.encode(m.merge_data)}')
            if html is not None:
                parts.append(f'"HTMLPart":{html.encode(m.merge_data)}')
            out.append("{" + ",".join(parts) + "}")
        return '{"Messages":[' + ",".join(out) + "]}", "application/json"

    def read(self, chunk: Sequence[OutgoingMessage], status: int, body: Any,
             headers: Mapping[str, str]) -> list[RecipientResult] | None:
        answers = body.get("Messages") if isinstance(body, dict) else None
        if not isinstance(answers, list) or len(answers) != len(chunk):
            return None
        out = []
        for message, answer in zip(chunk, answers, strict=True):
            if answer.get("Status") == "success":
                to = (answer.get("To") or [{}])[0]
                mid = to.get("MessageUUID") or to.get("MessageID")
                out.append(result(message, RecipientStatus.ACCEPTED if mid
                                  else RecipientStatus.UNKNOWN, message_id=mid,
                                  error="" if mid else "in doubt: success without an id"))
                continue
            errors = answer.get("Errors") or []
            words = "; ".join(f"{e.get('ErrorCode', '')} {e.get('ErrorMessage', '')}".strip()
                              for e in errors) or "error"
            out.append(result(message, RecipientStatus.REJECTED,
                              error=f"Mailjet refused this message: {words}"))
        return out
