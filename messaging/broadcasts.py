"""Sending a Broadcast to each of its recipients exactly once: the delivery ledger.

One Delivery row per person (unique per broadcast and subscriber). At the click the
audience is snapshotted into WaitingChunk rows (a batch of people each); a claim turns one
chunk into its people's rows, so a person waits either in a chunk or as a pending row.
A row moves:

    pending ──claim──▶ claimed ──ESP answer──▶ sent | failed | in_doubt
                           │                                   │
                           └─ worker vanished ─▶ in_doubt ─reconcile─▶ resolved_sent
                                                                  └──▶ resolved_missing
                                                                        (─▶ pending again,
                                                                         see the rule below)

The rules that make it exactly-once:

1. A batch is CLAIMED (state=claimed, a fresh claim token) and COMMITTED before the ESP
   call, and settled after it. Claiming is one conditional UPDATE … WHERE state='pending'
   (FOR UPDATE SKIP LOCKED on PostgreSQL), or, when no row is pending, one UPDATE of the
   next waiting chunk (SKIP LOCKED too) that sets its claim token: two workers never claim
   one person, and the unique (broadcast, subscriber) index refuses a second row. A
   chunk's people get their rows when it settles, with their answers.
2. Just before the ESP call, in a transaction that lasts until the ESP has answered, the
   worker takes a shared advisory lock on the broadcast (the gate: it marks a batch "at the
   ESP", counted by broadcast_liveness), re-reads the status (the kill switch) and which
   of its rows are still claimed by its token. Only those are sent. Pausing is one short
   transaction that sets "paused" and never waits for a batch. The sender reads the flag
   again right before every request, before the last byte of its body, and during every
   wait between attempts (PauseAwareSession, pausable_sleep), so once "paused" is committed
   and shown no ESP request starts, and none whose body was still leaving arrives whole;
   a batch already at the ESP settles or goes in doubt as usual. A batch stopped by the
   switch gives its rows back to pending: they certainly did not leave.
3. The ESP's answer settles the rows, set-based, right after (own transaction): accepted or
   queued → sent (with the ESP's message id); rejected, or a failed call the ESP certainly
   did not take → failed; anything else (5xx, timeout, connection lost after sending) →
   in_doubt. A 429 / connection refused that outlasts the adapter's retries means nothing
   was taken: the rows go back to pending and the batch is retried later.
4. A claimed row whose worker died (its claim token's advisory lock, held by the worker's
   session from claim to settle, is free) becomes in_doubt — never pending,
   never resent blindly. A slow but live worker that finds its rows swept sends none.
5. Reconciliation asks the ESP what it holds for this broadcast (`lookup_messages` by our
   metadata: broadcast_id, recipient_id). A row the ESP has → resolved_sent. A row the ESP
   positively does not have → resolved_missing, and it may be sent again (back to pending)
   only when (a) the lookup succeeded completely, (b) the row was claimed at least
   AMENDS_SEND["SETTLE"] seconds before the lookup began (so a message still on its way into
   the ESP's index is not taken for missing), and (c) the broadcast is not cancelled.
   An ESP that cannot look messages up leaves the rows in doubt: they are listed for a human
   who decides (resend or drop); the decision is recorded on the row and, by the caller, on
   the timeline.

The rate limit is paced by time slots reserved on the broadcast row (one UPDATE per batch):
a batch of n waits for its slot and moves the next slot n / rate seconds on.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import inspect
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formataddr
from html import escape as html_escape
from operator import attrgetter
from typing import Any, NamedTuple

import requests
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Min, Q, QuerySet
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.models import Subscriber

from .esp.base import (
    EspAdapter,
    EspError,
    EspLookupIncomplete,
    EspTemporaryError,
    OutgoingMessage,
    RecipientResult,
    RecipientStatus,
    header_safe,
)
from .esp.registry import broadcast_sender_for, default_adapter
from .models import (
    BrandTemplate,
    Broadcast,
    BroadcastStatus,
    Delivery,
    DeliveryState,
    EspAccount,
    WaitingChunk,
)
from .rendering import MERGE_TAG

logger = logging.getLogger(__name__)

# Sent inside the transaction that changes a broadcast's status when no person asked for
# it (the worker completed it): the incidents app writes its timeline from this.
broadcast_finished = Signal()  # kwargs: broadcast
# Sent inside the transaction that sets a completed broadcast sending again because rows
# went back to pending (reconciliation found them missing at the ESP): kwargs broadcast,
# requeued (how many), by ("reconcile" or "decision").
broadcast_reopened = Signal()

MAX_PACING_WAIT = 1.0  # seconds a task waits in-process for its slot; longer: countdown
D = Delivery._meta.db_table
B = Broadcast._meta.db_table
W = WaitingChunk._meta.db_table


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def id_array(ids: Sequence[int]) -> str:
    """Ids as a PostgreSQL array literal ('{1,2,3}'), for `%s::bigint[]`: integers need no
    quoting, and one join is far cheaper than the driver's dumping of a list."""
    return "{" + ",".join(map(str, ids)) + "}"


def _bound_cursor():
    """A psycopg cursor that binds its parameters server-side. Django's own cursors quote
    every parameter into the SQL text on the client, which for a batch's values (tens of
    kilobytes of JSON, a thousand ids) cost more than the statement."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


# --- The ESP ------------------------------------------------------------------------------

class BroadcastHalted(Exception):
    """The broadcast stopped being "sending" (paused, cancelled) while a batch waited to
    call the ESP: the call is not made. Raised from inside the sender, before a request
    leaves, so the rows of that call certainly did not reach the ESP."""


# The broadcast whose batch this thread is sending, read by the pause-aware sleep and
# session below right before each ESP attempt and during each Retry-After wait.
_sending: contextvars.ContextVar[int | None] = contextvars.ContextVar("amends_sending",
                                                                      default=None)
HALT_POLL = 0.2  # seconds between looks at the pause flag while waiting to retry


def _halt_if_stopped() -> None:
    broadcast_id = _sending.get()
    if broadcast_id is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT status FROM {B} WHERE id = %s", [broadcast_id])
        found = cursor.fetchone()
    if not found or found[0] != BroadcastStatus.SENDING:
        raise BroadcastHalted(found[0] if found else "gone")


def pausable_sleep(seconds: float) -> None:
    """The senders' wait between attempts (backoff, Retry-After): it looks at the pause flag
    every HALT_POLL seconds, so a pause never waits for a Retry-After to run out."""
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        _halt_if_stopped()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(HALT_POLL, left))


class _LastByteAfterALook:
    """A request body sent in two pieces, with a look at the pause flag between them: all
    but its last byte, then, if the broadcast is still sending, the last byte. An ESP acts on
    a request only once its whole body (Content-Length) has arrived, so a pause committed
    while a call was on its way stops that call too: the connection is dropped before the
    body is complete, and the ESP discards what it got."""

    def __init__(self, body: bytes | str) -> None:
        self.body = body

    def __len__(self) -> int:  # requests sets Content-Length from it; it was set already
        return len(self.body)

    def __iter__(self):
        # A view of bytes, not a slice: a batch's body is megabytes.
        body = memoryview(self.body) if isinstance(self.body, bytes) else self.body
        yield body[:-1]
        _halt_if_stopped()
        yield body[-1:]


class PauseAwareSession(requests.Session):
    """A requests session that reads the pause flag right before every request it sends
    (each attempt, retries included), and again before the last byte of its body
    (_LastByteAfterALook): a request whose body had not fully left when "paused" was
    committed never reaches the ESP whole."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        _halt_if_stopped()
        if isinstance(request.body, bytes | str) and len(request.body) > 1:
            request.body = _LastByteAfterALook(request.body)
        return super().send(request, **kwargs)


_adapters: dict[tuple, EspAdapter] = {}


def broadcast_adapter(broadcast: Broadcast) -> EspAdapter:
    """The adapter of the broadcast's ESP account (registry.broadcast_sender_for), one per
    process and account so its HTTP session (keep-alive) is reused across batches. A
    broadcast without an account (made outside an incident) uses settings.AMENDS_ESP."""
    account = None
    if broadcast.esp_account_id is not None:
        account = broadcast.esp_account if "esp_account" in broadcast._state.fields_cache \
            else EspAccount.objects.get(pk=broadcast.esp_account_id)
    from .esp.accounts import account_key

    options = settings.AMENDS_ESP_ACCOUNTS.get(account_key(account.label), {}) if account \
        else {}
    key = (account.pk if account else None, account.provider if account else "",
           repr(sorted(options.items())))
    adapter = _adapters.get(key)
    if adapter is None:
        pause_aware = {"sleep": pausable_sleep, "session": PauseAwareSession()}
        if account is None:
            adapter = default_adapter(sleep=pausable_sleep)
        else:
            adapter = broadcast_sender_for(account, **pause_aware)
        _adapters[key] = adapter
    return adapter


# --- Creating a broadcast and its ledger --------------------------------------------------

