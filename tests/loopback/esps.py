"""Loopback ESPs: each speaks one ESP's documented endpoints (paths, auth, status codes,
JSON shapes) with just enough state to answer like the real thing."""

from __future__ import annotations

import base64
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses
from typing import Any
from zoneinfo import ZoneInfo

from .server import FaultPlan, LoopbackServer, RecordedCall, Reply

# --- Mailchimp Marketing API v3 ------------------------------------------------------------

class MailchimpLoopback(LoopbackServer):
    name = "mailchimp"

    def __init__(self, *, api_key: str = "0123456789abcdef-us21",
                 faults: FaultPlan | None = None) -> None:
        self.api_key = api_key
        self.campaigns: dict[str, dict[str, Any]] = {}
        super().__init__(faults=faults)

    def add_campaign(self, campaign_id: str, *, status: str = "sending", type: str = "regular",  # noqa: A002
                     emails_sent: int = 0, delivery_status: bool = True) -> None:
        with self.lock:
            self.campaigns[campaign_id] = {
                "id": campaign_id, "type": type, "status": status, "emails_sent": emails_sent,
                "delivery_status": {"enabled": delivery_status, "can_cancel": status == "sending",
                                    "status": "delivering" if status == "sending" else status,
                                    "emails_sent": emails_sent, "emails_canceled": 0},
            }

    def problem(self, status: int, title: str, detail: str) -> Reply:
        return Reply(status, {"type": "https://mailchimp.com/developer/marketing/docs/errors/",
                              "title": title, "status": status, "detail": detail,
                              "instance": str(uuid.uuid4())})

    def fault_body(self, status: int) -> Any:
        titles = {429: "Too Many Requests", 500: "Internal Server Error",
                  503: "Service Unavailable"}
        return self.problem(status, titles.get(status, "Error"), "Injected fault.").body

    def _auth(self, call: RecordedCall) -> Reply | None:
        header = call.header("Authorization") or ""
        if header.startswith("Basic "):
            user_pass = base64.b64decode(header[6:]).decode()
            if user_pass.split(":", 1)[-1] == self.api_key:
                return None
        return self.problem(401, "API Key Invalid", "Your API key may be invalid, or you've "
                                                     "attempted to access the wrong datacenter.")

    def _campaign(self, call: RecordedCall, match: re.Match) -> tuple[dict | None, Reply | None]:
        if (denied := self._auth(call)) is not None:
            return None, denied
        campaign = self.campaigns.get(match["id"])
        if campaign is None:
            return None, self.problem(404, "Resource Not Found",
                                      "The requested resource could not be found.")
        return campaign, None

    def setup_routes(self) -> None:
        base = r"/3\.0/campaigns/(?P<id>[^/]+)"
        self.route("GET", base, self.get_campaign)
        self.route("POST", base + r"/actions/(?P<action>cancel-send|unschedule|pause|resume)",
                   self.action)

    def get_campaign(self, call: RecordedCall, match: re.Match) -> Reply:
        campaign, error = self._campaign(call, match)
        return error or Reply(200, campaign)

    def action(self, call: RecordedCall, match: re.Match) -> Reply:
        campaign, error = self._campaign(call, match)
        if error:
            return error
        action, status, kind = match["action"], campaign["status"], campaign["type"]
        if action == "cancel-send":
            if kind not in ("regular", "plaintext") or status != "sending":
                return self.problem(400, "Bad Request",
                                    "This campaign cannot be canceled: it is not sending.")
            campaign["status"] = "canceled"
            campaign["delivery_status"].update(status="canceled", can_cancel=False)
        elif action == "unschedule":
            if status != "schedule":
                return self.problem(400, "Bad Request", "This campaign is not scheduled.")
            campaign["status"] = "save"
        elif action == "pause":
            if kind != "rss" or status != "sending":
                return self.problem(400, "Bad Request", "Only active RSS campaigns can be "
                                                        "paused.")
            campaign["status"] = "paused"
        else:  # resume
            if kind != "rss" or status != "paused":
                return self.problem(400, "Bad Request", "Only paused RSS campaigns can be "
                                                        "resumed.")
            campaign["status"] = "sending"
        return Reply(204)


# --- SendGrid v3: cancel scheduled sends, and mail/send ----------------------------------

