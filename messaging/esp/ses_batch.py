"""Amazon SES (API v2): POST /v2/email/outbound-bulk-emails (SendBulkEmail), up to 50
destinations a call.

The content is an inline template (`DefaultContent.Template.TemplateContent`: subject, text,
HTML) whose `{{ field }}` tags stay as they are (SES's template syntax); each entry has its
destination, `ReplacementTemplateData` (our values as a JSON string; SES inserts them as
they are, so the HTML part names an escaped twin) and `ReplacementTags` (recipient_id;
broadcast_id is a default tag) and `ReplacementHeaders` (the person's own List-Unsubscribe
pair and our other headers, messaging.rendering.message_headers; SES adds an entry's headers
to the message, over any of the template's). Tags come back on SES's events. Template values
are one line each, since they may fill the subject. SES answers per entry
(`BulkEmailEntryResults`: Status SUCCESS with a MessageId, or an error status with words):
per-recipient outcome. Requests are signed with AWS Signature Version 4 (botocore's signer;
boto3 is already a dependency for anymail's SES webhooks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .base import OutgoingMessage, RecipientResult, RecipientStatus
from .batch import (
    HttpBatchSender,
    MergeBody,
    SendLimits,
    content_key,
    result,
    subject_safe_strings,
)

# An entry with one of these was refused for good; other non-SUCCESS statuses (throttling,
# quota, paused account, transient failure) were not sent either, and say why.
REJECTED = frozenset({"MESSAGE_REJECTED", "INVALID_PARAMETER",
                      "MAIL_FROM_DOMAIN_NOT_VERIFIED"})


def _tag(name: str) -> str:
    return "{{" + name + "}}"


class SigV4(requests.auth.AuthBase):
    """Signs each request for SES v2 (service "ses") in one region."""

    def __init__(self, access_key: str, secret_key: str, region: str,
                 session_token: str | None = None) -> None:
        self.signer = SigV4Auth(Credentials(access_key, secret_key, session_token), "ses",
                                region)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        aws = AWSRequest(method=request.method, url=request.url, data=request.body,
                         headers={"Content-Type": request.headers.get("Content-Type", "")})
        self.signer.add_auth(aws)
        request.headers.update(dict(aws.headers.items()))
        return request


class SesBatchSender(HttpBatchSender):
    esp_name = "Amazon SES"
    provider = "ses"
    path = "/v2/email/outbound-bulk-emails"
    # SendBulkEmail: at most 50 destinations per call. A new production account may send
    # 14 messages a second until AWS raises it: the account stores the real quota.
    limits = SendLimits(max_per_call=50, default_rate=14, per_recipient_outcome=True)

    def __init__(self, *, access_key: str, secret_key: str, region: str = "us-east-1",
                 base_url: str = "", configuration_set: str = "",
                 session_token: str | None = None, **options: Any) -> None:
        if not access_key or not secret_key:
            raise ValueError("Amazon SES: access_key and secret_key are required")
        self.configuration_set = configuration_set
        super().__init__(base_url=base_url or f"https://email.{region}.amazonaws.com",
                         auth=SigV4(access_key, secret_key, region, session_token), **options)

    def _content(self, first: OutgoingMessage) -> dict[str, Any]:
        def make() -> dict[str, Any]:
            template: dict[str, str] = {"Subject": MergeBody(first.subject, tag=_tag).text}
            if first.text:
                template["Text"] = MergeBody(first.text, tag=_tag).text
            if first.html:
                template["Html"] = MergeBody(first.html, tag=_tag, html=True,
                                             escape_suffix=True).text
            data: dict[str, Any] = {
                "FromEmailAddress": first.from_email,
                "DefaultContent": {"Template": {"TemplateContent": template,
                                                "TemplateData": "{}"}}}
            if first.reply_to:
                data["ReplyToAddresses"] = list(first.reply_to)
            if self.configuration_set:
                data["ConfigurationSetName"] = self.configuration_set
            return data
        return self.cached(("ses", *content_key(first)), make)

    def encode(self, chunk: Sequence[OutgoingMessage]) -> tuple[str, str]:
        first = chunk[0]
        common = {k: v for k, v in first.metadata.items() if k != "recipient_id"}
        entries = []
        for m in chunk:
            entry: dict[str, Any] = {
                "Destination": {"ToAddresses": [m.to]},
                "ReplacementTags": [{"Name": k, "Value": v} for k, v in m.metadata.items()
                                    if k not in common],
                "ReplacementEmailContent": {"ReplacementTemplate": {
                    "ReplacementTemplateData": json.dumps(
                        subject_safe_strings(m, with_html=True))}}}
            headers = self.headers(m)
            if headers:
                entry["ReplacementHeaders"] = [{"Name": k, "Value": v}
                                               for k, v in headers.items()]
            entries.append(entry)
        body = {**self._content(first), "BulkEmailEntries": entries,
                "DefaultEmailTags": [{"Name": k, "Value": v} for k, v in common.items()]}
        return json.dumps(body, separators=(",", ":")), "application/json"

    def read(self, chunk: Sequence[OutgoingMessage], status: int, body: Any,
             headers: Mapping[str, str]) -> list[RecipientResult] | None:
        entries = body.get("BulkEmailEntryResults") if isinstance(body, dict) else None
        if not isinstance(entries, list) or len(entries) != len(chunk):
            return None
        out = []
        for message, entry in zip(chunk, entries, strict=True):
            state = entry.get("Status")
            if state == "SUCCESS" and entry.get("MessageId"):
                out.append(result(message, RecipientStatus.ACCEPTED,
                                  message_id=entry["MessageId"]))
                continue
            verdict = RecipientStatus.REJECTED if state in REJECTED else RecipientStatus.FAILED
            out.append(result(message, verdict,
                              error=f"Amazon SES {state}: {entry.get('Error') or ''}".strip()))
        return out