@transaction.atomic
def broadcast_create(*, source_ref: str, content_version: int, subject: str,
                     from_email: str, from_name: str = "", reply_to: str = "",
                     brand_template: BrandTemplate | None, default_locale: str,
                     bodies: Mapping[str, Mapping[str, str]],
                     created_by: AbstractBaseUser | None,
                     esp_account: EspAccount | None = None,
                     rate_per_second: int | None = None, batch_size: int | None = None,
                     parallelism: int | None = None) -> Broadcast:
    """A draft broadcast; `bodies` = {locale: {"subject", "html", "text"}} rendered once per
    locale with per-recipient merge tags left in. It sends through `esp_account` (its
    credentials from the account's secret variables); without one, through AMENDS_ESP."""
    errors: dict[str, str] = {}
    if default_locale not in bodies:
        errors["bodies"] = _("There is no body in the default language (%(locale)s).") % {
            "locale": default_locale}
    for locale, body in bodies.items():
        if not (body.get("html") or body.get("text")) or not body.get("subject"):
            errors["bodies"] = _("The %(locale)s version has no subject or no body.") % {
                "locale": locale}
    if not from_email:
        errors["from_email"] = _("A broadcast needs a sender address.")
    if errors:
        raise ValidationError(errors)
    broadcast = Broadcast(
        source_ref=source_ref, content_version=content_version, subject=subject,
        from_email=from_email, from_name=from_name, reply_to=reply_to,
        brand_template=brand_template, default_locale=default_locale,
        bodies={k: dict(v) for k, v in bodies.items()},
        esp_account=esp_account,
        provider=esp_account.provider if esp_account else settings.AMENDS_ESP["PROVIDER"],
        created_by=created_by)
    for name, value in (("rate_per_second", rate_per_second), ("batch_size", batch_size),
                        ("parallelism", parallelism)):
        if value is not None:
            setattr(broadcast, name, value)
    broadcast.full_clean()
    broadcast.save()
    return broadcast


def deliveries_materialise(*, broadcast: Broadcast, recipients: QuerySet[Subscriber]) -> int:
    """The audience snapshot: who, at which address, in which language, taken in one
    INSERT … SELECT (no row through Python) into WaitingChunk rows of a batch each. A claim
    takes a chunk whole (_claim_chunk); its settle writes its people's rows (_settle_chunk).

    `recipients` is a Subscriber queryset (the affected audience); who is in it is the
    caller's decision. Must run inside the caller's transaction.
    """
    query = recipients.order_by().values_list("id", "email", "name", "locale").query
    select_sql, params = query.get_compiler(connection=connection).as_sql()
    if _is_postgres():
        lists = "array_agg(q.id), array_agg(q.email), array_agg(q.name), array_agg(q.locale)"
    else:
        lists = ("json_group_array(q.id), json_group_array(q.email), "
                 "json_group_array(q.name), json_group_array(q.locale)")
    with connection.cursor() as cursor:
        if _is_postgres():
            # The chunks are grouped in memory (about 160 bytes a person): with the default
            # 4 MB a million-person snapshot spilled 80 MB to disk. For this transaction only.
            cursor.execute("SET LOCAL work_mem = '128MB'")
        # Consecutive subscribers a chunk, in subscriber order: the claims write the ledger
        # in that order, so its unique (broadcast, subscriber) index grows at its right edge.
        cursor.execute(
            f"INSERT INTO {W} (broadcast_id, first_subscriber_id, size, subscriber_ids, "
            f"emails, names, locales, claim_token) SELECT %s, MIN(q.id), COUNT(*), {lists}, '' "
            f"FROM (SELECT r.*, (ROW_NUMBER() OVER (ORDER BY r.id) - 1) / %s AS n "
            f"FROM ({select_sql}) r) q GROUP BY q.n RETURNING size",
            [broadcast.pk, broadcast.batch_size, *params])
        count = sum(size for (size,) in cursor.fetchall())
    Broadcast.objects.filter(pk=broadcast.pk).update(recipient_count=count)
    broadcast.recipient_count = count
    return count


def broadcast_enqueue(broadcast: Broadcast, chains: int | None = None) -> None:
    """Start `chains` batch tasks (default: the broadcast's parallelism) after commit."""
    from .tasks import broadcast_send_batch

    n = chains or broadcast.parallelism
    pk = broadcast.pk
    transaction.on_commit(lambda: [broadcast_send_batch.delay(pk) for _ in range(n)])


@transaction.atomic
def broadcast_start(*, broadcast: Broadcast) -> Broadcast:
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if broadcast.status != BroadcastStatus.DRAFT:
        raise ValidationError(_("This broadcast has already been started."))
    broadcast.status = BroadcastStatus.SENDING
    broadcast.started_at = broadcast.heartbeat_at = timezone.now()
    broadcast.save(update_fields=["status", "started_at", "heartbeat_at"])
    broadcast_enqueue(broadcast)
    return broadcast


# --- Pause, resume, cancel -------------------------------------------------------------------

def _short_lock_wait() -> None:
    """A person's click must never queue behind a batch: the broadcast row is only ever
    locked for a moment (claims, settling), so waiting longer than this means trouble."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '5s'")


@transaction.atomic
def broadcast_pause(*, broadcast: Broadcast) -> Broadcast:
    """The kill switch: one short transaction that sets "paused" and returns. It never waits
    for a batch. No ESP request starts after it commits: every batch reads the flag at its
    gate, and the sender reads it again right before each request and during each wait
    between attempts (PauseAwareSession, pausable_sleep). A batch already at the ESP
    finishes or times out and settles (or goes in doubt) as usual; `broadcast_liveness`
    counts those."""
    _short_lock_wait()
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if broadcast.status != BroadcastStatus.SENDING:
        raise ValidationError(_("Only a broadcast that is sending can be paused (it is "
                                "%(status)s).") % {"status": broadcast.get_status_display()})
    broadcast.status = BroadcastStatus.PAUSED
    broadcast.paused_at = timezone.now()
    broadcast.save(update_fields=["status", "paused_at"])
    return broadcast


@transaction.atomic
def broadcast_resume(*, broadcast: Broadcast) -> Broadcast:
    _short_lock_wait()
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if broadcast.status != BroadcastStatus.PAUSED:
        raise ValidationError(_("Only a paused broadcast can be resumed (it is %(status)s).")
                              % {"status": broadcast.get_status_display()})
    broadcast.status = BroadcastStatus.SENDING
    broadcast.paused_at = None
    broadcast.next_slot_at = None
    broadcast.heartbeat_at = timezone.now()
    broadcast.save(update_fields=["status", "paused_at", "next_slot_at", "heartbeat_at"])
    broadcast_enqueue(broadcast)
    return broadcast


CANCELLABLE = (BroadcastStatus.DRAFT, BroadcastStatus.SENDING, BroadcastStatus.PAUSED)


@transaction.atomic
def broadcast_cancel(*, broadcast: Broadcast) -> tuple[Broadcast, int]:
    """Stop for good: like a pause (never waits for a batch), and every row still waiting
    becomes "cancelled" so nothing can resume it. Rows at the ESP settle as usual; rows in
    doubt stay listed (reconciliation no longer queues them again). Returns the broadcast
    and how many people will not get it."""
    _short_lock_wait()
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if broadcast.status not in CANCELLABLE:
        raise ValidationError(_("Only a broadcast that has not finished can be cancelled "
                                "(it is %(status)s).") % {"status": broadcast.get_status_display()})
    now = timezone.now()
    broadcast.status = BroadcastStatus.CANCELLED
    broadcast.cancelled_at = now
    broadcast.save(update_fields=["status", "cancelled_at"])
    dropped = _cancel_pending(broadcast.pk, now)
    return broadcast, dropped


def _cancelled_reason() -> str:
    return _("Not sent: the broadcast was cancelled.")


def _cancel_pending(broadcast_id: int, now: datetime, ids: Sequence[int] | None = None
                    ) -> int:
    """Pending rows (only `ids`, if given) become cancelled; without `ids`, the people
    still in the snapshot's chunks get their rows too, cancelled."""
    reason = _cancelled_reason()
    rows = Delivery.objects.filter(broadcast_id=broadcast_id, state=DeliveryState.PENDING)
    if ids is not None:
        return rows.filter(pk__in=ids).update(state=DeliveryState.CANCELLED, settled_at=now,
                                             reason=reason)
    cancelled = rows.update(state=DeliveryState.CANCELLED, settled_at=now, reason=reason)
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH taken AS (DELETE FROM {W} WHERE broadcast_id = %s AND claim_token = '' "
                f"RETURNING subscriber_ids, emails, names, locales) "
                f"INSERT INTO {D} (broadcast_id, subscriber_id, email, name, locale, state, "
                f"claim_token, attempts, esp_message_id, settled_at, reason) "
                f"SELECT %s, p.sid, p.email, p.name, p.locale, %s, '', 0, '', %s, %s "
                f"FROM taken, {_unnest_people('taken')} ORDER BY p.sid",
                [broadcast_id, broadcast_id, DeliveryState.CANCELLED, now, reason])
            return cancelled + cursor.rowcount
    return cancelled + _chunks_written_orm(
        WaitingChunk.objects.filter(broadcast_id=broadcast_id, claim_token=""),
        lambda _chunk: {"state": DeliveryState.CANCELLED, "settled_at": now,
                        "reason": reason})


# --- One batch ------------------------------------------------------------------------------

class ClaimedRow(NamedTuple):  # a tuple: a batch makes a thousand of them
    id: int
    subscriber_id: int
    email: str
    name: str
    locale: str


@dataclass
class BatchOutcome:
    """What one run of the batch task did, and when the chain should run again."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    in_doubt: int = 0
    released: int = 0
    next_in: float | None = None  # seconds until the next run; None: this chain ends
    note: str = ""
    settling: bool = False  # its chunk's settle runs aside (side_settle): unlocked there


def new_claim_token() -> str:
    return f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def _claim(broadcast_id: int, limit: int, token: str, now: datetime, after: int = 0
           ) -> list[ClaimedRow]:
    lock = " FOR UPDATE SKIP LOCKED" if _is_postgres() else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {D} SET state = %s, claim_token = %s, claimed_at = %s, "
            f"attempts = attempts + 1 WHERE id IN (SELECT id FROM {D} WHERE broadcast_id = %s "
            f"AND state = %s AND id > %s ORDER BY id LIMIT %s{lock}) "
            f"RETURNING id, subscriber_id, email, name, locale",
            [DeliveryState.CLAIMED, token, now, broadcast_id, DeliveryState.PENDING, after,
             limit])
        rows = list(map(ClaimedRow._make, cursor.fetchall()))
    rows.sort(key=lambda r: r.id)
    return rows


def _unnest_people(alias: str) -> str:
    """A chunk's people as rows (sid, email, name, locale), for FROM on PostgreSQL."""
    return (f"unnest({alias}.subscriber_ids, {alias}.emails, {alias}.names, "
            f"{alias}.locales) AS p(sid, email, name, locale)")