class SendGridLoopback(LoopbackServer):
    name = "sendgrid"

    def __init__(self, *, api_key: str = "SG.loopback-key", faults: FaultPlan | None = None,
                 now=None) -> None:
        self.api_key = api_key
        self.batches: dict[str, datetime | None] = {}  # batch_id → send_at
        self.scheduled_sends: dict[str, str] = {}  # batch_id → pause | cancel
        self.deliveries: list[dict[str, Any]] = []  # one per recipient accepted by mail/send
        self.now = now or (lambda: datetime.now(UTC))
        super().__init__(faults=faults)

    def add_batch(self, batch_id: str, *, send_at: datetime | None = None) -> None:
        with self.lock:
            self.batches[batch_id] = send_at

    def errors(self, status: int, message: str, field_name: str | None = None) -> Reply:
        return Reply(status, {"errors": [{"field": field_name, "message": message}]})

    def fault_body(self, status: int) -> Any:
        return {"errors": [{"field": None, "message": f"injected fault {status}"}]}

    def _auth(self, call: RecordedCall) -> Reply | None:
        if call.header("Authorization") != f"Bearer {self.api_key}":
            return self.errors(401, "The provided authorization grant is invalid, expired, or "
                                    "revoked")
        return None

    def setup_routes(self) -> None:
        self.route("POST", r"/v3/mail/batch", self.create_batch)
        self.route("POST", r"/v3/user/scheduled_sends", self.create_scheduled_send)
        one = r"/v3/user/scheduled_sends/(?P<batch_id>[^/]+)"
        self.route("GET", one, self.get_scheduled_send)
        self.route("PATCH", one, self.update_scheduled_send)
        self.route("DELETE", one, self.delete_scheduled_send)
        self.route("POST", r"/v3/mail/send", self.mail_send)

    def create_batch(self, call: RecordedCall, match: re.Match) -> Reply:
        if (denied := self._auth(call)) is not None:
            return denied
        batch_id = uuid.uuid4().hex
        self.batches[batch_id] = None
        return Reply(201, {"batch_id": batch_id})

    def _check(self, batch_id: str, status: Any) -> Reply | None:
        if status not in ("pause", "cancel"):
            return self.errors(400, "status must be either pause or cancel", "status")
        if batch_id not in self.batches:
            return self.errors(400, "invalid batch id", "batch_id")
        send_at = self.batches[batch_id]
        if send_at is not None and self.now() >= send_at - timedelta(minutes=10):
            return self.errors(400, "cannot pause or cancel a batch later than 10 minutes "
                                    "before its send_at time", "batch_id")
        return None

    def create_scheduled_send(self, call: RecordedCall, match: re.Match) -> Reply:
        if (denied := self._auth(call)) is not None:
            return denied
        body = call.json or {}
        batch_id, status = body.get("batch_id", ""), body.get("status")
        if (error := self._check(batch_id, status)) is not None:
            return error
        if batch_id in self.scheduled_sends:
            return self.errors(400, "a cancellation or pause already exists for this batch",
                               "batch_id")
        self.scheduled_sends[batch_id] = status
        return Reply(201, {"batch_id": batch_id, "status": status})

    def get_scheduled_send(self, call: RecordedCall, match: re.Match) -> Reply:
        if (denied := self._auth(call)) is not None:
            return denied
        batch_id = match["batch_id"]
        if batch_id not in self.scheduled_sends:
            return self.errors(404, "not found")
        return Reply(200, [{"batch_id": batch_id, "status": self.scheduled_sends[batch_id]}])

    def update_scheduled_send(self, call: RecordedCall, match: re.Match) -> Reply:
        if (denied := self._auth(call)) is not None:
            return denied
        batch_id, status = match["batch_id"], (call.json or {}).get("status")
        if batch_id not in self.scheduled_sends:
            return self.errors(404, "not found")
        if (error := self._check(batch_id, status)) is not None:
            return error
        self.scheduled_sends[batch_id] = status
        return Reply(204)

    def delete_scheduled_send(self, call: RecordedCall, match: re.Match) -> Reply:
        if (denied := self._auth(call)) is not None:
            return denied
        if self.scheduled_sends.pop(match["batch_id"], None) is None:
            return self.errors(404, "not found")
        return Reply(204)

    def mail_send_refusal(self, call: RecordedCall) -> Reply | None:
        """What /v3/mail/send answers before looking at the recipients, or None."""
        if (denied := self._auth(call)) is not None:
            return denied
        if not 1 <= len((call.json or {}).get("personalizations") or []) <= 1000:
            return self.errors(400, "The personalizations field must have between 1 and 1000 "
                                    "items.", "personalizations")
        return None

    def mail_send(self, call: RecordedCall, match: re.Match) -> Reply:
        if (refused := self.mail_send_refusal(call)) is not None:
            return refused
        body = call.json
        personalizations = body["personalizations"]
        for p in personalizations:
            for to in p.get("to", []):
                self.deliveries.append({"recipient": to["email"],
                                        "custom_args": {**body.get("custom_args", {}),
                                                        **p.get("custom_args", {})}})
        return Reply(202, None, {"X-Message-Id": uuid.uuid4().hex[:22]})

    def recipient_counts(self) -> Counter:
        with self.lock:
            return Counter(d["recipient"] for d in self.deliveries)


