"""SparkPost: POST /api/v1/transmissions with a recipient list (inline recipients).

One transmission per call: shared content whose `{{ field }}` tags stay as they are
(SparkPost's own substitution syntax; it HTML-escapes values in the HTML part itself), per
recipient `substitution_data` (values one line each, since they may fill the subject) and
`metadata` (recipient_id; broadcast_id is the transmission's). Headers are substituted too
(SparkPost's template language covers subject, headers, text and HTML): `content.headers`
holds `{"List-Unsubscribe": "{{amends_h_list_unsubscribe}}", …}` and each recipient's
substitution_data their own values (messaging.rendering.message_headers); a call's messages
carry the same header names (group_for_batches, `header_names_only`). SparkPost answers
`{"results": {"total_accepted_recipients": n, "total_rejected_recipients": m, "id":
"<transmission id>"}}`: counts, not names. All accepted → rows sent with the transmission
id, saying the answer was per call. Some rejected → every row of the call in doubt with
those counts in its reason: its tracking events (metadata comes back on them) settle who got
it; the rest are for a person. Auth: header "Authorization: <API key>". EU accounts:
base_url https://api.eu.sparkpost.com.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .base import OutgoingMessage, RecipientResult, RecipientStatus
from .batch import (
    HttpBatchSender,
    SendLimits,
    content_key,
    header_variable,
    result,
    split_address,
    subject_safe_strings,
)

DEFAULT_URL = "https://api.sparkpost.com"


class SparkPostBatchSender(HttpBatchSender):
    esp_name = "SparkPost"
    provider = "sparkpost"
    path = "/api/v1/transmissions"
    # No hard per-call recipient maximum is documented; 1,000 is what the ledger claims at
    # most per batch. Per-second: none published.
    limits = SendLimits(max_per_call=1000, default_rate=5000, per_recipient_outcome=False)
    header_mode = "substituted"

    def __init__(self, *, api_key: str, base_url: str = DEFAULT_URL, **options: Any) -> None:
        if not api_key:
            raise ValueError("SparkPost: api_key is required")
        super().__init__(base_url=base_url, headers={"Authorization": api_key}, **options)

    def _content(self, first: OutgoingMessage) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            name, address = split_address(first.from_email)
            content: dict[str, Any] = {
                "from": {"email": address, **({"name": name} if name else {})},
                "subject": first.subject}
            if first.html:
                content["html"] = first.html
            if first.text:
                content["text"] = first.text
            if first.reply_to:
                content["reply_to"] = ", ".join(first.reply_to)
            return content
        return self.cached(("sparkpost", *content_key(first)), make)

    def encode(self, chunk: Sequence[OutgoingMessage]) -> tuple[str, str]:
        first = chunk[0]
        common = {k: v for k, v in first.metadata.items() if k != "recipient_id"}
        names = list(self.headers(first))  # the same names for the whole call (grouping)
        variables = [(name, header_variable(name)) for name in names]
        recipients = []
        for m in chunk:
            address = {"email": m.to, "name": m.to_name} if m.to_name else {"email": m.to}
            headers = self.headers(m)
            values = subject_safe_strings(m)
            for name, variable in variables:
                values[variable] = headers[name]
            recipients.append({
                "address": address, "substitution_data": values,
                "metadata": {k: v for k, v in m.metadata.items() if k not in common}})
        content = self._content(first)
        if names:
            content = {**content, "headers": {
                name: "{{" + header_variable(name) + "}}" for name in names}}
        body = {"content": content, "metadata": common, "recipients": recipients}
        return json.dumps(body, separators=(",", ":")), "application/json"

    def read(self, chunk: Sequence[OutgoingMessage], status: int, body: Any,
             headers: Mapping[str, str]) -> list[RecipientResult] | None:
        answer = body.get("results") if isinstance(body, dict) else None
        if not isinstance(answer, dict) or "id" not in answer:
            return None
        accepted = int(answer.get("total_accepted_recipients", 0))
        rejected = int(answer.get("total_rejected_recipients", 0))
        if accepted == len(chunk) and rejected == 0:
            return self.per_call(chunk, str(answer["id"]))
        if accepted == 0:
            error = f"SparkPost rejected all {rejected} recipients of the call"
            return [result(m, RecipientStatus.REJECTED, error=error) for m in chunk]
        error = (f"in doubt: SparkPost accepted {accepted} and rejected {rejected} of "
                 f"{len(chunk)} in transmission {answer['id']} without naming them; its "
                 "tracking events settle who got it")
        return [result(m, RecipientStatus.UNKNOWN, error=error) for m in chunk]