def _chunk_people(chunk: WaitingChunk) -> list[tuple[int, str, str, str]]:
    return sorted(zip(chunk.subscriber_ids, chunk.emails, chunk.names, chunk.locales,
                      strict=True))


def _person_row(broadcast_id: int, person: tuple[int, str, str, str], **fields: Any
                ) -> Delivery:
    """A Delivery row for one of a chunk's people (_chunk_people) with `fields`."""
    sid, email, name, locale = person
    return Delivery(broadcast_id=broadcast_id, subscriber_id=sid, email=email, name=name,
                    locale=locale, **fields)


def _chunks_written_orm(chunks: QuerySet[WaitingChunk],
                        fields: Callable[[WaitingChunk], Mapping[str, Any]]) -> int:
    """Elsewhere than PostgreSQL: each chunk's people written as rows with fields(chunk),
    and the chunk deleted. Returns how many people."""
    written = 0
    for chunk in chunks:
        Delivery.objects.bulk_create([_person_row(chunk.broadcast_id, person, **fields(chunk))
                                      for person in _chunk_people(chunk)])
        written += chunk.size
        chunk.delete()
    return written


def _next_waiting_chunk(broadcast_id: int) -> WaitingChunk | None:
    """Elsewhere than PostgreSQL (SQLite: one writer at a time, so no row locks)."""
    return (WaitingChunk.objects.filter(broadcast_id=broadcast_id, claim_token="")
            .order_by("first_subscriber_id").first())


def _claim_chunk(broadcast_id: int, limit: int, token: str, now: datetime
                 ) -> tuple[int | None, list[ClaimedRow]]:
    """The snapshot's next waiting chunk, claimed whole: (its id, its people in the chunk's
    order, with no row id: their rows are written when the chunk is settled, _settle_chunk).
    When the next chunk holds more than `limit` people (a claim asked for less than the
    batch the snapshot was cut in), it is written out instead (_write_out_chunk)."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                # The next chunk, locked; claimed only if it fits (else written out below).
                f"UPDATE {W} SET claim_token = %s, claimed_at = %s WHERE id = (SELECT id "
                f"FROM {W} WHERE broadcast_id = %s AND claim_token = '' "
                f"ORDER BY first_subscriber_id LIMIT 1 FOR UPDATE SKIP LOCKED) AND size <= %s "
                f"RETURNING id, subscriber_ids, emails, names, locales",
                [token, now, broadcast_id, limit])
            found = cursor.fetchone()
        if found is None:
            return None, _write_out_chunk(broadcast_id, limit, token, now)
        chunk, *lists = found
        # In the chunk's own order: the settle zips the answers with its lists by position.
        people = list(zip(*lists, strict=True))
    else:
        taken = _next_waiting_chunk(broadcast_id)
        if taken is None or taken.size > limit:
            return None, _write_out_chunk(broadcast_id, limit, token, now)
        WaitingChunk.objects.filter(pk=taken.pk).update(claim_token=token, claimed_at=now)
        chunk, people = taken.pk, _chunk_people(taken)
    return chunk, [ClaimedRow(0, sid, email, name, locale)
                   for sid, email, name, locale in people]


def _write_out_chunk(broadcast_id: int, limit: int, token: str, now: datetime
                     ) -> list[ClaimedRow]:
    """Take the next waiting chunk and write its people's ledger rows: the first `limit`
    (by subscriber) claimed, the others pending. Deleting the chunk and writing the rows
    is one statement on PostgreSQL, one transaction (the caller's) everywhere."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH taken AS (DELETE FROM {W} WHERE id = (SELECT id FROM {W} "
                f"WHERE broadcast_id = %s AND claim_token = '' ORDER BY first_subscriber_id "
                f"LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING subscriber_ids, emails, names, "
                f"locales), "
                f"people AS (SELECT p.*, ROW_NUMBER() OVER (ORDER BY p.sid) <= %s AS mine "
                f"FROM taken, {_unnest_people('taken')}) "
                f"INSERT INTO {D} (broadcast_id, subscriber_id, email, name, locale, state, "
                f"claim_token, claimed_at, attempts, esp_message_id, reason) "
                f"SELECT %s, sid, email, name, locale, "
                f"CASE WHEN mine THEN %s ELSE %s END, CASE WHEN mine THEN %s ELSE '' END, "
                f"CASE WHEN mine THEN %s::timestamptz END, CASE WHEN mine THEN 1 ELSE 0 END, "
                f"'', '' FROM people ORDER BY sid "
                f"RETURNING id, subscriber_id, email, name, locale, state",
                [broadcast_id, limit, broadcast_id, DeliveryState.CLAIMED,
                 DeliveryState.PENDING, token, now])
            found = cursor.fetchall()
        return [ClaimedRow._make(r[:5]) for r in found if r[5] == DeliveryState.CLAIMED]
    chunk = _next_waiting_chunk(broadcast_id)
    if chunk is None:
        return []
    chunk.delete()
    claimed = {"state": DeliveryState.CLAIMED, "claim_token": token, "claimed_at": now,
               "attempts": 1}
    made = Delivery.objects.bulk_create([
        _person_row(broadcast_id, person, **(claimed if n < limit else {}))
        for n, person in enumerate(_chunk_people(chunk))])
    return [ClaimedRow(d.pk, d.subscriber_id, d.email, d.name, d.locale)
            for d in made if d.state == DeliveryState.CLAIMED]


def token_unlock(token: str) -> None:
    """Let go of a claim's token lock (taken by deliveries_claim) once its rows are settled
    or given back."""
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [token])


@dataclass
class Claim:
    rows: list[ClaimedRow] = field(default_factory=list)
    slot: datetime | None = None
    wait: float | None = None  # the next slot is too far: run again in `wait` seconds
    status: str = ""
    chunk: int | None = None  # a whole WaitingChunk: `rows` have no row ids yet


@transaction.atomic
def deliveries_claim(*, broadcast_id: int, token: str, limit: int | None = None) -> Claim:
    """Claim the next batch (committed when this returns) and reserve its rate-limit slot."""
    broadcast = (Broadcast.objects.select_for_update(no_key=True)
                 .only("status", "batch_size", "rate_per_second", "next_slot_at",
                       "claim_cursor")
                 .filter(pk=broadcast_id).first())
    if broadcast is None or broadcast.status != BroadcastStatus.SENDING:
        return Claim(status=broadcast.status if broadcast else "")
    now = timezone.now()
    slot = max(broadcast.next_slot_at or now, now)
    wait = (slot - now).total_seconds()
    if wait > MAX_PACING_WAIT:
        Broadcast.objects.filter(pk=broadcast_id).update(heartbeat_at=now)
        return Claim(wait=wait, status=broadcast.status)
    # Claims move forward from a cursor: the index still holds entries of rows claimed
    # before (until vacuum), and scanning them again for every batch made a million-row
    # send quadratic. Rows given back below the cursor lower it (_lower_cursor); a last
    # pass from the start catches anything else.
    limit = limit or broadcast.batch_size
    rows = _claim(broadcast_id, limit, token, now, after=broadcast.claim_cursor)
    if not rows and broadcast.claim_cursor:
        rows = _claim(broadcast_id, limit, token, now)
    chunk = None
    if not rows:  # nobody given back or queued again: the snapshot's next people
        chunk, rows = _claim_chunk(broadcast_id, limit, token, now)
    if rows and _is_postgres():
        # Lock liveness: the claim's token lock is held by this session from before the
        # claim is visible (same transaction) until the rows are settled or given back
        # (token_unlock). A worker that dies loses its connection and with it the lock, so
        # the sweep sees a dead claim at once instead of waiting out a grace period.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [token])
    updates: dict[str, Any] = {"heartbeat_at": now}
    if rows:
        updates["next_slot_at"] = slot + timedelta(
            seconds=len(rows) / broadcast.rate_per_second)
        if chunk is None:
            updates["claim_cursor"] = rows[-1].id
    Broadcast.objects.filter(pk=broadcast_id).update(**updates)
    return Claim(rows=rows, slot=slot, status=broadcast.status, chunk=chunk)


# --- Building the messages ------------------------------------------------------------------

class _Filler:
    """A rendered body split at its merge tags once, filled per recipient by a join."""

    def __init__(self, text: str, *, html: bool) -> None:
        self.parts: list[str] = []
        self.keys: list[str] = []
        pos = 0
        for match in MERGE_TAG.finditer(text):
            self.parts.append(text[pos:match.start()])
            self.keys.append(match.group(1))
            pos = match.end()
        self.parts.append(text[pos:])
        self.raw = [f"{{{{ {k} }}}}" for k in self.keys]
        self.html = html

    def fill(self, data: Mapping[str, str]) -> str:
        """`data` holds values ready for this part: HTML-escaped for the HTML part."""
        if not self.keys:
            return self.parts[0]
        out = [self.parts[0]]
        for i, key in enumerate(self.keys):
            value = data.get(key)
            out.append(self.raw[i] if value is None else value)
            out.append(self.parts[i + 1])
        return "".join(out)