# --- Brevo v3 ---------------------------------------------------------------------------

BREVO_STATUSES = {"suspended", "archive", "darchive", "sent", "queued", "replicate",
                  "replicateTemplate", "cancel", "draft"}


class BrevoLoopback(LoopbackServer):
    name = "brevo"

    def __init__(self, *, api_key: str = "xkeysib-loopback", faults: FaultPlan | None = None
                 ) -> None:
        self.api_key = api_key
        self.campaigns: dict[str, str] = {}  # id → status
        super().__init__(faults=faults)

    def add_campaign(self, campaign_id: int | str, *, status: str = "in_process") -> None:
        with self.lock:
            self.campaigns[str(campaign_id)] = status

    def fault_body(self, status: int) -> Any:
        return {"code": "too_many_requests" if status == 429 else "internal_error",
                "message": f"injected fault {status}"}

    def setup_routes(self) -> None:
        self.route("PUT", r"/v3/emailCampaigns/(?P<id>[^/]+)/status", self.update_status)

    def update_status(self, call: RecordedCall, match: re.Match) -> Reply:
        if call.header("api-key") != self.api_key:
            return Reply(401, {"code": "unauthorized", "message": "Key not found"})
        status = (call.json or {}).get("status")
        if status not in BREVO_STATUSES:
            return Reply(400, {"code": "invalid_parameter", "message": "status is not valid"})
        if match["id"] not in self.campaigns:
            return Reply(404, {"code": "document_not_found",
                               "message": "Campaign ID does not exist"})
        self.campaigns[match["id"]] = status
        return Reply(204)


# --- SparkPost ------------------------------------------------------------------------------

class SparkPostLoopback(LoopbackServer):
    name = "sparkpost"

    def __init__(self, *, api_key: str = "sparkpost-loopback-key",
                 faults: FaultPlan | None = None) -> None:
        self.api_key = api_key
        self.scheduled: dict[str, int] = Counter()  # campaign_id → scheduled transmissions
        self.deleted: dict[str, int] = Counter()
        super().__init__(faults=faults)

    def add_scheduled(self, campaign_id: str, count: int = 1) -> None:
        with self.lock:
            self.scheduled[campaign_id] += count

    def fault_body(self, status: int) -> Any:
        return {"errors": [{"message": f"injected fault {status}"}]}

    def setup_routes(self) -> None:
        self.route("DELETE", r"/api/v1/transmissions", self.delete_by_campaign)

    def delete_by_campaign(self, call: RecordedCall, match: re.Match) -> Reply:
        if call.header("Authorization") != self.api_key:
            return Reply(401, {"errors": [{"message": "Unauthorized."}]})
        campaign = (call.query.get("campaign_id") or [""])[0]
        if not campaign:
            return Reply(400, {"errors": [{"message": "required query parameter missing",
                                           "description": "campaign_id is required"}]})
        self.deleted[campaign] += self.scheduled.pop(campaign, 0)
        return Reply(204)


# --- Postmark: batch send and outbound message search ------------------------------------

EASTERN = ZoneInfo("America/New_York")  # Postmark's clock for fromdate / todate


