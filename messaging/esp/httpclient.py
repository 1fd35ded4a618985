"""HTTP for ESP control APIs: one Session, timeouts, retries with backoff on 429/5xx."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from django.conf import settings

from core.sentences import said

from .base import (
    BatchSender,
    ControlAction,
    ControlResult,
    EspAdapter,
    EspNotSupported,
    EspTemporaryError,
    OutgoingMessage,
    RecipientResult,
    SentMessage,
)

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; Retry-After wins when the ESP sends it."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A Retry-After longer than this is not waited for in-process: we give up and hand the
    # hint to the caller (a Celery task can retry with that countdown).
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = RETRY_STATUSES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number `attempt` (1-based), without a Retry-After."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return rng.uniform(ceiling / 2, ceiling)  # half fixed, half jitter

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        conf = getattr(settings, "AMENDS_ESP", {})
        return cls(max_attempts=conf.get("MAX_ATTEMPTS", cls.max_attempts),
                   base_delay=conf.get("BACKOFF_BASE", cls.base_delay),
                   max_delay=conf.get("BACKOFF_MAX", cls.max_delay))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def never_sent(exc: BaseException | None) -> bool:
    """True when a request provably did not reach the ESP (no TCP connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", None)
        return type(reason).__name__ == "NewConnectionError"
    return False


class Refused(Exception):
    """One sending attempt the ESP certainly did not take (429, no connection): may be
    tried again. Raised by the attempt function given to `retry_refused`."""

    def __init__(self, problem: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status
        self.retry_after = retry_after


def retry_refused(attempt: Callable[[], T], *, policy: RetryPolicy,
                     sleep: Callable[[float], None], rng: random.Random, esp_name: str,
                     provider: str = "") -> T:
    """The one retry loop of every sending path: call `attempt` until it returns; each
    `Refused` waits (Retry-After, else backoff with jitter) and tries again. When the
    attempts run out, or the ESP asks for a wait longer than we hold a batch for, raise
    EspTemporaryError: nothing was sent, the caller may give the rows back."""
    last: Refused | None = None
    for number in range(1, policy.max_attempts + 1):
        try:
            return attempt()
        except Refused as refused:
            last = refused
            too_long = (refused.retry_after is not None
                        and refused.retry_after > policy.max_retry_after)
            if number == policy.max_attempts or too_long:
                raise EspTemporaryError(
                    f"{esp_name}: sending still refused after {number} attempt"
                    f"{'s' if number != 1 else ''} ({refused.problem}); nothing was sent",
                    provider=provider or esp_name.lower(), http_status=refused.status,
                    attempts=number, retry_after=refused.retry_after,
                    detail=refused.problem) from refused
            delay = refused.retry_after if refused.retry_after is not None \
                else policy.backoff(number, rng)
            logger.info("%s send refused (%s); retry %d in %.2fs", esp_name, refused.problem,
                        number, delay)
            sleep(delay)
    raise AssertionError(f"unreachable: {last}")  # pragma: no cover


def esp_session(session: requests.Session | None = None, *,
                headers: Mapping[str, str] | None = None, auth: Any = None
                ) -> requests.Session:
    """One keep-alive session for an ESP account, with our headers and its auth."""
    session = session or requests.Session()
    session.headers.update({"Accept": "application/json",
                            "User-Agent": "Amends (incident response)", **(headers or {})})
    if auth is not None:
        session.auth = auth
    return session


@dataclass(frozen=True)
class EspResponse:
    status: int
    body: Any  # parsed JSON, or text, or None when empty
    headers: Mapping[str, str] = field(default_factory=dict)
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class EspHttpClient:
    """Calls one ESP API. `sleep` and `rng` are injectable so tests never wait."""

    def __init__(self, *, provider: str, base_url: str,
                 auth: requests.auth.AuthBase | tuple[str, str] | None = None,
                 headers: Mapping[str, str] | None = None,
                 timeout: float | tuple[float, float] = (3.05, 15.0),
                 retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None,
                 session: requests.Session | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{provider}: base URL must start with http:// or https://, "
                             f"got {base_url!r}")
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy.from_settings()
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.session = esp_session(session, headers=headers, auth=auth)

    def request(self, method: str, path: str, *, json_body: Any = None,
                params: Mapping[str, str] | None = None,
                retry_statuses: Iterable[int] | None = None) -> EspResponse:
        """Send, retrying 429/5xx and network errors; any other answer is returned as is."""
        url = f"{self.base_url}{path}"
        statuses = frozenset(retry_statuses) if retry_statuses is not None \
            else self.retry.retry_statuses
        last_problem = ""
        last_status: int | None = None
        retry_after: float | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                response = self.session.request(method, url, json=json_body, params=params,
                                                timeout=self.timeout)
            except requests.RequestException as exc:
                last_problem, last_status, retry_after = f"network error: {exc}", None, None
            else:
                if response.status_code not in statuses:
                    return EspResponse(status=response.status_code, body=_body(response),
                                       headers=dict(response.headers), attempts=attempt)
                last_status = response.status_code
                last_problem = f"HTTP {response.status_code}: {describe(_body(response))}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt == self.retry.max_attempts:
                break
            if retry_after is not None and retry_after > self.retry.max_retry_after:
                break
            delay = retry_after if retry_after is not None \
                else self.retry.backoff(attempt, self.rng)
            logger.info("%s %s %s failed (%s); retry %d in %.2fs", self.provider, method, path,
                        last_problem, attempt, delay)
            self.sleep(delay)
        raise EspTemporaryError(
            f"{self.provider}: {method} {path} still failing after {attempt} "
            f"attempt{'s' if attempt != 1 else ''} ({last_problem})",
            provider=self.provider, http_status=last_status, detail=last_problem,
            attempts=attempt, retry_after=retry_after)


def _body(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


def describe(body: Any) -> str:
    """The human part of an ESP error body, whatever its shape."""
    if body is None:
        return "no body"
    if isinstance(body, str):
        return body.strip()[:500] or "no body"
    if isinstance(body, dict):
        # Mailchimp: problem+json; SendGrid / SparkPost: {"errors": [...]}; Brevo: code+message
        if "detail" in body or "title" in body:
            return " — ".join(str(body[k]) for k in ("title", "detail") if body.get(k))
        if isinstance(body.get("errors"), list):
            parts = []
            for err in body["errors"]:
                if isinstance(err, dict):
                    # SendGrid/SparkPost: message (+ description); JSON:API: title + detail
                    first = err.get("message") or err.get("title") or ""
                    second = err.get("description") or err.get("detail") or ""
                    text = (f"{first.rstrip('.:')}: {second}" if first and second
                            else first or second)
                    if err.get("field"):
                        text = f"{err['field']}: {text}"
                    parts.append(text)
                else:
                    parts.append(str(err))
            return "; ".join(p for p in parts if p) or json.dumps(body)[:500]
        if "message" in body:
            code = body.get("code")
            return f"{code}: {body['message']}" if code else str(body["message"])
    return json.dumps(body)[:500]


CLIENT_OPTIONS = ("sleep", "rng", "timeout", "session")


def client_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the EspHttpClient options (sleep, rng, timeout, session) out of adapter kwargs."""
    return {name: kwargs.pop(name) for name in CLIENT_OPTIONS if name in kwargs}


class HttpControlAdapter(EspAdapter):
    """Base for ESPs whose campaigns we control over their HTTP API.

    Sending is a separate concern: pass `sender` (an AnymailSender) to send through the same
    account; without one, send_batch says so.
    """

    def __init__(self, *, client: EspHttpClient, sender: BatchSender | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self.client = client
        self.sender = sender
        self.now = now or (lambda: datetime.now(UTC))

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        if self.sender is None:
            raise EspNotSupported(f"{self.provider}: no sending is configured for this account",
                                  provider=self.provider)
        return self.sender.send_batch(messages)

    def lookup_messages(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        if self.sender is None:
            return super().lookup_messages(metadata)
        return self.sender.lookup_messages(metadata)

    def _result(self, action: ControlAction, ref: str, response: EspResponse, *,
                success: str, esp_status: str = "",
                sent_before: int | None = None) -> ControlResult:
        if response.ok:
            return ControlResult(action=action, ok=True, detail=success, campaign_ref=ref,
                                 http_status=response.status, esp_status=esp_status,
                                 recipients_sent_before_stop=sent_before)
        return ControlResult(
            action=action, ok=False, campaign_ref=ref, http_status=response.status,
            esp_status=esp_status, recipients_sent_before_stop=sent_before,
            detail=said("%(esp)s refused (%(status)s): %(answer)s", esp=self.display_name,
                        status=str(response.status), answer=describe(response.body)))