_fillers: dict[tuple[int, int, str], tuple[_Filler, _Filler, _Filler]] = {}
_unsubscribe_mac: hmac.HMAC | None = None
# A fan-out asks for each person's token and link more than once (the body's link, the
# List-Unsubscribe header, its mailto subject): the last batches' are kept (_kept), so each
# is signed and written once.
_unsubscribe_tokens: dict[int, str] = {}
_unsubscribe_urls: dict[tuple[str, int], str] = {}
KEPT_PEOPLE = 4096  # a few batches' worth


def _kept(memo: dict, key: Any, value: str) -> str:
    """`value`, remembered under `key` in `memo`, which is emptied when it is full."""
    if len(memo) >= KEPT_PEOPLE:
        memo.clear()
    memo[key] = value
    return value


def unsubscribe_token(subscriber_id: int) -> str:
    """`<id>-<mac>`: an HMAC-SHA256 of the id under a key derived from SECRET_KEY. The key
    object is made once per process (a fresh salted HMAC per message cost more than the rest
    of the message); the unsubscribe page checks it with the same function."""
    global _unsubscribe_mac
    found = _unsubscribe_tokens.get(subscriber_id)
    if found is not None:
        return found
    if _unsubscribe_mac is None:
        key = hashlib.sha256(b"amends.unsubscribe" + settings.SECRET_KEY.encode()).digest()
        _unsubscribe_mac = hmac.new(key, digestmod=hashlib.sha256)
    mac = _unsubscribe_mac.copy()
    mac.update(str(subscriber_id).encode())
    return _kept(_unsubscribe_tokens, subscriber_id,
                 f"{subscriber_id}-{mac.hexdigest()[:24]}")


def unsubscribe_url(subscriber_id: int) -> str:
    """A per-person link to the unsubscribe page (messaging.views.unsubscribe)."""
    base = settings.AMENDS_BASE_URL
    found = _unsubscribe_urls.get((base, subscriber_id))
    if found is None:
        found = _kept(_unsubscribe_urls, (base, subscriber_id),
                      f"{base.rstrip('/')}/unsubscribe/{unsubscribe_token(subscriber_id)}/")
    return found


def unsubscribe_token_check(token: str) -> int | None:
    """The subscriber id a `<id>-<mac>` token names, or None when the MAC is wrong."""
    head, _sep, _mac = token.partition("-")
    if not (head.isdigit() and head.isascii()) or len(head) > 18:
        return None
    subscriber_id = int(head)
    return subscriber_id if hmac.compare_digest(unsubscribe_token(subscriber_id), token) else None


def _locale_of(broadcast: Broadcast, locale: str) -> str:
    """The body a recipient gets: their locale, its language, or the default."""
    if locale in broadcast.bodies:
        return locale
    language = locale.split("-")[0]
    return language if language in broadcast.bodies else broadcast.default_locale


def _fillers_for(broadcast: Broadcast, locale: str) -> tuple[_Filler, _Filler, _Filler]:
    locale = _locale_of(broadcast, locale)
    key = (broadcast.pk, broadcast.content_version, locale)
    found = _fillers.get(key)
    if found is None:
        body = broadcast.bodies[locale]
        found = (_Filler(body["subject"], html=False), _Filler(body.get("html", ""), html=True),
                 _Filler(body.get("text", ""), html=False))
        if len(_fillers) > 256:
            _fillers.clear()
        _fillers[key] = found
    return found


def build_messages(broadcast: Broadcast, rows: Sequence[ClaimedRow], *,
                   sender_merges: bool = False) -> list[OutgoingMessage]:
    """One message per row in the row's locale. With `sender_merges` (an adapter whose
    sender fills `{{ field }}` tags itself, `merges_client_side`) the bodies stay one per
    locale and the per-person values travel as merge_data; otherwise they are filled here."""
    sender = formataddr((broadcast.from_name, broadcast.from_email)) if broadcast.from_name \
        else broadcast.from_email
    reply_to = (broadcast.reply_to,) if broadcast.reply_to else ()
    bid = str(broadcast.pk)
    firsts: dict[str, OutgoingMessage] = {}  # by the row's locale
    out = []
    for row in rows:
        if not sender_merges:
            subject, html, text = _fillers_for(broadcast, row.locale or broadcast.default_locale)
        # Values that may reach the Subject: one line each (header_safe), whatever was imported.
        first, _sep, last = header_safe(row.name).strip().partition(" ")
        data = {"first_name": first, "last_name": last.strip(), "email": row.email,
                "unsubscribe_url": unsubscribe_url(row.subscriber_id)}
        metadata = {"broadcast_id": bid, "recipient_id": str(row.subscriber_id)}
        if sender_merges:
            # The first person of each locale gets a fully checked message; the others are
            # made from it (OutgoingMessage.for_person).
            first_of_locale = firsts.get(row.locale)
            if first_of_locale is None:
                body = broadcast.bodies[_locale_of(broadcast, row.locale)]
                firsts[row.locale] = OutgoingMessage(
                    to=row.email, to_name=row.name, subject=body["subject"],
                    from_email=sender, html=body.get("html", ""), text=body.get("text", ""),
                    reply_to=reply_to, merge_data=data, metadata=metadata)
                out.append(firsts[row.locale])
            else:
                out.append(first_of_locale.for_person(to=row.email, to_name=row.name,
                                                      merge_data=data, metadata=metadata))
            continue
        escaped = {k: html_escape(v) for k, v in data.items()}
        out.append(OutgoingMessage(
            to=row.email, to_name=row.name, subject=subject.fill(data), from_email=sender,
            html=html.fill(escaped), text=text.fill(data), reply_to=reply_to,
            metadata=metadata))
    return out


# --- Gate, send, settle ----------------------------------------------------------------------

SETTLED_STATE = {
    RecipientStatus.ACCEPTED: DeliveryState.SENT,
    RecipientStatus.QUEUED: DeliveryState.SENT,
    RecipientStatus.REJECTED: DeliveryState.FAILED,
    RecipientStatus.FAILED: DeliveryState.FAILED,
    RecipientStatus.UNKNOWN: DeliveryState.IN_DOUBT,
}


def _lower_cursor(broadcast_id: int, below: int) -> None:
    """Rows at or above `below` are pending again: claims must look there."""
    Broadcast.objects.filter(pk=broadcast_id, claim_cursor__gte=below).update(
        claim_cursor=max(below - 1, 0))


def _release(token: str, ids: Sequence[int]) -> int:
    """Give claimed rows back: only for rows the ESP certainly never saw. The caller
    lowers the claim cursor after its transaction (not under the gate's lock)."""
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {D} SET state = %s, claim_token = '', claimed_at = NULL, "
            f"attempts = attempts - 1 WHERE claim_token = %s AND (state || '') = %s "
            f"AND id IN ({', '.join(['%s'] * len(ids))})",
            [DeliveryState.PENDING, token, DeliveryState.CLAIMED, *ids])
        return cursor.rowcount


def _answers(rows: Sequence[ClaimedRow], results: Sequence[RecipientResult], *,
             key: Callable[[ClaimedRow], int]) -> tuple[list[tuple], dict[str, int]]:
    """The ESP's answer for each row (as many as there are results): (key(row), the state it
    settles in, the ESP's message id, its words), and how many of each state."""
    entries, counts = [], {}
    for row, result in zip(rows[:len(results)], results, strict=True):
        state = SETTLED_STATE.get(result.status, DeliveryState.IN_DOUBT)
        counts[state] = counts.get(state, 0) + 1
        entries.append((key(row), str(state), result.message_id or "",
                        (result.error or "")[:500]))
    return entries, counts


def _settle(token: str, rows: Sequence[ClaimedRow], results: Sequence[RecipientResult],
            now: datetime) -> dict[str, int]:
    """All rows of a batch in one UPDATE … FROM (VALUES …)."""
    entries, counts = _answers(rows, results, key=attrgetter("id"))
    if not entries:
        return counts
    ids = [pk for pk, _state, _mid, _reason in entries]
    if _is_postgres():
        # The batch's values travel as two parameters, JSON text and an id array literal,
        # both made by C code: the driver's per-element quoting of arrays (even bound
        # server-side) cost more than the statement.
        with _bound_cursor() as cursor:
            # The planner expects one row to hold a fresh token and joins the batch's 1,000
            # values to it in a nested loop: a million comparisons (300 ms a batch). A hash
            # join does it in one pass.
            cursor.execute("SET LOCAL enable_nestloop = off")
            cursor.execute(
                f"UPDATE {D} SET state = v.state, esp_message_id = v.mid, reason = v.reason, "
                f"settled_at = %s FROM (SELECT (r->>0)::bigint AS id, r->>1 AS state, "
                f"r->>2 AS mid, r->>3 AS reason FROM json_array_elements(%s::json) AS r) AS v "
                f"WHERE {D}.id = v.id "
                # id = ANY: the primary key as an index condition. Joined only through v,
                # the planner scanned the whole ledger for the token's rows.
                # (state || ''): keep it off the open-rows index (see _gate).
                f"AND {D}.id = ANY(%s::bigint[]) "
                f"AND {D}.claim_token = %s AND ({D}.state || '') = %s",
                [now, json.dumps(entries), id_array(ids), token, str(DeliveryState.CLAIMED)])
        return counts
    values = ", ".join(["(%s, %s, %s, %s)"] * len(ids))
    params = [p for quad in entries for p in quad]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH v(id, state, mid, reason) AS (VALUES {values}) "
            f"UPDATE {D} SET state = v.state, esp_message_id = v.mid, reason = v.reason, "
            f"settled_at = %s FROM v WHERE {D}.id = v.id AND {D}.claim_token = %s "
            f"AND {D}.state = %s",
            [*params, now, token, DeliveryState.CLAIMED])
    return counts


