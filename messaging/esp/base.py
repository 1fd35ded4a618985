"""The one ESP interface: campaign control, batch sending, and honest capabilities.

Everything here is plain values (strings, dataclasses). Nothing imports Django models, so
services and tasks can hand in whatever they load and store what comes back.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.utils.functional import Promise

from core.sentences import said


class ControlAction(enum.StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


class StopAction(enum.StrEnum):
    """What `EspAdapter.stop_campaign` does for this ESP."""

    PAUSE = "pause"
    CANCEL = "cancel"
    NONE = "none"


class RecipientStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # the ESP took it and said it is (being) sent
    QUEUED = "queued"  # the ESP took it for later delivery
    REJECTED = "rejected"  # the ESP refused this recipient for good (invalid, suppressed)
    FAILED = "failed"  # the call failed and the ESP certainly did not take it
    UNKNOWN = "unknown"  # in doubt: the ESP may or may not have taken it; reconcile, never resend


SENT_STATUSES = frozenset({RecipientStatus.ACCEPTED, RecipientStatus.QUEUED})


@dataclass(frozen=True)
class Capabilities:
    """What this ESP's API can really do, and the words the UI shows about it."""

    can_stop_live_send: bool
    can_pause_scheduled: bool
    can_resume: bool
    stop_action: StopAction
    explanation: str | Promise  # translatable (gettext_lazy); render with str()


# Every character that ends a header line somewhere (RFC 5322 CRLF, bare CR/LF, and the
# separators Python's str.splitlines() honours, which some mail libraries fold on).
_LINE_BREAKS = str.maketrans({c: " " for c in "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029\x00"})


def header_safe(value: str) -> str:
    """One line fit for a mail header: line breaks (and NUL) become spaces, runs of
    whitespace collapse. A merge value such as a name with a line break in it must never
    end the Subject header early or smuggle in another header."""
    if value.isprintable():
        return value
    return " ".join(value.translate(_LINE_BREAKS).split())


@dataclass(frozen=True)
class OutgoingMessage:
    """One message for one recipient.

    Messages that share subject, bodies, sender, reply-to and headers go out in one ESP call;
    per-recipient differences belong in `merge_data` (the ESP's merge tags fill them in).
    `metadata` travels with the message and comes back on the ESP's tracking events, so it
    must identify the message: at least `broadcast_id` and `recipient_id`.
    """

    to: str
    subject: str
    from_email: str
    html: str = ""
    text: str = ""
    to_name: str = ""
    reply_to: tuple[str, ...] = ()
    merge_data: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", header_safe(self.subject))
        _check_address(self.to)
        if not self.subject:
            raise ValueError(f"OutgoingMessage.subject is empty (to {self.to})")
        if not (self.html or self.text):
            raise ValueError(f"OutgoingMessage for {self.to}: needs an html or a text body")
        if isinstance(self.reply_to, str):
            object.__setattr__(self, "reply_to", (self.reply_to,))
        object.__setattr__(self, "metadata", _string_metadata(self.metadata))

    def for_person(self, *, to: str, to_name: str, merge_data: Mapping[str, Any],
                   metadata: Mapping[str, str]) -> OutgoingMessage:
        """This message for another recipient. Its shared parts (subject, bodies, sender,
        reply-to, headers) were checked when this one was made, so only the person's own
        parts are checked: a batch of a thousand makes one full message per locale."""
        _check_address(to)
        message = object.__new__(OutgoingMessage)
        fields = message.__dict__  # frozen: set through the instance dict, once
        fields.update(self.__dict__)
        fields.update(to=to, to_name=to_name, merge_data=merge_data,
                      metadata=_string_metadata(metadata))
        return message


def _check_address(to: str) -> None:
    """The one check of a recipient's address every message gets (made whole or for_person)."""
    if "@" not in to:
        raise ValueError(f"OutgoingMessage.to: {to!r} is not an email address")


def _string_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """ESPs take metadata as strings; made true here rather than per backend."""
    return {str(k): str(v) for k, v in metadata.items()}