def _eastern_bound(value: str | None, *, end: bool) -> datetime | None:
    """fromdate / todate: a date or a date and time (to the second) in Eastern time; a
    todate covers its whole last second (or whole day)."""
    if not value:
        return None
    if "T" in value:
        moment = datetime.fromisoformat(value).replace(tzinfo=EASTERN)
        step = timedelta(seconds=1)
    else:
        moment = datetime.fromisoformat(value + "T00:00:00").replace(tzinfo=EASTERN)
        step = timedelta(days=1)
    return (moment + step if end else moment).astimezone(UTC)


@dataclass
class PostmarkDelivery:
    message_id: str
    recipient: str
    metadata: dict[str, str]
    subject: str
    template_model: dict[str, Any] = field(default_factory=dict)
    received_at: str = ""
    accepted: datetime = field(default_factory=lambda: datetime.now(UTC))


class PostmarkLoopback(LoopbackServer):
    """POST /email/batch (up to `max_per_call` messages) and GET /messages/outbound."""

    name = "postmark"

    def __init__(self, *, server_token: str = "postmark-loopback-token",
                 max_per_call: int = 500, faults: FaultPlan | None = None) -> None:
        self.server_token = server_token
        self.max_per_call = max_per_call
        self.inactive: set[str] = set()  # addresses Postmark refuses (ErrorCode 406)
        self.deliveries: list[PostmarkDelivery] = []
        super().__init__(faults=faults)

    def fault_body(self, status: int) -> Any:
        return {"ErrorCode": 100 if status >= 500 else 429, "Message": f"Injected {status}."}

    def setup_routes(self) -> None:
        self.route("POST", r"/email/batch", self.email_batch)
        self.route("GET", r"/messages/outbound", self.outbound_search)

    def _auth(self, call: RecordedCall) -> Reply | None:
        if call.header("X-Postmark-Server-Token") != self.server_token:
            return Reply(401, {"ErrorCode": 10,
                               "Message": "No Account or Server API tokens were supplied in "
                                          "the HTTP headers. Please add a header for either "
                                          "X-Postmark-Server-Token or "
                                          "X-Postmark-Account-Token."})
        return None

    def email_batch(self, call: RecordedCall, match: re.Match) -> Reply:
        if (denied := self._auth(call)) is not None:
            return denied
        messages = call.json
        if not isinstance(messages, list):
            return Reply(422, {"ErrorCode": 402, "Message": "Received invalid JSON input."})
        if len(messages) > self.max_per_call:
            return Reply(422, {"ErrorCode": 300, "Message": f"Batch is limited to "
                                                            f"{self.max_per_call} messages."})
        accepted = datetime.now(UTC)
        now = accepted.astimezone(EASTERN).isoformat()
        answers = []
        for message in messages:
            addresses = [addr for _name, addr in getaddresses([message.get("To", "")])]
            bad = [a for a in addresses if "@" not in a]
            inactive = [a for a in addresses if a.lower() in self.inactive]
            if not addresses or bad:
                answers.append({"ErrorCode": 300, "Message": f"Invalid 'To' address: "
                                                             f"'{(bad or [''])[0]}'."})
                continue
            if inactive:
                answers.append({
                    "ErrorCode": 406,
                    "Message": "You tried to send to recipient(s) that have been marked as "
                               "inactive. Found inactive addresses: "
                               f"{', '.join(inactive)}. Inactive recipients are ones that "
                               "have generated a hard bounce, a spam complaint, or a manual "
                               "suppression."})
                continue
            message_id = str(uuid.uuid4())
            for address in addresses:
                self.deliveries.append(PostmarkDelivery(
                    message_id=message_id, recipient=address,
                    metadata=dict(message.get("Metadata") or {}),
                    subject=message.get("Subject", ""),
                    template_model=dict(message.get("TemplateModel") or {}), received_at=now,
                    accepted=accepted))
            answers.append({"ErrorCode": 0, "Message": "OK", "MessageID": message_id,
                            "SubmittedAt": now, "To": message.get("To", "")})
        return Reply(200, answers)

    SEARCH_LIMIT = 10_000  # documented: offset + count may not exceed it

    def outbound_search(self, call: RecordedCall, match: re.Match) -> Reply:
        """Newest first, like Postmark; fromdate / todate are Eastern wall-clock times,
        inclusive, to the second; offset + count above 10,000 is refused as Postmark does."""
        if (denied := self._auth(call)) is not None:
            return denied
        q = {k: v[0] for k, v in call.query.items()}
        try:
            count, offset = int(q["count"]), int(q["offset"])
        except (KeyError, ValueError):
            return Reply(422, {"ErrorCode": 1100, "Message": "count and offset are required."})
        if not 1 <= count <= 500:
            return Reply(422, {"ErrorCode": 1100, "Message": "count must be 1..500."})
        if offset + count > self.SEARCH_LIMIT:
            return Reply(422, {"ErrorCode": 1100, "Message": (
                f"Offset + count must be less than or equal to {self.SEARCH_LIMIT:,}; use "
                f"fromdate and todate to narrow the search.")})
        try:
            since = _eastern_bound(q.get("fromdate"), end=False)
            until = _eastern_bound(q.get("todate"), end=True)
        except ValueError as exc:
            return Reply(422, {"ErrorCode": 1100, "Message": f"Invalid date: {exc}"})
        wanted = {k[len("metadata_"):]: v for k, v in q.items() if k.startswith("metadata_")}
        recipient = q.get("recipient", "").lower()
        found = [d for d in reversed(self.deliveries)
                 if all(d.metadata.get(k) == v for k, v in wanted.items())
                 and (not recipient or d.recipient.lower() == recipient)
                 and (since is None or d.accepted >= since)
                 and (until is None or d.accepted < until)]
        page = found[offset:offset + count]
        return Reply(200, {"TotalCount": len(found), "Messages": [
            {"MessageID": d.message_id, "To": [{"Email": d.recipient, "Name": None}],
             "Recipients": [d.recipient], "Subject": d.subject, "Metadata": d.metadata,
             "ReceivedAt": d.received_at, "Status": "Sent", "MessageStream": "outbound"}
            for d in page]})

    def recipient_counts(self) -> Counter:
        with self.lock:
            return Counter(d.recipient for d in self.deliveries)

    def duplicates(self) -> dict[str, int]:
        return {r: n for r, n in self.recipient_counts().items() if n > 1}