GATE_LOCK = 424_201  # advisory lock class: (GATE_LOCK, broadcast id)


def _gate(broadcast_id: int, token: str, ids: Sequence[int], chunk: int | None = None
          ) -> tuple[str, set[int]]:
    """Inside the sending transaction, held until the ESP has answered: a shared advisory
    lock on the broadcast (the "at the ESP" mark broadcast_liveness counts; nobody waits
    for it), the broadcast's status (the kill switch), the claim token's lock, and the rows
    of this claim still ours (of a whole chunk: all, {0}, or none)."""
    with connection.cursor() as cursor:
        if _is_postgres():
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s), "
                           "pg_advisory_xact_lock(hashtext(%s))", [GATE_LOCK, broadcast_id, token])
        if chunk is not None:  # one look at both: a round trip less per batch
            cursor.execute(f"SELECT status, EXISTS (SELECT 1 FROM {W} WHERE id = %s "
                           f"AND claim_token = %s) FROM {B} WHERE id = %s",
                           [chunk, token, broadcast_id])
            found = cursor.fetchone()
            return (found[0], {0} if found[1] else set()) if found else ("", set())
        cursor.execute(f"SELECT status FROM {B} WHERE id = %s", [broadcast_id])
        found = cursor.fetchone()
        status = found[0] if found else ""
        # By primary key only, filtered here: a condition on state would let the planner
        # pick the open-rows index, full of dead "claimed" entries on a big send.
        if _is_postgres():
            with _bound_cursor() as raw:  # one array, bound server-side
                raw.execute(f"SELECT id, claim_token, state FROM {D} "
                            f"WHERE id = ANY(%s::bigint[])", [id_array(ids)])
                found_rows = raw.fetchall()
        else:
            cursor.execute(f"SELECT id, claim_token, state FROM {D} WHERE id IN "
                           f"({', '.join(['%s'] * len(ids))})", list(ids))
            found_rows = cursor.fetchall()
        mine = {pk for pk, claimed_by, state in found_rows
                if claimed_by == token and state == DeliveryState.CLAIMED}
    return status, mine


def deliveries_send_claimed(*, broadcast: Broadcast, claim: Claim, token: str,
                            adapter: EspAdapter) -> BatchOutcome:
    return _send_claimed(broadcast=broadcast, claim=claim, token=token, adapter=adapter)


def _chunk_size(adapter: EspAdapter, n: int) -> int:
    """How many messages the adapter sends in one ESP call (its sender's max_per_call):
    the batch is handed over one call at a time, so a pause between calls, or inside one
    call's retries, never loses the answers of the calls already made."""
    sender = getattr(adapter, "sender", None)
    size = getattr(sender, "max_per_call", None) or getattr(adapter, "max_per_call", None)
    return max(1, min(int(size), n)) if size else max(1, n)


def _send_claimed(*, broadcast: Broadcast, claim: Claim, token: str,
                  adapter: EspAdapter) -> BatchOutcome:
    outcome = BatchOutcome(claimed=len(claim.rows))
    # Built before the gate, so the gate stays short.
    messages = build_messages(broadcast, claim.rows,
                              sender_merges=getattr(adapter, "merges_client_side", False))
    rows = list(claim.rows)
    results: list[RecipientResult] = []
    stop_note = ""
    retry_after: float | None = None
    chunk = claim.chunk
    with transaction.atomic():
        ids = [r.id for r in rows]
        status, mine = _gate(broadcast.pk, token, ids, chunk)
        if status != BroadcastStatus.SENDING:
            outcome.released = (_give_back_chunk(broadcast.pk, status, token, chunk, rows)
                                if chunk is not None
                                else _give_back(broadcast.pk, status, token, ids))
            outcome.note = f"kill switch: broadcast is {status or 'gone'}"
            return outcome
        if chunk is not None:
            if not mine:  # declared in doubt meanwhile (this worker looked dead)
                return outcome
        elif len(mine) != len(rows):  # some rows were declared in doubt meanwhile
            keep = [i for i, r in enumerate(rows) if r.id in mine]
            rows = [rows[i] for i in keep]
            messages = [messages[i] for i in keep]
        if not messages:
            return outcome
        size = _chunk_size(adapter, len(messages))
        token_var = _sending.set(broadcast.pk)
        try:
            for start in range(0, len(messages), size):
                try:
                    results.extend(adapter.send_batch(messages[start:start + size]))
                except BroadcastHalted as exc:
                    stop_note = f"kill switch: broadcast is {exc}"
                    break
                except EspTemporaryError as exc:
                    # The adapter raises this only when the ESP certainly took nothing of
                    # this call.
                    retry_after = exc.retry_after if exc.retry_after is not None else 2.0
                    stop_note = f"ESP refused for now: {exc}"
                    break
        finally:
            _sending.reset(token_var)
    if chunk is not None:
        return _finish_chunk(broadcast, chunk, token, rows, results, outcome, stop_note,
                             retry_after)
    sent_rows, unsent = rows[:len(results)], [r.id for r in rows[len(results):]]
    if unsent:
        # Certainly not at the ESP: given back (or cancelled), and the cursor lowered.
        status = Broadcast.objects.values_list("status", flat=True).get(pk=broadcast.pk)
        with transaction.atomic():
            outcome.released = _give_back(broadcast.pk, status, token, unsent)
        _note_stop(broadcast.pk, outcome, stop_note, retry_after)
    # The gate is over; settle in a transaction of its own. Dying here leaves the rows
    # claimed: in doubt, then reconciled.
    if sent_rows:
        with transaction.atomic():
            _count_settled(outcome, _settle(token, sent_rows, results, timezone.now()))
    return outcome


def _note_stop(broadcast_id: int, outcome: BatchOutcome, stop_note: str,
               retry_after: float | None) -> None:
    """Part of a batch never left (a stop between its calls): say why, and when the ESP
    asked for a wait, hold every chain's slots for it."""
    outcome.note = stop_note
    logger.info("broadcast %s: %s", broadcast_id, stop_note)
    if retry_after is not None:
        outcome.next_in = retry_after
        _hold_slots(broadcast_id, retry_after)


def _count_settled(outcome: BatchOutcome, counts: Mapping[str, int]) -> None:
    outcome.sent = counts.get(DeliveryState.SENT, 0)
    outcome.failed = counts.get(DeliveryState.FAILED, 0)
    outcome.in_doubt = counts.get(DeliveryState.IN_DOUBT, 0)


def _finish_chunk(broadcast: Broadcast, chunk: int, token: str, rows: Sequence[ClaimedRow],
                  results: Sequence[RecipientResult], outcome: BatchOutcome, stop_note: str,
                  retry_after: float | None) -> BatchOutcome:
    """After a whole chunk's ESP calls: its people's rows written by one statement (run
    aside in a worker), with the answers of those sent and, for those certainly not sent
    (a stop between calls), pending again (or cancelled with the broadcast)."""
    unsent = len(rows) - len(results)
    status = BroadcastStatus.SENDING
    if unsent:
        status = Broadcast.objects.values_list("status", flat=True).get(pk=broadcast.pk)
        _note_stop(broadcast.pk, outcome, stop_note, retry_after)
    counts = _settle_chunk(broadcast.pk, chunk, token, rows, results, timezone.now(),
                           unsent_state=_unsent_state(status), aside=True)
    outcome.settling = side_settle.holds(token)
    outcome.released = counts.get(DeliveryState.PENDING, 0) + counts.get(
        DeliveryState.CANCELLED, 0)
    _count_settled(outcome, counts)
    return outcome


def _unsent_state(status: str) -> str:
    return DeliveryState.CANCELLED if status == BroadcastStatus.CANCELLED \
        else DeliveryState.PENDING


def _give_back_chunk(broadcast_id: int, status: str, token: str, chunk: int,
                     rows: Sequence[ClaimedRow]) -> int:
    """A whole chunk the ESP certainly never saw: waiting again, or its people cancelled
    with the broadcast."""
    if status == BroadcastStatus.CANCELLED:
        counts = _settle_chunk(broadcast_id, chunk, token, rows, (), timezone.now(),
                               unsent_state=DeliveryState.CANCELLED)
        return counts.get(DeliveryState.CANCELLED, 0)
    waiting_again = WaitingChunk.objects.filter(pk=chunk, claim_token=token).update(
        claim_token="", claimed_at=None)
    return len(rows) if waiting_again else 0