@dataclass(frozen=True)
class RecipientResult:
    recipient: str
    status: RecipientStatus
    message_id: str | None = None
    error: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def sent(self) -> bool:
        return self.status in SENT_STATUSES


@dataclass(frozen=True)
class ControlResult:
    """The ESP's answer to pause / resume / cancel, ready to be written on the timeline."""

    action: ControlAction
    ok: bool
    detail: str
    campaign_ref: str = ""
    http_status: int | None = None
    esp_status: str = ""  # the campaign's state as the ESP names it, when it says
    recipients_sent_before_stop: int | None = None  # when the ESP tells


@dataclass(frozen=True)
class TrackedEvent:
    """A delivery event the ESP reports for a message (used for reconciliation)."""

    event_id: str
    event_type: str  # anymail's names: delivered, bounced, deferred, complained, unsubscribed
    message_id: str
    recipient: str
    timestamp: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class SentMessage:
    """What the ESP holds about one message it accepted."""

    message_id: str
    recipient: str
    metadata: Mapping[str, str]
    accepted_at: datetime
    events: tuple[TrackedEvent, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # where the ESP shows them


# --- Errors -----------------------------------------------------------------------------

class EspError(Exception):
    """The ESP could not do what was asked; `detail` says why in the ESP's words."""

    def __init__(self, message: str, *, provider: str = "", http_status: int | None = None,
                 detail: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.http_status = http_status
        self.detail = detail or message


class EspTemporaryError(EspError):
    """429 / 5xx / network trouble that outlasted our retries. Try again later.

    For sending, raised only when the ESP certainly did not take the messages.
    `retry_after` is the ESP's own hint in seconds, when it gave one.
    """

    def __init__(self, message: str, *, attempts: int = 0, retry_after: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.attempts = attempts
        self.retry_after = retry_after


class EspLookupIncomplete(EspError):
    """A message search that failed part of the way: `found` holds what the pages answered
    before the failure (certainly at the ESP), the message says what failed, in the ESP's
    words. Nothing may be concluded about what was not found."""

    def __init__(self, message: str, *, found: list[SentMessage], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.found = found


class EspNotSupported(EspError):
    """This ESP's API cannot do that (e.g. SendGrid cannot stop a send already running)."""


# --- The interface ------------------------------------------------------------------------

class EspAdapter(ABC):
    """One ESP account. Instances are cheap; make one per task run."""

    provider: str = ""
    display_name: str = ""
    capabilities: Capabilities

    @abstractmethod
    def pause_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                       ) -> ControlResult:
        """Pause the ESP campaign (or scheduled batch) named by `campaign_ref`.

        `send_at` is the scheduled start when known; ESPs with a deadline check it first.
        Raises EspNotSupported when this ESP cannot pause it, EspTemporaryError when the
        ESP kept failing; an answer of "no" from the ESP comes back as ok=False.
        """

    @abstractmethod
    def resume_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult: ...

    @abstractmethod
    def cancel_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult: ...

    @abstractmethod
    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        """Send messages; one result per message, in the same order.

        Raises EspTemporaryError only when nothing in the failed call was taken by the ESP,
        so the caller may retry it. A result with status UNKNOWN is in doubt: reconcile it
        with `lookup_messages`, never resend it blindly.
        """

    def stop_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                      ) -> ControlResult:
        """Pause where this ESP can, cancel where it can only cancel."""
        action = self.capabilities.stop_action
        if action == StopAction.PAUSE:
            return self.pause_campaign(campaign_ref, send_at=send_at)
        if action == StopAction.CANCEL:
            return self.cancel_campaign(campaign_ref, send_at=send_at)
        raise EspNotSupported(said(self.capabilities.explanation), provider=self.provider)

    def lookup_messages(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        """Messages the ESP accepted whose metadata contains all of `metadata`."""
        raise EspNotSupported(
            f"{self.provider or type(self).__name__}: looking messages up is not supported",
            provider=self.provider)


class BatchSender(Protocol):
    """Sends and looks up messages for an adapter (see anymail_sender.AnymailSender)."""

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]: ...

    def lookup_messages(self, metadata: Mapping[str, str]) -> list[SentMessage]: ...
