"""Mandrill (Mailchimp Transactional): POST /api/1.0/messages/send.json.

One message with many `to` recipients and `preserve_recipients: false` sends each their own
copy; `merge_language: handlebars` with per-recipient `merge_vars` fills our tags (written
`{{field}}` in the HTML part, which Mandrill's handlebars HTML-escapes, and `{{{field}}}`
elsewhere, inserted as they are); `metadata` (broadcast_id) and `recipient_metadata`
(recipient_id) come back on its webhook events. Headers: Mandrill's `headers` are the
message's, the same for every recipient, and its merge tags do not reach them, so messages
whose headers differ (each person's own List-Unsubscribe,
messaging.rendering.message_headers) never share a call: one call a person. Merge values are
one line each, since they may fill the subject. Mandrill answers with one object per
recipient — status sent / queued / scheduled / rejected / invalid, `_id`, `reject_reason` —
so the outcome is per person. Its errors come as HTTP 500 with `{"status": "error", "name":
…}`: an invalid key or a validation error was certainly not sent; others are in doubt. Auth:
the API key in the body ("key").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .base import OutgoingMessage, RecipientResult, RecipientStatus
from .batch import (
    HttpBatchSender,
    MergeBody,
    SendLimits,
    content_key,
    result,
    split_address,
    subject_safe_values,
)

DEFAULT_URL = "https://mandrillapp.com"

STATUS = {"sent": RecipientStatus.ACCEPTED, "queued": RecipientStatus.QUEUED,
          "scheduled": RecipientStatus.QUEUED, "rejected": RecipientStatus.REJECTED,
          "invalid": RecipientStatus.REJECTED}
# Error names that mean the call was refused before anything was sent.
REFUSED = frozenset({"Invalid_Key", "ValidationError", "PaymentRequired",
                     "Unknown_Subaccount", "Unknown_Template"})


class MandrillBatchSender(HttpBatchSender):
    esp_name = "Mandrill"
    provider = "mandrill"
    path = "/api/1.0/messages/send.json"
    # No per-call maximum is documented; 1,000 is the ledger's largest batch.
    limits = SendLimits(max_per_call=1000, default_rate=1000, per_recipient_outcome=True)
    read_statuses = frozenset({500})
    # Mandrill's `headers` are the message's, for every recipient, and its merge tags do
    # not reach headers: a person's own List-Unsubscribe means a call of their own.
    header_mode = "per_call"

    def __init__(self, *, api_key: str, base_url: str = DEFAULT_URL, **options: Any) -> None:
        if not api_key:
            raise ValueError("Mandrill: api_key is required")
        self.api_key = api_key
        super().__init__(base_url=base_url, **options)

    def _message(self, first: OutgoingMessage) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            name, address = split_address(first.from_email)

            def raw(key: str) -> str:
                return "{{{" + key + "}}}"

            message: dict[str, Any] = {
                "from_email": address, "subject": MergeBody(first.subject, tag=raw).text,
                "preserve_recipients": False, "merge": True, "merge_language": "handlebars"}
            if name:
                message["from_name"] = name
            if first.html:
                message["html"] = MergeBody(first.html, tag=lambda k: "{{" + k + "}}").text
            if first.text:
                message["text"] = MergeBody(first.text, tag=raw).text
            if first.reply_to:
                message["headers"] = {"Reply-To": ", ".join(first.reply_to)}
            return message
        return self.cached(("mandrill", *content_key(first)), make)

    def encode(self, chunk: Sequence[OutgoingMessage]) -> tuple[str, str]:
        first = chunk[0]
        common = {k: v for k, v in first.metadata.items() if k != "recipient_id"}
        message = self._message(first)
        # Every message of the call has the same headers (group_for_batches, per_call).
        headers = {**message.get("headers", {}), **self.headers(first)}
        message = {
            **message, **({"headers": headers} if headers else {}), "metadata": common,
            "to": [{"email": m.to, **({"name": m.to_name} if m.to_name else {}), "type": "to"}
                   for m in chunk],
            "merge_vars": [{"rcpt": m.to, "vars": [{"name": k, "content": "" if v is None
                                                    else str(v)}
                                                   for k, v in subject_safe_values(m).items()]}
                           for m in chunk],
            "recipient_metadata": [{"rcpt": m.to, "values": {
                k: v for k, v in m.metadata.items() if k not in common}} for m in chunk]}
        return json.dumps({"key": self.api_key, "message": message},
                          separators=(",", ":")), "application/json"

    def read(self, chunk: Sequence[OutgoingMessage], status: int, body: Any,
             headers: Mapping[str, str]) -> list[RecipientResult] | None:
        if isinstance(body, dict) and body.get("status") == "error":
            if body.get("name") not in REFUSED:
                return None  # GeneralError and the like: the status (500) says in doubt
            error = f"Mandrill refused the call: {body.get('name')}: {body.get('message', '')}"
            return [result(m, RecipientStatus.FAILED, error=error) for m in chunk]
        if not isinstance(body, list) or status >= 300:
            return None
        by_address = {str(a.get("email", "")).lower(): a for a in body}
        out = []
        for m in chunk:
            answer = by_address.get(m.to.lower())
            if answer is None:
                out.append(result(m, RecipientStatus.UNKNOWN,
                                  error="in doubt: Mandrill did not report this recipient"))
                continue
            verdict = STATUS.get(answer.get("status", ""), RecipientStatus.UNKNOWN)
            error = "" if verdict in (RecipientStatus.ACCEPTED, RecipientStatus.QUEUED) else \
                f"Mandrill {answer.get('status')}: {answer.get('reject_reason') or ''}".strip()
            out.append(result(m, verdict, message_id=answer.get("_id"), error=error))
        return out