def _settle_chunk(broadcast_id: int, chunk: int, token: str, rows: Sequence[ClaimedRow],
                  results: Sequence[RecipientResult], now: datetime, *, unsent_state: str,
                  aside: bool = False) -> dict[str, int]:
    """Delete the claimed chunk and write its people's rows, once each: the first
    len(results) with their answers, the rest in `unsent_state`. Nothing is written when
    the chunk is no longer this claim's (swept as in doubt meanwhile). One statement on
    PostgreSQL (atomic by itself: no transaction round trips around it), one transaction
    elsewhere. With `aside`, outside a transaction, it runs on side_settle's connection
    while the worker goes on (the counts are known here already)."""
    entries, counts = _answers(rows, results, key=attrgetter("subscriber_id"))
    if len(rows) > len(results):
        reason = _cancelled_reason() if unsent_state == DeliveryState.CANCELLED else ""
        counts[unsent_state] = len(rows) - len(results)
        entries += [(row.subscriber_id, str(unsent_state), "", reason)
                    for row in rows[len(results):]]
    claim_free = (str(DeliveryState.PENDING), str(DeliveryState.CANCELLED))
    if _is_postgres():
        # The answers travel as JSON lists in the chunk's own order (the claim kept it),
        # zipped with the chunk's lists by position: no join to plan. Each answer names its
        # person; one that does not match (cannot happen) leaves the person in doubt.
        columns = list(zip(*entries, strict=True)) if entries else [(), (), (), ()]
        answers = ", ".join(["ARRAY(SELECT json_array_elements_text(%s::json))"] * 4)
        statement = (
            f"WITH taken AS (DELETE FROM {W} WHERE id = %s AND claim_token = %s "
            f"RETURNING subscriber_ids, emails, names, locales, claimed_at) "
            f"INSERT INTO {D} (broadcast_id, subscriber_id, email, name, locale, state, "
            f"claim_token, claimed_at, attempts, esp_message_id, settled_at, reason) "
            f"SELECT %s, a.sid, a.email, a.name, a.locale, a.state, "
            f"CASE WHEN a.state IN (%s, %s) THEN '' ELSE %s END, "
            f"CASE WHEN a.state IN (%s, %s) THEN NULL ELSE a.claimed_at END, "
            f"CASE WHEN a.state IN (%s, %s) THEN 0 ELSE 1 END, a.mid, "
            f"CASE WHEN a.state = %s THEN NULL ELSE %s::timestamptz END, a.reason "
            f"FROM (SELECT p.sid, p.email, p.name, p.locale, taken.claimed_at, "
            f"CASE WHEN p.asid = p.sid::text THEN p.state ELSE %s END AS state, "
            f"CASE WHEN p.asid = p.sid::text THEN p.mid ELSE '' END AS mid, "
            f"CASE WHEN p.asid = p.sid::text THEN p.reason ELSE '' END AS reason "
            f"FROM taken CROSS JOIN unnest(taken.subscriber_ids, taken.emails, "
            f"taken.names, taken.locales, {answers}) "
            f"AS p(sid, email, name, locale, asid, state, mid, reason)) a ORDER BY a.sid")
        params = [chunk, token, broadcast_id, *claim_free, token, *claim_free, *claim_free,
                  str(DeliveryState.PENDING), now, str(DeliveryState.IN_DOUBT),
                  *(json.dumps(list(c)) for c in columns)]
        if aside and not connection.in_atomic_block:
            side_settle.submit(statement, params, token)
            return counts
        with _bound_cursor() as cursor:
            cursor.execute(statement, params)
            return counts if cursor.rowcount else {}
    with transaction.atomic():
        return _settle_chunk_orm(broadcast_id, chunk, token, entries, counts, now)


def _settle_chunk_orm(broadcast_id: int, chunk: int, token: str, entries: list[tuple],
                      counts: dict[str, int], now: datetime) -> dict[str, int]:
    claim_free = (DeliveryState.PENDING, DeliveryState.CANCELLED)
    taken = WaitingChunk.objects.filter(pk=chunk, claim_token=token).first()
    if taken is None:
        return {}
    by_person = {sid: (state, mid, reason) for sid, state, mid, reason in entries}
    made = []
    for person in _chunk_people(taken):
        state, mid, reason = by_person.get(person[0], (DeliveryState.IN_DOUBT, "", ""))
        free = state in claim_free
        made.append(_person_row(
            broadcast_id, person, state=state, claim_token="" if free else token,
            claimed_at=None if free else taken.claimed_at, attempts=0 if free else 1,
            esp_message_id=mid, reason=reason,
            settled_at=None if state == DeliveryState.PENDING else now))
    Delivery.objects.bulk_create(made)
    taken.delete()
    return counts


class SideSettle:
    """A worker process's chunk settles, each run by one thread on a connection of its own
    while the worker claims, builds, encodes and sends its next batch: the settle (a few
    milliseconds of database work a thousand people) no longer sits between two batches.

    At most one is in flight. Its claim token stays locked (by the worker's own session)
    until it has finished, so a settle under way is never taken for a dead worker's claim;
    if it fails, or the process dies, the chunk stays claimed and is swept in doubt, then
    reconciled, like any claim whose answer was not recorded. `flush` waits for it: before
    the next one, when a chain finds nothing left to claim, and at the end of each task.
    """

    def __init__(self) -> None:
        self._pool: Any = None  # made in the worker process that uses it (after the fork)
        self._connection: Any = None
        self._pending: tuple[Any, str] | None = None

    def holds(self, token: str) -> bool:
        return self._pending is not None and self._pending[1] == token

    def submit(self, statement: str, params: Sequence[Any], token: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.flush()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="side-settle")
        self._pending = (self._pool.submit(self._run, statement, params), token)

    def _run(self, statement: str, params: Sequence[Any]) -> int:
        import psycopg

        if self._connection is None or self._connection.closed:
            # This thread's own Django connection settings, not Django's connection.
            self._connection = connection.get_new_connection(
                connection.get_connection_params())
            self._connection.autocommit = True
        try:
            with psycopg.Cursor(self._connection) as cursor:
                cursor.execute(statement, params)
                return cursor.rowcount
        except Exception:
            self._connection.close()
            raise

    def close(self) -> None:
        """Flush, then let go of the thread and the connection (a process that is not
        ending, such as a test session, must not keep a session open on its database)."""
        self.flush()
        if self._pool is not None:
            self._pool.submit(self._disconnect).result()
            self._pool.shutdown()
            self._pool = None

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def flush(self) -> None:
        if self._pending is None:
            return
        future, token = self._pending
        self._pending = None
        try:
            future.result()
        except Exception:
            logger.exception("a chunk's settle failed; its people stay claimed until swept "
                             "in doubt")
        finally:
            token_unlock(token)


side_settle = SideSettle()


def _give_back(broadcast_id: int, status: str, token: str, ids: Sequence[int]) -> int:
    """Rows the ESP certainly never saw: pending again, or cancelled with the broadcast."""
    released = _release(token, ids)
    if released:
        if status == BroadcastStatus.CANCELLED:
            _cancel_pending(broadcast_id, timezone.now(), ids)
        else:
            _lower_cursor(broadcast_id, min(ids))
    return released


def _hold_slots(broadcast_id: int, seconds: float) -> None:
    """The ESP asked us to wait (Retry-After): every chain waits, not only this one, and
    the watchdog does not take the quiet for a dead worker."""
    until = timezone.now() + timedelta(seconds=seconds)
    Broadcast.objects.filter(pk=broadcast_id).filter(
        Q(next_slot_at__isnull=True) | Q(next_slot_at__lt=until)).update(next_slot_at=until)


# --- Crashed workers and reconciliation -----------------------------------------------------

def claim_grace() -> float:
    """Seconds a claim may look abandoned before it is declared in doubt. On PostgreSQL a
    live worker holds its claim's token lock from claim to settle (deliveries_claim), so a
    free lock means a dead worker and the grace is short; elsewhere it must outlast the
    slowest ESP call."""
    configured = settings.AMENDS_SEND["CLAIM_GRACE"]
    if configured is not None:
        return configured
    return 2.0 if _is_postgres() else 60.0


def deliveries_mark_abandoned(*, broadcast_id: int, grace: float | None = None) -> int:
    """Claimed rows and chunks no live worker holds, older than the grace: in doubt. Never
    pending: their worker may have handed them to the ESP before it died."""
    grace = claim_grace() if grace is None else grace
    cutoff = timezone.now() - timedelta(seconds=grace)
    # A live worker holds its claim token's advisory lock from its claim to its settle
    # (session-level, see deliveries_claim); a dead one's connection is gone, and the lock
    # with it.
    alive = " AND pg_try_advisory_xact_lock(hashtext(claim_token))" if _is_postgres() \
        else ""
    reason = "in doubt: the worker sending it stopped before it recorded the ESP's answer"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {D} SET state = %s, reason = %s WHERE broadcast_id = %s AND state = %s "
            f"AND claimed_at < %s{alive}",
            [DeliveryState.IN_DOUBT, reason, broadcast_id, DeliveryState.CLAIMED, cutoff])
        swept = cursor.rowcount
        # Whole chunks claimed by a dead worker: their people's rows are written in doubt.
        if _is_postgres():
            cursor.execute(
                f"WITH taken AS (DELETE FROM {W} WHERE broadcast_id = %s AND claim_token <> '' "
                f"AND claimed_at < %s{alive} RETURNING subscriber_ids, emails, names, "
                f"locales, claim_token, claimed_at) "
                f"INSERT INTO {D} (broadcast_id, subscriber_id, email, name, locale, state, "
                f"claim_token, claimed_at, attempts, esp_message_id, reason) "
                f"SELECT %s, p.sid, p.email, p.name, p.locale, %s, taken.claim_token, "
                f"taken.claimed_at, 1, '', %s FROM taken, {_unnest_people('taken')} "
                f"ORDER BY p.sid",
                [broadcast_id, cutoff, broadcast_id, DeliveryState.IN_DOUBT, reason])
            return swept + cursor.rowcount
    return swept + _chunks_written_orm(
        WaitingChunk.objects.filter(broadcast_id=broadcast_id, claimed_at__lt=cutoff)
        .exclude(claim_token=""),
        lambda chunk: {"state": DeliveryState.IN_DOUBT, "claim_token": chunk.claim_token,
                       "claimed_at": chunk.claimed_at, "attempts": 1, "reason": reason})


@dataclass
class Reconciliation:
    looked_up: bool  # the ESP answered every page of the search
    resolved_sent: int = 0
    resolved_missing: int = 0
    requeued: int = 0
    still_in_doubt: int = 0
    error: str = ""
    reopened: bool = False


