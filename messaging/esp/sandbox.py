"""The sandbox ESP: the default, so the whole story can be shown offline.

It accepts messages (nothing leaves the machine), gives each a message id, keeps what it
accepted in a store, and makes up delivery events — delivered, hard bounce, soft bounce,
complaint, unsubscribe — with the probabilities given. With a seed everything is
repeatable: a recipient's fate depends only on the seed, their address and our metadata,
not on batch order. Temporary failures (like an ESP answering 429) are retried with the same
backoff as the real adapters; `in_doubt_rate` simulates an answer lost after the sandbox
accepted the messages, so reconciliation by metadata can be shown too.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from core.sentences import said

from ..rendering import message_headers
from .base import (
    Capabilities,
    ControlAction,
    ControlResult,
    EspAdapter,
    EspTemporaryError,
    OutgoingMessage,
    RecipientResult,
    RecipientStatus,
    SentMessage,
    StopAction,
    TrackedEvent,
)
from .httpclient import RetryPolicy

CAPABILITIES = Capabilities(
    can_stop_live_send=True,
    can_pause_scheduled=True,
    can_resume=True,
    stop_action=StopAction.PAUSE,
    explanation=_(
        "The sandbox simulates an ESP that can pause, resume or cancel any campaign, even "
        "while it is sending. Nothing leaves this machine."),
)

# outcome → the events it produces, in order (anymail's event type names)
OUTCOME_EVENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "delivered": (("delivered", ""),),
    "bounced_hard": (("bounced", "hard bounce: 550 5.1.1 mailbox does not exist"),),
    "bounced_soft": (("deferred", "soft bounce: 452 4.2.2 mailbox full"),),
    "complained": (("delivered", ""), ("complained", "recipient marked it as spam")),
    "unsubscribed": (("delivered", ""), ("unsubscribed", "recipient unsubscribed")),
}
DEFAULT_OUTCOMES = {"bounced_hard": 0.02, "bounced_soft": 0.01, "complained": 0.002,
                    "unsubscribed": 0.005}


# --- Stores ----------------------------------------------------------------------------------

class SandboxStore(Protocol):
    def next_sequence(self) -> int: ...

    def reserve(self, n: int) -> int:
        """Reserve n sequence numbers at once; the first of them."""
        ...

    def add(self, message: SentMessage) -> None: ...

    def add_many(self, messages: Sequence[SentMessage]) -> None: ...

    def find(self, metadata: Mapping[str, str]) -> list[SentMessage]: ...

    def all_messages(self) -> list[SentMessage]: ...

    def get_campaign(self, ref: str) -> dict[str, Any] | None: ...

    def set_campaign(self, ref: str, state: dict[str, Any]) -> None: ...


def _dump(message: SentMessage) -> str:
    data = asdict(message)
    data["accepted_at"] = message.accepted_at.isoformat()
    for event in data["events"]:
        event["timestamp"] = event["timestamp"].isoformat()
    return json.dumps(data)


def _load(raw: str | bytes) -> SentMessage:
    data = json.loads(raw)
    events = tuple(TrackedEvent(**{**e, "timestamp": datetime.fromisoformat(e["timestamp"])})
                   for e in data.pop("events"))
    return SentMessage(**{**data, "accepted_at": datetime.fromisoformat(data["accepted_at"]),
                          "events": events})


class InMemorySandboxStore:
    """For unit tests and a single process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._messages: dict[str, SentMessage] = {}
        self._campaigns: dict[str, dict[str, Any]] = {}

    def next_sequence(self) -> int:
        return self.reserve(1)

    def reserve(self, n: int) -> int:
        with self._lock:
            self._seq += n
            return self._seq - n + 1

    def add(self, message: SentMessage) -> None:
        self.add_many([message])

    def add_many(self, messages: Sequence[SentMessage]) -> None:
        with self._lock:
            self._messages.update((m.message_id, m) for m in messages)

    def find(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        wanted = {str(k): str(v) for k, v in metadata.items()}
        with self._lock:
            return [m for m in self._messages.values()
                    if all(m.metadata.get(k) == v for k, v in wanted.items())]

    def all_messages(self) -> list[SentMessage]:
        with self._lock:
            return list(self._messages.values())

    def get_campaign(self, ref: str) -> dict[str, Any] | None:
        with self._lock:
            state = self._campaigns.get(ref)
            return dict(state) if state else None

    def set_campaign(self, ref: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._campaigns[ref] = dict(state)


class RedisSandboxStore:
    """Shared by web and workers, survives a killed worker (what reconciliation needs)."""

    def __init__(self, redis_url: str | None = None, *, client: Any = None,
                 prefix: str = "amends:sandbox", ttl: int = 7 * 86400) -> None:
        if client is None:
            import redis

            if not redis_url:
                raise ValueError("RedisSandboxStore needs redis_url or client")
            client = redis.Redis.from_url(redis_url)
        self.redis = client
        self.prefix = prefix
        # Every key expires: a simulated ESP keeps its history for a while, not forever.
        self.ttl = ttl

    @classmethod
    def from_settings(cls) -> RedisSandboxStore:
        from django.conf import settings

        conf = settings.AMENDS_ESP
        return cls(settings.REDIS_URL, prefix=conf["SANDBOX_REDIS_PREFIX"],
                   ttl=conf["SANDBOX_TTL"])

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def next_sequence(self) -> int:
        return self.reserve(1)

    def reserve(self, n: int) -> int:
        """One INCRBY for a whole batch (a round trip per message made the sandbox, the
        demo's ESP, send ~150 messages a second). Every key expires (no leftovers)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.incrby(self._key("seq"), n)
        pipe.expire(self._key("seq"), self.ttl)
        return int(pipe.execute()[0]) - n + 1

    def add(self, message: SentMessage) -> None:
        self.add_many([message])

    def add_many(self, messages: Sequence[SentMessage]) -> None:
        """A batch's messages in one pipeline (one round trip); every key expires, sets as
        long as their newest member."""
        if not messages:
            return
        pipe = self.redis.pipeline(transaction=False)
        for m in messages:
            pipe.set(self._key("msg", m.message_id), _dump(m), ex=self.ttl)
        sets: dict[str, list[str]] = {self._key("all"): [m.message_id for m in messages]}
        for m in messages:
            for k, v in m.metadata.items():
                sets.setdefault(self._key("meta", k, v), []).append(m.message_id)
        for key, ids in sets.items():
            pipe.sadd(key, *ids)
            pipe.expire(key, self.ttl)
        pipe.execute()

    def _load_ids(self, ids: Any) -> list[SentMessage]:
        ids = sorted(i.decode() if isinstance(i, bytes) else i for i in ids)
        if not ids:
            return []
        raws = self.redis.mget([self._key("msg", i) for i in ids])
        return [_load(raw) for raw in raws if raw]

    def find(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        if not metadata:
            return self.all_messages()
        keys = [self._key("meta", str(k), str(v)) for k, v in metadata.items()]
        return self._load_ids(self.redis.sinter(keys))

    def all_messages(self) -> list[SentMessage]:
        return self._load_ids(self.redis.smembers(self._key("all")))

    def get_campaign(self, ref: str) -> dict[str, Any] | None:
        raw = self.redis.get(self._key("campaign", ref))
        return json.loads(raw) if raw else None

    def set_campaign(self, ref: str, state: dict[str, Any]) -> None:
        self.redis.set(self._key("campaign", ref), json.dumps(state), ex=self.ttl)

    def clear(self) -> None:
        keys = list(self.redis.scan_iter(match=self._key("*")))
        if keys:
            self.redis.delete(*keys)


# --- The adapter -------------------------------------------------------------------------------

class SandboxAdapter(EspAdapter):
    provider = "sandbox"
    display_name = "Sandbox"
    capabilities = CAPABILITIES

    def __init__(self, *, latency: float = 0.0, failure_rate: float = 0.0,
                 in_doubt_rate: float = 0.0, outcomes: Mapping[str, float] | None = None,
                 seed: int | None = None, store: SandboxStore | None = None,
                 retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] | None = None,
                 emit_events: bool = False) -> None:
        for name, rate in (("failure_rate", failure_rate), ("in_doubt_rate", in_doubt_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"Sandbox {name} must be within 0..1, got {rate}")
        if latency < 0:
            raise ValueError(f"Sandbox latency must not be negative, got {latency}")
        self.outcomes = dict(DEFAULT_OUTCOMES if outcomes is None else outcomes)
        unknown = set(self.outcomes) - set(OUTCOME_EVENTS)
        if unknown:
            raise ValueError(f"Sandbox outcomes: unknown {sorted(unknown)}; "
                             f"use {sorted(OUTCOME_EVENTS)}")
        if sum(self.outcomes.values()) > 1.0 or min(self.outcomes.values(), default=0) < 0:
            raise ValueError("Sandbox outcome probabilities must be >= 0 and sum to <= 1")
        self.latency = latency
        self.failure_rate = failure_rate
        self.in_doubt_rate = in_doubt_rate
        self.seed = seed
        self.store = store if store is not None else InMemorySandboxStore()
        self.retry = retry or RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=2.0)
        self.sleep = sleep
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rng = random.Random(seed)
        # The product's sandbox (registry.default_adapter) hands its synthetic tracking
        # events to deliverability; a bare adapter in a unit test keeps them to itself.
        self.emit_events = emit_events

    # --- simulated transport -------------------------------------------------------------
    def _call(self, what: str) -> int:
        """Simulate one API call: latency, and temporary failures retried with backoff."""
        for attempt in range(1, self.retry.max_attempts + 1):
            if self.latency:
                self.sleep(self.latency)
            if not (self.failure_rate and self.rng.random() < self.failure_rate):
                return attempt
            if attempt < self.retry.max_attempts:
                self.sleep(self.retry.backoff(attempt, self.rng))
        raise EspTemporaryError(
            f"sandbox: {what} still failing after {attempt} attempts (simulated 429)",
            provider=self.provider, http_status=429, attempts=attempt)

    # --- sending -------------------------------------------------------------------------
    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        self._call("send")
        answer_lost = bool(self.in_doubt_rate and self.rng.random() < self.in_doubt_rate)
        results = []
        emitted: list[TrackedEvent] = []
        accepted: list[SentMessage] = []
        sequence = self.store.reserve(len(messages)) if messages else 0
        for offset, message in enumerate(messages):
            result = self._accept(message, emitted, accepted, sequence + offset)
            if answer_lost and result.sent:
                result = RecipientResult(
                    recipient=result.recipient, status=RecipientStatus.UNKNOWN,
                    metadata=result.metadata,
                    error="in doubt: the sandbox's answer was lost (simulated)")
            results.append(result)
        self.store.add_many(accepted)
        if emitted and self.emit_events:
            from ..signals import sandbox_events_emitted

            sandbox_events_emitted.send(sender=type(self), events=emitted)
        return results

    def _fate(self, message: OutgoingMessage) -> random.Random:
        if self.seed is None:
            return random.Random()
        key = json.dumps([self.seed, message.to.lower(), sorted(message.metadata.items())])
        return random.Random(hashlib.sha256(key.encode()).hexdigest())

    def _accept(self, message: OutgoingMessage, emitted: list[TrackedEvent],
                accepted: list[SentMessage], sequence: int) -> RecipientResult:
        domain = message.to.rsplit("@", 1)[-1].lower()
        if domain.endswith(".invalid") or not domain or "." not in domain:
            return RecipientResult(recipient=message.to, status=RecipientStatus.REJECTED,
                                   metadata=message.metadata,
                                   error=f"sandbox: {message.to} is not deliverable")
        fate = self._fate(message)
        message_id = f"sbx-{sequence:08d}-{uuid.UUID(int=fate.getrandbits(128)).hex[:12]}"
        now = self.clock()
        roll, outcome = fate.random(), "delivered"
        for name, probability in sorted(self.outcomes.items()):
            if roll < probability:
                outcome = name
                break
            roll -= probability
        events = tuple(
            TrackedEvent(event_id=f"{message_id}:{i}", event_type=event_type,
                         message_id=message_id, recipient=message.to,
                         timestamp=now + timedelta(seconds=1 + i + fate.random()),
                         metadata=message.metadata, description=description)
            for i, (event_type, description) in enumerate(OUTCOME_EVENTS[outcome]))
        accepted.append(SentMessage(message_id=message_id, recipient=message.to,
                                    metadata=message.metadata, accepted_at=now, events=events,
                                    headers=dict(message_headers(message))))
        emitted.extend(events)
        return RecipientResult(recipient=message.to, status=RecipientStatus.ACCEPTED,
                               message_id=message_id, metadata=message.metadata)

    def lookup_messages(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        return self.store.find(metadata)

    # --- campaigns -----------------------------------------------------------------------
    def register_campaign(self, campaign_ref: str, *, status: str = "sending", sent: int = 0,
                          total: int = 0) -> None:
        """Seed a campaign (demo data): status is sending, scheduled, paused or canceled."""
        self.store.set_campaign(campaign_ref, {"status": status, "sent": sent, "total": total})

    # One sentence per action: each language words "paused" / "cannot pause" its own way.
    _DONE = {ControlAction.PAUSE: gettext_noop("Sandbox: campaign paused."),
             ControlAction.RESUME: gettext_noop("Sandbox: campaign resumed."),
             ControlAction.CANCEL: gettext_noop("Sandbox: campaign cancelled.")}
    _REFUSED = {
        ControlAction.PAUSE: gettext_noop("The sandbox cannot pause a campaign that is "
                                          "“%(status)s”."),
        ControlAction.RESUME: gettext_noop("The sandbox cannot resume a campaign that is "
                                           "“%(status)s”."),
        ControlAction.CANCEL: gettext_noop("The sandbox cannot cancel a campaign that is "
                                           "“%(status)s”."),
    }

    def _control(self, action: ControlAction, ref: str, new_status: str,
                 allowed_from: set[str]) -> ControlResult:
        self._call(action.value)
        state = self.store.get_campaign(ref) or {"status": "sending", "sent": None}
        current = state["status"]
        if current == new_status:
            return ControlResult(action=action, ok=True, campaign_ref=ref, esp_status=current,
                                 detail=said("Nothing to do: the sandbox campaign is already "
                                             "“%(status)s”.", status=current),
                                 recipients_sent_before_stop=state.get("sent"))
        if current not in allowed_from:
            return ControlResult(action=action, ok=False, campaign_ref=ref, esp_status=current,
                                 detail=said(self._REFUSED[action], status=current),
                                 recipients_sent_before_stop=state.get("sent"))
        self.store.set_campaign(ref, {**state, "status": new_status})
        return ControlResult(action=action, ok=True, campaign_ref=ref, esp_status=new_status,
                             detail=said(self._DONE[action]),
                             http_status=204,
                             recipients_sent_before_stop=state.get("sent"))

    def pause_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                       ) -> ControlResult:
        return self._control(ControlAction.PAUSE, campaign_ref, "paused",
                             {"sending", "scheduled"})

    def resume_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        return self._control(ControlAction.RESUME, campaign_ref, "sending", {"paused"})

    def cancel_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        return self._control(ControlAction.CANCEL, campaign_ref, "canceled",
                             {"sending", "scheduled", "paused"})
