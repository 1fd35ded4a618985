"""Loopback batch-send endpoints, one per ESP, speaking each ESP's documented request and
answer (paths, auth, limits, per-recipient or per-call results, partial failures).

Each records the messages it accepted in `deliveries` (one dict per recipient: recipient,
subject, html, text and headers as the ESP would render them with its own merge syntax and
per-recipient header fields, metadata), so
tests can check who got what and that nobody got it twice (`duplicates()`). `refuse` holds
addresses the ESP turns away: per recipient where the ESP answers per recipient, for the
whole call where it validates the whole call (SendGrid, Mailgun, Brevo).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import Counter
from html import escape
from typing import Any
from urllib.parse import parse_qsl

from .esps import BrevoLoopback, PostmarkLoopback, SendGridLoopback, SparkPostLoopback
from .server import FaultPlan, LoopbackServer, RecordedCall, Reply


class _Deliveries:
    """Mixin: the accepted messages and their counts."""

    def __init__(self, **kwargs: Any) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self.refuse: set[str] = set()
        super().__init__(**kwargs)

    def _accept(self, recipient: str, *, subject: str = "", html: str = "", text: str = "",
                metadata: dict[str, str] | None = None, message_id: str = "",
                headers: dict[str, str] | None = None) -> str:
        message_id = message_id or uuid.uuid4().hex
        self.deliveries.append({"recipient": recipient, "subject": subject, "html": html,
                                "text": text, "metadata": dict(metadata or {}),
                                "headers": dict(headers or {}), "message_id": message_id})
        return message_id

    def recipient_counts(self) -> Counter:
        with self.lock:  # type: ignore[attr-defined]
            return Counter(d["recipient"] for d in self.deliveries)

    def duplicates(self) -> dict[str, int]:
        return {r: n for r, n in self.recipient_counts().items() if n > 1}

    def delivered_to(self, recipient: str) -> dict[str, Any]:
        return next(d for d in self.deliveries if d["recipient"] == recipient)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _fill(text: str, pattern: str, values: dict[str, Any], *, escape_html: bool = False
          ) -> str:
    def repl(match: re.Match) -> str:
        value = values.get(match.group(1))
        if value is None:
            return match.group(0)
        return escape(str(value)) if escape_html else str(value)
    return re.sub(pattern, repl, text or "")


# --- SendGrid: /v3/mail/send with personalizations -----------------------------------------

class SendGridBatchLoopback(_Deliveries, SendGridLoopback):
    def mail_send(self, call: RecordedCall, match: re.Match) -> Reply:
        if (refused := self.mail_send_refusal(call)) is not None:
            return refused
        body = call.json
        personalizations = body["personalizations"]
        content = {c["type"]: c["value"] for c in body.get("content") or []}
        if not body.get("from", {}).get("email") or not content:
            return self.errors(400, "The from object and content are required.", "from")
        for i, p in enumerate(personalizations):
            for to in p.get("to", []):
                if "@" not in to.get("email", "") or to["email"] in self.refuse:
                    return self.errors(400, "Does not contain a valid address.",
                                       f"personalizations.{i}.to")
        message_id = uuid.uuid4().hex[:22]
        for p in personalizations:
            subs = p.get("substitutions") or {}

            def sub(text: str, subs: dict = subs) -> str:
                for key, value in subs.items():
                    text = text.replace(key, value)
                return text
            for to in p["to"]:
                self._accept(to["email"], subject=sub(p.get("subject") or body["subject"]),
                             html=sub(content.get("text/html", "")),
                             text=sub(content.get("text/plain", "")),
                             metadata={**body.get("custom_args", {}),
                                       **p.get("custom_args", {})},
                             headers={**body.get("headers", {}), **p.get("headers", {})},
                             message_id=message_id)
        return Reply(202, None, {"X-Message-Id": message_id})


# --- Mailgun: /v3/{domain}/messages with recipient-variables --------------------------------

class MailgunLoopback(_Deliveries, LoopbackServer):
    name = "mailgun"

    def __init__(self, *, api_key: str = "key-loopback", domain: str = "mg.shop.test",
                 faults: FaultPlan | None = None) -> None:
        self.api_key = api_key
        self.domain = domain
        super().__init__(faults=faults)

    def fault_body(self, status: int) -> Any:
        return {"message": f"injected fault {status}"}

    def setup_routes(self) -> None:
        self.route("POST", r"/v3/(?P<domain>[^/]+)/messages", self.messages)

    def messages(self, call: RecordedCall, match: re.Match) -> Reply:
        if call.header("Authorization") != _basic("api", self.api_key):
            return Reply(401, "Forbidden")
        if match["domain"] != self.domain:
            return Reply(404, {"message": "Domain not found"})
        fields = parse_qsl(call.body.decode(), keep_blank_values=True)
        form: dict[str, list[str]] = {}
        for key, value in fields:
            form.setdefault(key, []).append(value)
        to = form.get("to", [])
        if not to or not form.get("from") or not (form.get("text") or form.get("html")):
            return Reply(400, {"message": "'from', 'to' and 'text' or 'html' are required"})
        if len(to) > 1000:
            return Reply(400, {"message": "Too many recipients: batch sending takes up to "
                                          "1000"})
        variables = json.loads(form.get("recipient-variables", ["{}"])[0])
        addresses = [re.sub(r"^.*<(.+)>$", r"\1", t).strip() for t in to]
        for address in addresses:
            if "@" not in address or address in self.refuse:
                return Reply(400, {"message": f"to parameter is not a valid address: {address}"})
        message_id = f"<{uuid.uuid4().hex}@{self.domain}>"
        pattern = r"%recipient\.([A-Za-z0-9_]+)%"
        for address in addresses:
            values = variables.get(address, {})
            custom = {k[2:]: _fill(v[0], pattern, values) for k, v in form.items()
                      if k.startswith("v:")}
            headers = {k[2:]: _fill(v[0], pattern, values) for k, v in form.items()
                       if k.startswith("h:")}
            self._accept(address, subject=_fill(form["subject"][0], pattern, values),
                         html=_fill((form.get("html") or [""])[0], pattern, values),
                         text=_fill((form.get("text") or [""])[0], pattern, values),
                         metadata=custom, message_id=message_id, headers=headers)
        return Reply(200, {"id": message_id, "message": "Queued. Thank you."})


# --- SparkPost: /api/v1/transmissions with inline recipients --------------------------------

class SparkPostBatchLoopback(_Deliveries, SparkPostLoopback):
    def setup_routes(self) -> None:
        super().setup_routes()
        self.route("POST", r"/api/v1/transmissions", self.transmission)

    def transmission(self, call: RecordedCall, match: re.Match) -> Reply:
        if call.header("Authorization") != self.api_key:
            return Reply(401, {"errors": [{"message": "Unauthorized."}]})
        body = call.json or {}
        content, recipients = body.get("content") or {}, body.get("recipients") or []
        if not recipients or not content.get("from"):
            return Reply(422, {"errors": [{"message": "required field is missing",
                                           "description": "recipients and content.from"}]})
        transmission = str(uuid.uuid4().int)[:17]
        accepted = rejected = 0
        pattern = r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}"
        for r in recipients:
            address = r["address"]["email"]
            if "@" not in address or address in self.refuse:
                rejected += 1
                continue
            accepted += 1
            values = r.get("substitution_data") or {}
            self._accept(address, subject=_fill(content.get("subject", ""), pattern, values),
                         html=_fill(content.get("html", ""), pattern, values, escape_html=True),
                         text=_fill(content.get("text", ""), pattern, values),
                         metadata={**body.get("metadata", {}), **r.get("metadata", {})},
                         headers={k: _fill(v, pattern, values)
                                  for k, v in (content.get("headers") or {}).items()},
                         message_id=transmission)
        if not accepted:
            return Reply(422, {"errors": [{"message": "All provided recipients were "
                                                      "rejected.", "code": "1902"}]})
        return Reply(200, {"results": {"total_rejected_recipients": rejected,
                                       "total_accepted_recipients": accepted,
                                       "id": transmission}})


# --- Amazon SES v2: SendBulkEmail -----------------------------------------------------------

class SesLoopback(_Deliveries, LoopbackServer):
    name = "ses"

    def __init__(self, *, access_key: str = "AKIALOOPBACK", secret_key: str = "loopback",
                 faults: FaultPlan | None = None) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.throttle: set[str] = set()  # addresses answered ACCOUNT_THROTTLED
        super().__init__(faults=faults)

    def fault_body(self, status: int) -> Any:
        return {"message": "Maximum sending rate exceeded." if status == 429
                else f"injected fault {status}"}

    def setup_routes(self) -> None:
        self.route("POST", r"/v2/email/outbound-bulk-emails", self.send_bulk)

    def send_bulk(self, call: RecordedCall, match: re.Match) -> Reply:
        auth = call.header("Authorization") or ""
        if not auth.startswith(f"AWS4-HMAC-SHA256 Credential={self.access_key}/") \
                or "/ses/aws4_request" not in auth or not call.header("X-Amz-Date"):
            return Reply(403, {"message": "The request signature we calculated does not "
                                          "match the signature you provided."},
                         {"x-amzn-ErrorType": "SignatureDoesNotMatchException"})
        body = call.json or {}
        entries = body.get("BulkEmailEntries") or []
        if not 1 <= len(entries) <= 50:
            return Reply(400, {"message": "BulkEmailEntries must hold 1 to 50 entries."},
                         {"x-amzn-ErrorType": "BadRequestException"})
        template = (body.get("DefaultContent") or {}).get("Template") or {}
        content = template.get("TemplateContent") or {}
        if not content.get("Subject"):
            return Reply(400, {"message": "Template content needs a subject."},
                         {"x-amzn-ErrorType": "BadRequestException"})
        tags = {t["Name"]: t["Value"] for t in body.get("DefaultEmailTags") or []}
        pattern = r"\{\{\{?\s*([A-Za-z0-9_]+)\s*\}?\}\}"
        results = []
        for entry in entries:
            address = entry["Destination"]["ToAddresses"][0]
            if address in self.refuse:
                results.append({"Status": "MESSAGE_REJECTED",
                                "Error": "Email address is on the suppression list."})
                continue
            if address in self.throttle:
                results.append({"Status": "ACCOUNT_THROTTLED",
                                "Error": "Maximum sending rate exceeded."})
                continue
            values = json.loads(((entry.get("ReplacementEmailContent") or {})
                                 .get("ReplacementTemplate") or {})
                                .get("ReplacementTemplateData") or "{}")
            headers = {h["Name"]: h["Value"] for h in template.get("Headers") or []}
            headers.update({h["Name"]: h["Value"]
                            for h in entry.get("ReplacementHeaders") or []})
            message_id = self._accept(
                address, subject=_fill(content["Subject"], pattern, values),
                html=_fill(content.get("Html", ""), pattern, values),
                text=_fill(content.get("Text", ""), pattern, values),
                metadata={**tags, **{t["Name"]: t["Value"]
                                     for t in entry.get("ReplacementTags") or []}},
                headers=headers)
            results.append({"Status": "SUCCESS", "MessageId": message_id})
        return Reply(200, {"BulkEmailEntryResults": results})


# --- Brevo: /v3/smtp/email with messageVersions ---------------------------------------------

class BrevoBatchLoopback(_Deliveries, BrevoLoopback):
    def setup_routes(self) -> None:
        super().setup_routes()
        self.route("POST", r"/v3/smtp/email", self.smtp_email)

    def smtp_email(self, call: RecordedCall, match: re.Match) -> Reply:
        if call.header("api-key") != self.api_key:
            return Reply(401, {"code": "unauthorized", "message": "Key not found"})
        body = call.json or {}
        versions = body.get("messageVersions") or []
        if not versions or len(versions) > 1000:
            return Reply(400, {"code": "invalid_parameter",
                               "message": "messageVersions must hold 1 to 1000 versions"})
        for v in versions:
            for to in v.get("to", []):
                if "@" not in to.get("email", "") or to["email"] in self.refuse:
                    return Reply(400, {"code": "invalid_parameter",
                                       "message": f"email is not valid in to: {to['email']}"})
        pattern = r"\{\{\s*params\.([A-Za-z0-9_]+)\s*\}\}"
        ids = []
        for v in versions:
            params = v.get("params") or {}
            # Strict reading: a version's headers replace the call's, they do not add to them.
            headers = v.get("headers") or body.get("headers") or {}
            custom = json.loads(headers.get("X-Mailin-custom") or "{}")
            mid = f"<{uuid.uuid4().hex}@smtp-relay.mailin.fr>"
            for to in v["to"]:
                self._accept(to["email"],
                             subject=_fill(v.get("subject") or body.get("subject", ""),
                                           pattern, params),
                             html=_fill(v.get("htmlContent") or body.get("htmlContent", ""),
                                        pattern, params),
                             text=_fill(v.get("textContent") or body.get("textContent", ""),
                                        pattern, params),
                             metadata=custom, message_id=mid, headers=headers)
            ids.append(mid)
        return Reply(201, {"messageIds": ids})


# --- Mailjet: /v3.1/send with a Messages array ----------------------------------------------

class MailjetLoopback(_Deliveries, LoopbackServer):
    name = "mailjet"

    def __init__(self, *, api_key: str = "mj-public", secret_key: str = "mj-secret",
                 faults: FaultPlan | None = None) -> None:
        self.api_key = api_key
        self.secret_key = secret_key
        super().__init__(faults=faults)

    def fault_body(self, status: int) -> Any:
        return {"ErrorIdentifier": str(uuid.uuid4()), "StatusCode": status,
                "ErrorMessage": f"injected fault {status}"}

    def setup_routes(self) -> None:
        self.route("POST", r"/v3\.1/send", self.send)

    def send(self, call: RecordedCall, match: re.Match) -> Reply:
        if call.header("Authorization") != _basic(self.api_key, self.secret_key):
            return Reply(401, {"ErrorMessage": "API key authentication/authorization failure",
                               "StatusCode": 401})
        messages = (call.json or {}).get("Messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= 50:
            return Reply(400, {"ErrorMessage": "Messages must hold 1 to 50 messages",
                               "StatusCode": 400})
        answers, any_error = [], False
        for message in messages:
            to = message["To"][0]["Email"]
            if "@" not in to or to in self.refuse:
                any_error = True
                answers.append({"Status": "error", "Errors": [{
                    "ErrorIdentifier": str(uuid.uuid4()), "ErrorCode": "mj-0013",
                    "StatusCode": 400, "ErrorMessage": f"\"{to}\" is an invalid email "
                                                       "address.",
                    "ErrorRelatedTo": ["To[0].Email"]}]})
                continue
            uid = str(uuid.uuid4())
            self._accept(to, subject=message.get("Subject", ""),
                         html=message.get("HTMLPart", ""), text=message.get("TextPart", ""),
                         metadata=json.loads(message.get("EventPayload") or "{}"),
                         message_id=uid, headers=message.get("Headers") or {})
            answers.append({"Status": "success", "CustomID": message.get("CustomID", ""),
                            "To": [{"Email": to, "MessageUUID": uid,
                                    "MessageID": uuid.uuid4().int % 10**17,
                                    "MessageHref": f"https://api.mailjet.com/v3/REST/message/"
                                                   f"{uid}"}],
                            "Cc": [], "Bcc": []})
        return Reply(400 if any_error else 200, {"Messages": answers})


# --- Mandrill: /api/1.0/messages/send.json --------------------------------------------------

class MandrillLoopback(_Deliveries, LoopbackServer):
    name = "mandrill"

    def __init__(self, *, api_key: str = "md-loopback", faults: FaultPlan | None = None
                 ) -> None:
        self.api_key = api_key
        super().__init__(faults=faults)

    def fault_body(self, status: int) -> Any:
        return {"status": "error", "code": -1, "name": "GeneralError",
                "message": f"injected fault {status}"}

    def setup_routes(self) -> None:
        self.route("POST", r"/api/1\.0/messages/send(\.json)?", self.send)

    def send(self, call: RecordedCall, match: re.Match) -> Reply:
        body = call.json or {}
        if body.get("key") != self.api_key:
            return Reply(500, {"status": "error", "code": -1, "name": "Invalid_Key",
                               "message": "Invalid API key"})
        message = body.get("message") or {}
        if not message.get("to") or not message.get("from_email"):
            return Reply(500, {"status": "error", "code": -2, "name": "ValidationError",
                               "message": "to and from_email are required"})
        merge = {v["rcpt"]: {x["name"]: x["content"] for x in v.get("vars", [])}
                 for v in message.get("merge_vars") or []}
        meta = {m["rcpt"]: m.get("values", {}) for m in message.get("recipient_metadata") or []}
        raw, escaped = r"\{\{\{\s*([A-Za-z0-9_]+)\s*\}\}\}", r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}"
        out = []
        for to in message["to"]:
            address = to["email"]
            if "@" not in address:
                out.append({"email": address, "status": "invalid", "_id": uuid.uuid4().hex})
                continue
            if address in self.refuse:
                out.append({"email": address, "status": "rejected",
                            "reject_reason": "hard-bounce", "_id": uuid.uuid4().hex})
                continue
            values = merge.get(address, {})

            def render(text: str, values: dict = values) -> str:
                text = _fill(text, raw, values)
                return _fill(text, escaped, values, escape_html=True)
            mid = self._accept(address, subject=render(message.get("subject", "")),
                               html=render(message.get("html", "")),
                               text=render(message.get("text", "")),
                               metadata={**message.get("metadata", {}),
                                         **meta.get(address, {})},
                               headers=dict(message.get("headers") or {}))  # never merged
            out.append({"email": address, "status": "sent", "_id": mid,
                        "reject_reason": None})
        return Reply(200, out)


# --- Postmark: /email/batch (its loopback lives in esps.py; this reads back what it got) -----

class PostmarkBatchLoopback(PostmarkLoopback):
    """PostmarkLoopback with the same reading helpers as the loopbacks above."""

    @property
    def refuse(self) -> set[str]:
        return self.inactive  # Postmark answers 406 (inactive recipient) per message

    def delivered_to(self, recipient: str) -> dict[str, Any]:
        for call in self.calls_to("POST", "/email/batch"):
            if call.status != 200:
                continue
            for message in call.json:
                if recipient in message.get("To", ""):
                    return {"recipient": recipient, "subject": message.get("Subject", ""),
                            "html": message.get("HtmlBody", ""),
                            "text": message.get("TextBody", ""),
                            "metadata": message.get("Metadata", {}),
                            "headers": {h["Name"]: h["Value"]
                                        for h in message.get("Headers") or []}}
        raise LookupError(recipient)