# Either side of the window searched. Generous on purpose: the search also filters by our
# broadcast id, so a wider window costs a few more (halved) pages, while a window that
# misses (clock skew, an ESP's time zone read wrongly) would call sent messages missing.
WINDOW_MARGIN = timedelta(days=1)


def _lookup(adapter: EspAdapter, metadata: Mapping[str, str], since: datetime,
            until: datetime) -> list:
    """The adapter's message search, limited to a time window when it takes one (every
    search that pages by time: Postmark's fromdate/todate)."""
    params = inspect.signature(adapter.lookup_messages).parameters
    if "since" in params:
        return adapter.lookup_messages(metadata, since=since, until=until)
    return adapter.lookup_messages(metadata)


def broadcast_reconcile(*, broadcast: Broadcast, adapter: EspAdapter | None = None,
                        settle: float | None = None, requeue: bool = True,
                        restart: bool = True) -> Reconciliation:
    """Resolve in-doubt rows from what the ESP holds (rule 5 of the module docstring).

    The search covers the time window of the rows in doubt (from their earliest claim to
    now, with a margin), never a bare offset. Resumable: whatever the ESP confirmed before
    a failed page is settled; what stays in doubt carries the ESP's own error, shown in the
    panel, and the watchdog asks again later. Rows found missing go back to pending, and
    with `restart` the broadcast sends them: a completed broadcast reopens
    (`broadcast_reopened`, for the timeline) and a chain starts after commit.
    """
    settle = settings.AMENDS_SEND["SETTLE"] if settle is None else settle
    adapter = adapter or broadcast_adapter(broadcast)
    started = timezone.now()
    doubtful = Delivery.objects.filter(broadcast=broadcast, state=DeliveryState.IN_DOUBT)
    if not doubtful.exists():
        return Reconciliation(looked_up=False)
    earliest = (doubtful.order_by().aggregate(m=Min("claimed_at"))["m"]
                or broadcast.started_at or broadcast.created_at)
    error, complete = "", True
    try:
        held = _lookup(adapter, {"broadcast_id": str(broadcast.pk)},
                       since=earliest - WINDOW_MARGIN, until=started + WINDOW_MARGIN)
    except EspLookupIncomplete as exc:
        held, error, complete = exc.found, str(exc), False
    except EspError as exc:  # EspNotSupported included: nothing to go on
        held, error, complete = [], str(exc), False
    found: dict[int, str] = {}
    for message in held:
        rid = message.metadata.get("recipient_id")
        if rid and rid.isdigit():
            found.setdefault(int(rid), message.message_id)
    result = Reconciliation(looked_up=complete, error=error)
    now = timezone.now()
    missing_before = started - timedelta(seconds=settle)
    with transaction.atomic():
        rows = list(doubtful.select_for_update().values_list("id", "subscriber_id",
                                                             "claimed_at"))
        sent = [(pk, found[sid]) for pk, sid, _c in rows if sid in found]
        missing = [pk for pk, sid, claimed_at in rows if complete and sid not in found
                   and claimed_at is not None and claimed_at <= missing_before]
        _resolve_sent(sent, now)
        result.resolved_sent = len(sent)
        # The status is read only now, briefly locked: a pause never waits for the search.
        status = Broadcast.objects.select_for_update(no_key=True).values_list(
            "status", flat=True).get(pk=broadcast.pk)
        if missing:
            reason = _("The ESP confirmed it never received this message (%(when)s).") % {
                "when": started.strftime("%Y-%m-%d %H:%M:%S UTC")}
            if requeue and status != BroadcastStatus.CANCELLED:
                _lower_cursor(broadcast.pk, min(missing))
                result.requeued = Delivery.objects.filter(pk__in=missing).update(
                    state=DeliveryState.PENDING, claim_token="", claimed_at=None,
                    settled_at=None, reason=reason + " " + _("Queued to be sent again."))
            else:
                result.resolved_missing = Delivery.objects.filter(pk__in=missing).update(
                    state=DeliveryState.RESOLVED_MISSING, settled_at=now, reason=reason)
        result.still_in_doubt = len(rows) - len(sent) - len(missing)
        if error and result.still_in_doubt:
            done = {pk for pk, _m in sent}
            left = [pk for pk, _s, _c in rows if pk not in done]
            Delivery.objects.filter(pk__in=left, state=DeliveryState.IN_DOUBT).update(
                reason=(_("In doubt: the ESP could not be asked (%(when)s): %(error)s") % {
                    "when": started.strftime("%Y-%m-%d %H:%M:%S UTC"), "error": error})[:500])
        Broadcast.objects.filter(pk=broadcast.pk).update(reconciled_at=now,
                                                         reconcile_error=error[:500])
        if result.requeued and restart:
            result.reopened = broadcast_continue(broadcast_id=broadcast.pk,
                                                 requeued=result.requeued, by="reconcile")
    return result


def _resolve_sent(sent: Sequence[tuple[int, str]], now: datetime) -> None:
    """Rows the ESP has: resolved_sent with its message id, set-based."""
    if not sent:
        return
    reason = _("The ESP confirmed it received this message.")
    if _is_postgres():
        with _bound_cursor() as cursor:
            cursor.execute(
                f"UPDATE {D} SET state = %s, esp_message_id = v.mid, settled_at = %s, "
                f"reason = %s FROM unnest(%s::bigint[], %s::text[]) AS v(id, mid) "
                f"WHERE {D}.id = v.id AND ({D}.state || '') = %s",
                [str(DeliveryState.RESOLVED_SENT), now, reason, [p for p, _m in sent],
                 [m for _p, m in sent], str(DeliveryState.IN_DOUBT)])
        return
    for pk, message_id in sent:
        Delivery.objects.filter(pk=pk, state=DeliveryState.IN_DOUBT).update(
            state=DeliveryState.RESOLVED_SENT, esp_message_id=message_id, settled_at=now,
            reason=reason)


def broadcast_continue(*, broadcast_id: int, requeued: int, by: str) -> bool:
    """Rows went back to pending: make sure they are sent. Must run in the caller's
    transaction. A completed broadcast reopens (sending again, `broadcast_reopened` for
    the timeline); a sending one gets a chain; a paused one waits for Resume, a cancelled
    one never sends. Returns whether it reopened."""
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
    if broadcast.status == BroadcastStatus.COMPLETED:
        broadcast.status = BroadcastStatus.SENDING
        broadcast.finished_at = None
        broadcast.next_slot_at = None
        broadcast.heartbeat_at = timezone.now()
        broadcast.save(update_fields=["status", "finished_at", "next_slot_at",
                                      "heartbeat_at"])
        broadcast_reopened.send(sender=Broadcast, broadcast=broadcast, requeued=requeued,
                                by=by)
        broadcast_enqueue(broadcast)
        return True
    if broadcast.status == BroadcastStatus.SENDING:
        broadcast_enqueue(broadcast, chains=1)
    return False


@transaction.atomic
def delivery_decide(*, delivery: Delivery, resend: bool,
                    actor: AbstractBaseUser) -> Delivery:
    """A person's decision on a row the ESP could not account for."""
    delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.state not in (DeliveryState.IN_DOUBT, DeliveryState.RESOLVED_MISSING):
        raise ValidationError(_("Only a message in doubt can be decided on (this one is "
                                "%(state)s).") % {"state": delivery.get_state_display()})
    who = actor.get_full_name() or actor.get_username()
    if resend and Broadcast.objects.filter(pk=delivery.broadcast_id,
                                           status=BroadcastStatus.CANCELLED).exists():
        raise ValidationError(_("The broadcast was cancelled: nothing is sent again."))
    if resend:
        delivery.state = DeliveryState.PENDING
        delivery.claim_token = ""
        delivery.claimed_at = None
        delivery.reason = _("%(who)s decided to send it again.") % {"who": who}
    else:
        delivery.state = DeliveryState.FAILED
        delivery.settled_at = timezone.now()
        delivery.reason = _("%(who)s decided not to send it again.") % {"who": who}
    delivery.decided_by = actor
    delivery.save(update_fields=["state", "claim_token", "claimed_at", "reason",
                                 "settled_at", "decided_by"])
    if resend:
        _lower_cursor(delivery.broadcast_id, delivery.pk)
        broadcast_continue(broadcast_id=delivery.broadcast_id, requeued=1, by="decision")
    return delivery


# --- The batch task's body ------------------------------------------------------------------

def deliveries_state_counts(broadcast_id: int, *, states: Sequence[str] = (),
                            settled_since: datetime | None = None
                            ) -> dict[str, tuple[int, int]]:
    """{state: (people, of them settled since `settled_since`)} in one query, the people
    still in the snapshot's chunks counted as pending, or claimed with their chunk. Only
    `states`, if given (the open ones are read from their own small index)."""
    only = f" AND state IN ({', '.join(['%s'] * len(states))})" if states else ""
    since = settled_since or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT state, COUNT(*), COUNT(CASE WHEN settled_at >= %s THEN 1 END) FROM {D} "
            f"WHERE broadcast_id = %s{only} GROUP BY state "
            f"UNION ALL SELECT c.state, SUM(c.size), 0 FROM (SELECT CASE WHEN "
            f"claim_token = '' THEN %s ELSE %s END AS state, size FROM {W} "
            f"WHERE broadcast_id = %s) c GROUP BY c.state",
            [since, broadcast_id, *states, DeliveryState.PENDING, DeliveryState.CLAIMED,
             broadcast_id])
        counts: dict[str, tuple[int, int]] = {}
        for state, n, recent in cursor.fetchall():
            before = counts.get(state, (0, 0))
            if n:
                counts[state] = (before[0] + n, before[1] + recent)
    return counts