# --- Klaviyo -------------------------------------------------------------------------------

class KlaviyoLoopback(LoopbackServer):
    """PATCH /api/campaign-send-jobs/{id} (JSON:API), for a campaign that is sending."""

    name = "klaviyo"

    def __init__(self, *, api_key: str = "pk_loopback", faults: FaultPlan | None = None
                 ) -> None:
        self.api_key = api_key
        self.campaigns: dict[str, str] = {}  # id → Sending, Sent, Draft, Canceled...
        super().__init__(faults=faults)

    def add_campaign(self, campaign_id: str, *, status: str = "Sending") -> None:
        with self.lock:
            self.campaigns[campaign_id] = status

    def error(self, status: int, code: str, title: str, detail: str) -> Reply:
        return Reply(status, {"errors": [{"id": str(uuid.uuid4()), "status": status,
                                          "code": code, "title": title, "detail": detail,
                                          "source": {"pointer": "/data/"}}]})

    def fault_body(self, status: int) -> Any:
        return self.error(status, "throttled" if status == 429 else "error",
                          "Injected fault.", f"injected {status}").body

    def setup_routes(self) -> None:
        self.route("PATCH", r"/api/campaign-send-jobs/(?P<id>[^/]+)", self.update_send_job)

    def update_send_job(self, call: RecordedCall, match: re.Match) -> Reply:
        if call.header("Authorization") != f"Klaviyo-API-Key {self.api_key}":
            return self.error(401, "not_authenticated", "Authentication credentials were "
                                                         "not provided.", "Missing API key.")
        if not call.header("revision"):
            return self.error(400, "invalid", "Invalid input.", "The revision header is "
                                                                  "required.")
        data = (call.json or {}).get("data") or {}
        action = (data.get("attributes") or {}).get("action")
        if data.get("type") != "campaign-send-job" or data.get("id") != match["id"] \
                or action not in ("cancel", "revert"):
            return self.error(400, "invalid", "Invalid input.", "Expected a campaign-send-job "
                                                                  "with action cancel or revert.")
        if match["id"] not in self.campaigns:
            return self.error(404, "not_found", "Not found.", "Campaign send job not found.")
        if self.campaigns[match["id"]] != "Sending":
            return self.error(400, "invalid", "Invalid input.", "The campaign is not sending.")
        self.campaigns[match["id"]] = "Canceled" if action == "cancel" else "Draft"
        return Reply(204)
