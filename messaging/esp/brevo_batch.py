"""Brevo: POST /v3/smtp/email with `messageVersions` (up to 1,000 versions a call).

One version per recipient. Brevo lets a version carry its own subject and htmlContent, so
those are filled here (values HTML-escaped in the HTML, as for Postmark); the text part is
shared and takes the values from the version's `params` (`{{ params.field }}`). broadcast_id
travels in the X-Mailin-custom header (Brevo returns it on its webhook events); each version
carries `headers`: the person's own List-Unsubscribe pair and our other headers
(messaging.rendering.message_headers) with X-Mailin-custom again, as a version's headers
stand in for the call's. The subject's merge values are one line each; Brevo answers 201
`{"messageIds": [...]}`, one id per version in order: per-recipient ids, so a recipient's
events are matched by message id. Auth: header "api-key".
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
    MergeBody,
    SendLimits,
    content_key,
    merge_values,
    result,
    split_address,
)

DEFAULT_URL = "https://api.brevo.com"


def _tag(name: str) -> str:
    return "{{ params." + name + " }}"


class BrevoBatchSender(HttpBatchSender):
    esp_name = "Brevo"
    provider = "brevo"
    path = "/v3/smtp/email"
    # "Send up to 1000 email messages in one API call", the endpoint up to 6,000 times an
    # hour: 1,000 messages a second at most on average.
    limits = SendLimits(max_per_call=1000, default_rate=1000, per_recipient_outcome=True)

    def __init__(self, *, api_key: str, base_url: str = DEFAULT_URL, **options: Any) -> None:
        if not api_key:
            raise ValueError("Brevo: api_key is required")
        super().__init__(base_url=base_url, headers={"api-key": api_key}, **options)

    def _shared(self, first: OutgoingMessage) -> tuple[str, JsonTemplate, JsonTemplate | None]:
        def make() -> tuple[str, JsonTemplate, JsonTemplate | None]:
            name, address = split_address(first.from_email)
            data: dict[str, Any] = {
                "sender": {"email": address, **({"name": name} if name else {})},
                "subject": first.subject}
            if first.text:
                data["textContent"] = MergeBody(first.text, tag=_tag).text
            if first.html:
                data["htmlContent"] = first.html  # each version brings its own
            if first.reply_to:
                data["replyTo"] = {"email": split_address(first.reply_to[0])[1]}
            headers = dict(first.headers)
            common = {k: v for k, v in first.metadata.items() if k != "recipient_id"}
            if common:
                headers["X-Mailin-custom"] = json.dumps(common, separators=(",", ":"))
            if headers:
                data["headers"] = headers
            head = json.dumps(data, separators=(",", ":"))[:-1]
            html = JsonTemplate(first.html, html=True) if first.html else None
            return head, JsonTemplate(first.subject, html=False), html
        return self.cached(("brevo", *content_key(first)), make)

    def encode(self, chunk: Sequence[OutgoingMessage]) -> tuple[str, str]:
        first = chunk[0]
        head, subject, html = self._shared(first)
        common = {k: v for k, v in first.metadata.items() if k != "recipient_id"}
        custom = {"X-Mailin-custom": json.dumps(common, separators=(",", ":"))} \
            if common else {}
        versions = []
        for m in chunk:
            to = {"email": m.to, **({"name": m.to_name} if m.to_name else {})}
            # A version's headers stand in for the call's: our metadata header goes too.
            headers = {**self.headers(m), **custom}
            part = (f'{{"to":[{json.dumps(to, separators=(",", ":"))}],'
                    f'"params":{json.dumps(merge_values(m.merge_data, with_html=False))},'
                    f'"subject":{subject.encode(header_merge_data(m.merge_data))}')
            if headers:
                part += f',"headers":{json.dumps(headers, separators=(",", ":"))}'
            if html is not None:
                part += f',"htmlContent":{html.encode(m.merge_data)}'
            versions.append(part + "}")
        return f'{head},{ENCODE("messageVersions")}:[{",".join(versions)}]}}', \
            "application/json"

    def read(self, chunk: Sequence[OutgoingMessage], status: int, body: Any,
             headers: Mapping[str, str]) -> list[RecipientResult] | None:
        ids = body.get("messageIds") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            return None
        if len(ids) == len(chunk):
            return [result(m, RecipientStatus.ACCEPTED, message_id=mid)
                    for m, mid in zip(chunk, ids, strict=True)]
        return self.per_call(chunk, None)  # 201 took the call; ids did not line up