def _open_counts(broadcast_id: int) -> dict[str, int]:
    return {state: n for state, (n, _recent) in deliveries_state_counts(
        broadcast_id, states=(DeliveryState.PENDING, DeliveryState.CLAIMED,
                              DeliveryState.IN_DOUBT)).items()}


@transaction.atomic
def _complete(broadcast_id: int) -> bool:
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
    if broadcast.status != BroadcastStatus.SENDING:
        return False
    counts = _open_counts(broadcast_id)
    if counts.get(DeliveryState.PENDING) or counts.get(DeliveryState.CLAIMED):
        return False
    broadcast.status = BroadcastStatus.COMPLETED
    broadcast.finished_at = timezone.now()
    broadcast.save(update_fields=["status", "finished_at"])
    broadcast_finished.send(sender=Broadcast, broadcast=broadcast)
    return True


def broadcast_run_batch(*, broadcast_id: int, token: str | None = None,
                        adapter: EspAdapter | None = None) -> BatchOutcome:
    """One step of a fan-out chain: claim a batch, wait for its slot, send, settle.

    Returns when the chain should run again (`next_in`), or None when it ends (paused,
    cancelled, completed, or other chains hold the rest).
    """
    broadcast = Broadcast.objects.select_related("esp_account").filter(pk=broadcast_id).first()
    if broadcast is None:
        logger.warning("broadcast %s is gone; nothing to send", broadcast_id)
        return BatchOutcome(note="gone")
    if broadcast.status != BroadcastStatus.SENDING:
        return BatchOutcome(note=f"broadcast is {broadcast.status}")
    token = token or new_claim_token()
    claim = deliveries_claim(broadcast_id=broadcast_id, token=token)
    if claim.wait is not None:
        return BatchOutcome(next_in=claim.wait, note="waiting for the rate limit")
    if claim.status != BroadcastStatus.SENDING:
        return BatchOutcome(note=f"broadcast is {claim.status}")
    if claim.rows:
        settling = False
        try:
            pause = (claim.slot - timezone.now()).total_seconds() if claim.slot else 0
            if pause > 0:
                time.sleep(pause)
            outcome = deliveries_send_claimed(broadcast=broadcast, claim=claim, token=token,
                                              adapter=adapter or broadcast_adapter(broadcast))
            settling = outcome.settling
        finally:
            if not settling:  # else side_settle lets go of it once the settle is done
                token_unlock(token)
        if outcome.next_in is None and not outcome.released:
            outcome.next_in = 0.0
        return outcome
    return _finish_or_wait(broadcast, adapter)


def _finish_or_wait(broadcast: Broadcast, adapter: EspAdapter | None) -> BatchOutcome:
    side_settle.flush()  # this worker's last settle counts in what is left
    # Nothing pending: now the claims of dead workers matter (before, live chains had
    # pending rows to send; sweeping on every batch would cost a commit per batch).
    deliveries_mark_abandoned(broadcast_id=broadcast.pk)
    counts = _open_counts(broadcast.pk)
    if counts.get(DeliveryState.CLAIMED):
        # Another chain is sending, or a dead worker's claim waits for its grace to end.
        return BatchOutcome(next_in=max(1.0, claim_grace() / 2),
                            note="waiting for claimed rows")
    if counts.get(DeliveryState.IN_DOUBT):
        result = broadcast_reconcile(broadcast=broadcast, adapter=adapter, restart=False)
        if result.requeued:
            return BatchOutcome(next_in=0.0, note=f"{result.requeued} queued again")
        if result.looked_up and result.still_in_doubt:
            # Too recent to be called missing: ask again once they have settled.
            return BatchOutcome(next_in=max(1.0, settings.AMENDS_SEND["SETTLE"] / 2),
                                note="in-doubt rows settling")
    if _complete(broadcast.pk):
        return BatchOutcome(note="completed")
    return BatchOutcome(note="nothing left for this chain")


CHAIN_LOCK = 424_202  # advisory lock class: (CHAIN_LOCK, broadcast id), shared per running task
STALE_AFTER = 3.0  # seconds without a claim, a running task or a batch at the ESP: dead
RECONCILE_EVERY = timedelta(minutes=2)  # ask the ESP again about rows left in doubt


class chain_running:
    """Held (shared, by this session) while a batch task of the broadcast runs: a worker
    killed mid-task loses its connection and the lock, so the watchdog can tell a dead
    chain from a slow one at once."""

    def __init__(self, broadcast_id: int) -> None:
        self.broadcast_id = broadcast_id

    def __enter__(self) -> None:
        if _is_postgres():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock_shared(%s, %s)",
                               [CHAIN_LOCK, self.broadcast_id])

    def __exit__(self, *exc: object) -> None:
        if _is_postgres():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock_shared(%s, %s)",
                               [CHAIN_LOCK, self.broadcast_id])


@dataclass(frozen=True)
class Liveness:
    chains: int = 0  # batch tasks running now
    at_esp: int = 0  # batches past their gate, waiting for the ESP's answer
    recovering: bool = False  # sending, but nothing alive: a worker died; the watchdog acts


def broadcast_liveness(*, broadcast: Broadcast) -> Liveness:
    """Who is working on a broadcast right now, from PostgreSQL's lock table (one query)."""
    counts: dict[int, int] = {}
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                # Other sessions only: the one asking is never the one sending (and in a
                # test's outer transaction its own past gates would still count).
                "SELECT classid::bigint, COUNT(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND granted AND objsubid = 2 AND objid = %s AND classid IN (%s, %s) "
                "AND pid <> pg_backend_pid() GROUP BY classid",
                [broadcast.pk, GATE_LOCK, CHAIN_LOCK])
            counts = dict(cursor.fetchall())
    chains, at_esp = counts.get(CHAIN_LOCK, 0), counts.get(GATE_LOCK, 0)
    return Liveness(chains=chains, at_esp=at_esp,
                    recovering=broadcast.status == BroadcastStatus.SENDING
                    and not chains and not at_esp and _quiet(broadcast, STALE_AFTER))


def _quiet(broadcast: Broadcast, seconds: float) -> bool:
    """No claim for `seconds`, and no wait the ESP or the rate limit asked for."""
    cutoff = timezone.now() - timedelta(seconds=seconds)
    if broadcast.heartbeat_at and broadcast.heartbeat_at > cutoff:
        return False
    return not (broadcast.next_slot_at and broadcast.next_slot_at > cutoff)


def broadcast_watchdog(*, stale_after: float | None = None) -> list[int]:
    """The beat's look at every broadcast that is sending (every 2 s): dead claims become in
    doubt, and a broadcast with no running chain, no batch at the ESP and no claim for
    `stale_after` seconds (a killed worker took its chains with it) gets its chains again.
    Completed broadcasts with rows left in doubt are reconciled again every
    RECONCILE_EVERY. Returns the broadcasts whose chains were restarted."""
    stale_after = STALE_AFTER if stale_after is None else stale_after
    from .tasks import broadcast_reconcile_task, broadcast_send_batch

    kicked = []
    for broadcast in Broadcast.objects.filter(status=BroadcastStatus.SENDING):
        deliveries_mark_abandoned(broadcast_id=broadcast.pk)
        live = broadcast_liveness(broadcast=broadcast)
        if live.chains or live.at_esp or not _quiet(broadcast, stale_after):
            continue
        # Claimed by this look: the next one (2 s later) does not start them twice.
        if not Broadcast.objects.filter(pk=broadcast.pk, heartbeat_at=broadcast.heartbeat_at,
                                        status=BroadcastStatus.SENDING).update(
                heartbeat_at=timezone.now()):
            continue
        for _chain in range(broadcast.parallelism):
            broadcast_send_batch.delay(broadcast.pk)
        kicked.append(broadcast.pk)
    due = timezone.now() - RECONCILE_EVERY
    for pk in (Broadcast.objects.filter(status=BroadcastStatus.COMPLETED,
                                        deliveries__state=DeliveryState.IN_DOUBT)
               .filter(Q(reconciled_at__isnull=True) | Q(reconciled_at__lt=due))
               .values_list("pk", flat=True).distinct()):
        broadcast_reconcile_task.delay(pk)
    return kicked


@transaction.atomic
def deliveries_settle_from_events(*, sightings: Sequence[tuple[int, int, str]]) -> int:
    """Settle in-doubt rows from the ESP's tracking events.

    `sightings` are (broadcast_id, recipient_id, esp_message_id) read from our metadata on
    the events. Any event about a message (delivered, bounced, complained...) proves the
    ESP took it, so its in-doubt row becomes resolved_sent: never resent. Rows in any other
    state are left alone, so the same events arriving twice change nothing. Returns how
    many rows were settled.
    """
    wanted: dict[tuple[int, int], str] = {}
    for broadcast_id, recipient_id, message_id in sightings:
        wanted.setdefault((broadcast_id, recipient_id), message_id or "")
    if not wanted:
        return 0
    # In-doubt rows are rare (a crash, a lost answer): find them first, then touch only those.
    doubtful = Delivery.objects.select_for_update().filter(
        state=DeliveryState.IN_DOUBT,
        broadcast_id__in={broadcast_id for broadcast_id, _ in wanted},
    ).values_list("id", "broadcast_id", "subscriber_id")
    now = timezone.now()
    settled = 0
    for pk, broadcast_id, subscriber_id in doubtful:
        message_id = wanted.get((broadcast_id, subscriber_id))
        if message_id is None:
            continue
        settled += Delivery.objects.filter(pk=pk, state=DeliveryState.IN_DOUBT).update(
            state=DeliveryState.RESOLVED_SENT, esp_message_id=message_id, settled_at=now,
            reason=_("The ESP's tracking events show it received this message."))
    return settled
