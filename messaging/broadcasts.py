"""Sending a Broadcast to each of its recipients exactly once: the delivery ledger.

One Delivery row per person (unique per broadcast and subscriber). A row moves:

    pending ──claim──▶ claimed ──ESP answer──▶ sent | failed | in_doubt
                           │                                   │
                           └─ worker vanished ─▶ in_doubt ─reconcile─▶ resolved_sent
                                                                  └──▶ resolved_missing
                                                                        (─▶ pending again,
                                                                         see the rule below)

The rules that make it exactly-once:

1. A batch is CLAIMED (state=claimed, a fresh claim token) and COMMITTED before the ESP
   call, and settled after it. Claiming is one conditional UPDATE … WHERE state='pending'
   (FOR UPDATE SKIP LOCKED on PostgreSQL), so two workers never claim one row.
2. Just before the ESP call, in a transaction that lasts until the ESP has answered, the
   worker takes a shared advisory lock on the broadcast (the gate), re-reads its status
   (the kill switch), takes an advisory lock on its claim token and re-reads which of its
   rows are still claimed by that token. Only those are sent. Pausing sets "paused" and
   takes the gate lock exclusively in the same transaction: it waits for batches already
   past their gate, and batches arriving later queue behind it and then read "paused".
   Once "paused" is committed and shown, no further message leaves. A batch whose gate
   finds the broadcast paused gives its rows back to pending: they certainly did not leave.
3. The ESP's answer settles the rows, set-based, right after (own transaction): accepted or
   queued → sent (with the ESP's message id); rejected, or a failed call the ESP certainly
   did not take → failed; anything else (5xx, timeout, connection lost after sending) →
   in_doubt. A 429 / connection refused that outlasts the adapter's retries means nothing
   was taken: the rows go back to pending and the batch is retried later.
4. A claimed row whose worker died (no live gate holds its claim token's advisory lock,
   claimed longer than AMENDS_SEND["CLAIM_GRACE"] ago) becomes in_doubt — never pending,
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

import hashlib
import hmac
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formataddr
from html import escape as html_escape
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.models import Subscriber

from .esp.base import (
    EspAdapter,
    EspError,
    EspNotSupported,
    EspTemporaryError,
    OutgoingMessage,
    RecipientResult,
    RecipientStatus,
    header_safe,
)
from .esp.registry import Provider, default_adapter, get_adapter
from .models import BrandTemplate, Broadcast, BroadcastStatus, Delivery, DeliveryState
from .rendering import MERGE_TAG

logger = logging.getLogger(__name__)

# Sent inside the transaction that changes a broadcast's status when no person asked for
# it (the worker completed it): the incidents app writes its timeline from this.
broadcast_finished = Signal()  # kwargs: broadcast

MAX_PACING_WAIT = 1.0  # seconds a task waits in-process for its slot; longer: countdown
D = Delivery._meta.db_table
B = Broadcast._meta.db_table


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


# --- The ESP ------------------------------------------------------------------------------

_adapters: dict[tuple, EspAdapter] = {}


def broadcast_adapter(broadcast: Broadcast) -> EspAdapter:
    """The ESP adapter broadcasts go through (settings.AMENDS_SEND), one per process so its
    HTTP session (keep-alive) is reused across batches."""
    conf = settings.AMENDS_SEND
    options = dict(conf["OPTIONS"])
    key = (broadcast.provider, tuple(sorted((k, str(v)) for k, v in options.items())))
    adapter = _adapters.get(key)
    if adapter is None:
        if broadcast.provider == Provider.SANDBOX:
            adapter = default_adapter(**options)
        else:
            if broadcast.provider == Provider.POSTMARK:
                options.setdefault("json_batch", True)
            adapter = get_adapter(broadcast.provider, **options)
        _adapters[key] = adapter
    return adapter


# --- Creating a broadcast and its ledger --------------------------------------------------

@transaction.atomic
def broadcast_create(*, source_ref: str, content_version: int, subject: str,
                     from_email: str, from_name: str = "", reply_to: str = "",
                     brand_template: BrandTemplate | None, default_locale: str,
                     bodies: Mapping[str, Mapping[str, str]],
                     created_by: AbstractBaseUser | None, provider: str | None = None,
                     rate_per_second: int | None = None, batch_size: int | None = None,
                     parallelism: int | None = None) -> Broadcast:
    """A draft broadcast; `bodies` = {locale: {"subject", "html", "text"}} rendered once per
    locale with per-recipient merge tags left in."""
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
        provider=provider or settings.AMENDS_SEND["PROVIDER"], created_by=created_by)
    for name, value in (("rate_per_second", rate_per_second), ("batch_size", batch_size),
                        ("parallelism", parallelism)):
        if value is not None:
            setattr(broadcast, name, value)
    broadcast.full_clean()
    broadcast.save()
    return broadcast


def deliveries_materialise(*, broadcast: Broadcast, recipients: QuerySet[Subscriber]) -> int:
    """One INSERT … SELECT of the recipients into the ledger (no row through Python).

    `recipients` is a Subscriber queryset (the affected audience); who is in it is the
    caller's decision. Must run inside the caller's transaction.
    """
    query = recipients.order_by().values_list("id", "email", "name", "locale").query
    select_sql, params = query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {D} (broadcast_id, subscriber_id, email, name, locale, state, "
            f"claim_token, attempts, esp_message_id, reason) "
            f"SELECT %s, q.*, %s, '', 0, '', '' FROM ({select_sql}) q",
            [broadcast.pk, DeliveryState.PENDING, *params])
        count = cursor.rowcount
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

@transaction.atomic
def broadcast_pause(*, broadcast: Broadcast) -> Broadcast:
    """The kill switch. Sets paused, then takes the gate lock exclusively: that waits for
    the batches already past their gate (they hold it shared until the ESP has answered)
    and makes later batches queue until this commits, when they read "paused". So when
    this returns and "paused" is shown, nothing more leaves."""
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if broadcast.status != BroadcastStatus.SENDING:
        raise ValidationError(_("Only a broadcast that is sending can be paused (it is "
                                "%(status)s).") % {"status": broadcast.get_status_display()})
    broadcast.status = BroadcastStatus.PAUSED
    broadcast.paused_at = timezone.now()
    broadcast.save(update_fields=["status", "paused_at"])
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [GATE_LOCK, broadcast.pk])
    return broadcast


@transaction.atomic
def broadcast_resume(*, broadcast: Broadcast) -> Broadcast:
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


# --- One batch ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClaimedRow:
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
        rows = [ClaimedRow(*r) for r in cursor.fetchall()]
    rows.sort(key=lambda r: r.id)
    return rows


@dataclass
class Claim:
    rows: list[ClaimedRow] = field(default_factory=list)
    slot: datetime | None = None
    wait: float | None = None  # the next slot is too far: run again in `wait` seconds
    status: str = ""


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
    updates: dict[str, Any] = {"heartbeat_at": now}
    if rows:
        updates["next_slot_at"] = slot + timedelta(
            seconds=len(rows) / broadcast.rate_per_second)
        updates["claim_cursor"] = rows[-1].id
    Broadcast.objects.filter(pk=broadcast_id).update(**updates)
    return Claim(rows=rows, slot=slot, status=broadcast.status)


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


def unsubscribe_token(subscriber_id: int) -> str:
    """`<id>-<mac>`: an HMAC-SHA256 of the id under a key derived from SECRET_KEY. The key
    object is made once per process (a fresh salted HMAC per message cost more than the rest
    of the message); the unsubscribe page checks it with the same function."""
    global _unsubscribe_mac
    if _unsubscribe_mac is None:
        key = hashlib.sha256(b"amends.unsubscribe" + settings.SECRET_KEY.encode()).digest()
        _unsubscribe_mac = hmac.new(key, digestmod=hashlib.sha256)
    mac = _unsubscribe_mac.copy()
    mac.update(str(subscriber_id).encode())
    return f"{subscriber_id}-{mac.hexdigest()[:24]}"


def unsubscribe_url(subscriber_id: int) -> str:
    """A per-person link to the unsubscribe page (messaging.views.unsubscribe)."""
    return f"{settings.AMENDS_BASE_URL.rstrip('/')}/unsubscribe/{unsubscribe_token(subscriber_id)}/"


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
    unsubscribe_base = f"{settings.AMENDS_BASE_URL.rstrip('/')}/unsubscribe/"
    out = []
    for row in rows:
        if not sender_merges:
            subject, html, text = _fillers_for(broadcast, row.locale or broadcast.default_locale)
        # Values that may reach the Subject: one line each (header_safe), whatever was imported.
        first, _sep, last = header_safe(row.name).strip().partition(" ")
        data = {"first_name": first, "last_name": last.strip(), "email": row.email,
                "unsubscribe_url": f"{unsubscribe_base}{unsubscribe_token(row.subscriber_id)}/"}
        metadata = {"broadcast_id": bid, "recipient_id": str(row.subscriber_id)}
        if sender_merges:
            body = broadcast.bodies[_locale_of(broadcast, row.locale)]
            out.append(OutgoingMessage(
                to=row.email, to_name=row.name, subject=body["subject"], from_email=sender,
                html=body.get("html", ""), text=body.get("text", ""), reply_to=reply_to,
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


def _settle(token: str, rows: Sequence[ClaimedRow], results: Sequence[RecipientResult],
            now: datetime) -> dict[str, int]:
    """All rows of a batch in one UPDATE … FROM (VALUES …)."""
    ids, new_states, mids, reasons, counts = [], [], [], [], {}
    for row, result in zip(rows, results, strict=True):
        state = SETTLED_STATE.get(result.status, DeliveryState.IN_DOUBT)
        counts[state] = counts.get(state, 0) + 1
        ids.append(row.id)
        new_states.append(str(state))
        mids.append(result.message_id or "")
        reasons.append((result.error or "")[:500])
    if not ids:
        return counts
    if _is_postgres():
        # Four array parameters, not 4,000 scalars (the driver's query building was a fifth
        # of a batch's time), bound server-side: psycopg's own cursor, not Django's
        # client-side quoting of every element.
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {D} SET state = v.state, esp_message_id = v.mid, reason = v.reason, "
                f"settled_at = %s FROM unnest(%s::bigint[], %s::text[], %s::text[], "
                f"%s::text[]) AS v(id, state, mid, reason) WHERE {D}.id = v.id "
                # (state || ''): keep the planner on the primary key (see _gate).
                f"AND {D}.claim_token = %s AND ({D}.state || '') = %s",
                [now, ids, new_states, mids, reasons, token, str(DeliveryState.CLAIMED)])
        return counts
    values = ", ".join(["(%s, %s, %s, %s)"] * len(ids))
    params = [p for quad in zip(ids, new_states, mids, reasons, strict=True) for p in quad]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH v(id, state, mid, reason) AS (VALUES {values}) "
            f"UPDATE {D} SET state = v.state, esp_message_id = v.mid, reason = v.reason, "
            f"settled_at = %s FROM v WHERE {D}.id = v.id AND {D}.claim_token = %s "
            f"AND {D}.state = %s",
            [*params, now, token, DeliveryState.CLAIMED])
    return counts


GATE_LOCK = 424_201  # advisory lock class: (GATE_LOCK, broadcast id)


def _gate(broadcast_id: int, token: str, ids: Sequence[int]) -> tuple[str, set[int]]:
    """Inside the sending transaction, held until the ESP has answered: a shared advisory
    lock on the broadcast (pause takes it exclusively, so it waits for batches past their
    gate, and batches that come later queue behind the pause and then read "paused"), the
    broadcast's status (the kill switch), an advisory lock on the claim token (the sweeper
    leaves a live worker's claim alone), and the rows of this claim still ours."""
    with connection.cursor() as cursor:
        if _is_postgres():
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)",
                           [GATE_LOCK, broadcast_id])
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [token])
        cursor.execute(f"SELECT status FROM {B} WHERE id = %s", [broadcast_id])
        found = cursor.fetchone()
        status = found[0] if found else ""
        # By primary key only, filtered here: a condition on state would let the planner
        # pick the open-rows index, full of dead "claimed" entries on a big send.
        if _is_postgres():
            with connection.connection.cursor() as raw:  # one array, bound server-side
                raw.execute(f"SELECT id, claim_token, state FROM {D} WHERE id = ANY(%s)",
                            [list(ids)])
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
    outcome = _send_claimed(broadcast=broadcast, claim=claim, token=token, adapter=adapter)
    if outcome.released:
        _lower_cursor(broadcast.pk, min(r.id for r in claim.rows))
    return outcome


def _send_claimed(*, broadcast: Broadcast, claim: Claim, token: str,
                  adapter: EspAdapter) -> BatchOutcome:
    outcome = BatchOutcome(claimed=len(claim.rows))
    # Built before the gate, so the gate (which pause waits for) stays short.
    messages = build_messages(broadcast, claim.rows,
                              sender_merges=getattr(adapter, "merges_client_side", False))
    with transaction.atomic():
        ids = [r.id for r in claim.rows]
        status, mine = _gate(broadcast.pk, token, ids)
        if status != BroadcastStatus.SENDING:
            outcome.released = _release(token, ids)
            outcome.note = f"kill switch: broadcast is {status or 'gone'}"
            return outcome
        if len(mine) != len(claim.rows):  # some rows were declared in doubt meanwhile
            keep = [i for i, r in enumerate(claim.rows) if r.id in mine]
            claim = Claim(rows=[claim.rows[i] for i in keep], slot=claim.slot)
            messages = [messages[i] for i in keep]
        if not messages:
            return outcome
        try:
            results = adapter.send_batch(messages)
        except EspTemporaryError as exc:
            # The adapter raises this only when the ESP certainly took nothing.
            outcome.released = _release(token, ids)
            outcome.next_in = exc.retry_after if exc.retry_after is not None else 2.0
            outcome.note = f"ESP refused for now: {exc}"
            logger.info("broadcast %s: %s", broadcast.pk, outcome.note)
            return outcome
    # The gate is over (a pause no longer waits for us); settle in a transaction of its
    # own. Dying here leaves the rows claimed: in doubt, then reconciled.
    with transaction.atomic():
        if _is_postgres():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [token])
        counts = _settle(token, claim.rows, results, timezone.now())
    outcome.sent = counts.get(DeliveryState.SENT, 0)
    outcome.failed = counts.get(DeliveryState.FAILED, 0)
    outcome.in_doubt = counts.get(DeliveryState.IN_DOUBT, 0)
    return outcome


# --- Crashed workers and reconciliation -----------------------------------------------------

def deliveries_mark_abandoned(*, broadcast_id: int, grace: float | None = None) -> int:
    """Claimed rows no live transaction holds, older than the grace: in doubt. Never
    pending: their worker may have handed them to the ESP before it died."""
    grace = settings.AMENDS_SEND["CLAIM_GRACE"] if grace is None else grace
    cutoff = timezone.now() - timedelta(seconds=grace)
    # A live worker holds its claim token's advisory lock from its gate to its settle; a
    # worker that has not reached its gate yet finds its rows gone and sends none of them.
    alive = " AND pg_try_advisory_xact_lock(hashtext(claim_token))" if _is_postgres() \
        else ""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {D} SET state = %s, reason = %s WHERE broadcast_id = %s AND state = %s "
            f"AND claimed_at < %s{alive}",
            [DeliveryState.IN_DOUBT, "in doubt: the worker sending it stopped before it "
             "recorded the ESP's answer", broadcast_id, DeliveryState.CLAIMED, cutoff])
        return cursor.rowcount


@dataclass
class Reconciliation:
    looked_up: bool
    resolved_sent: int = 0
    resolved_missing: int = 0
    requeued: int = 0
    still_in_doubt: int = 0
    error: str = ""


def broadcast_reconcile(*, broadcast: Broadcast, adapter: EspAdapter | None = None,
                        settle: float | None = None, requeue: bool = True) -> Reconciliation:
    """Resolve in-doubt rows from what the ESP holds (rule 5 of the module docstring)."""
    settle = settings.AMENDS_SEND["SETTLE"] if settle is None else settle
    adapter = adapter or broadcast_adapter(broadcast)
    started = timezone.now()
    if not Delivery.objects.filter(broadcast=broadcast, state=DeliveryState.IN_DOUBT).exists():
        return Reconciliation(looked_up=False)
    try:
        held = adapter.lookup_messages({"broadcast_id": str(broadcast.pk)})
    except EspNotSupported as exc:
        return Reconciliation(looked_up=False, error=str(exc), still_in_doubt=Delivery.objects
                              .filter(broadcast=broadcast, state=DeliveryState.IN_DOUBT).count())
    except EspError as exc:
        return Reconciliation(looked_up=False, error=str(exc), still_in_doubt=Delivery.objects
                              .filter(broadcast=broadcast, state=DeliveryState.IN_DOUBT).count())
    found: dict[int, str] = {}
    for message in held:
        rid = message.metadata.get("recipient_id")
        if rid and rid.isdigit():
            found.setdefault(int(rid), message.message_id)
    result = Reconciliation(looked_up=True)
    now = timezone.now()
    missing_before = started - timedelta(seconds=settle)
    with transaction.atomic():
        status = Broadcast.objects.select_for_update(no_key=True).values_list(
            "status", flat=True).get(pk=broadcast.pk)
        rows = list(Delivery.objects.select_for_update().filter(
            broadcast=broadcast, state=DeliveryState.IN_DOUBT)
            .values_list("id", "subscriber_id", "claimed_at"))
        sent, missing = [], []
        for pk, subscriber_id, claimed_at in rows:
            if subscriber_id in found:
                sent.append((pk, found[subscriber_id]))
            elif claimed_at is not None and claimed_at <= missing_before:
                missing.append(pk)
        for pk, message_id in sent:
            Delivery.objects.filter(pk=pk).update(
                state=DeliveryState.RESOLVED_SENT, esp_message_id=message_id, settled_at=now,
                reason=_("The ESP confirmed it received this message."))
        result.resolved_sent = len(sent)
        may_requeue = requeue and status != BroadcastStatus.CANCELLED
        if missing:
            reason = _("The ESP confirmed it never received this message (%(when)s).") % {
                "when": started.strftime("%Y-%m-%d %H:%M:%S UTC")}
            if may_requeue:
                _lower_cursor(broadcast.pk, min(missing))
                result.requeued = Delivery.objects.filter(pk__in=missing).update(
                    state=DeliveryState.PENDING, claim_token="", claimed_at=None,
                    settled_at=None, reason=reason + " " + _("Queued to be sent again."))
            else:
                result.resolved_missing = Delivery.objects.filter(pk__in=missing).update(
                    state=DeliveryState.RESOLVED_MISSING, settled_at=now, reason=reason)
        result.still_in_doubt = len(rows) - len(sent) - len(missing)
    return result


@transaction.atomic
def delivery_decide(*, delivery: Delivery, resend: bool,
                    actor: AbstractBaseUser) -> Delivery:
    """A person's decision on a row the ESP could not account for."""
    delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.state not in (DeliveryState.IN_DOUBT, DeliveryState.RESOLVED_MISSING):
        raise ValidationError(_("Only a message in doubt can be decided on (this one is "
                                "%(state)s).") % {"state": delivery.get_state_display()})
    who = actor.get_full_name() or actor.get_username()
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
        broadcast = Broadcast.objects.select_for_update().get(pk=delivery.broadcast_id)
        if broadcast.status == BroadcastStatus.COMPLETED:
            broadcast.status = BroadcastStatus.SENDING
            broadcast.finished_at = None
            broadcast.save(update_fields=["status", "finished_at"])
            broadcast_enqueue(broadcast, chains=1)
    return delivery


# --- The batch task's body ------------------------------------------------------------------

def _open_counts(broadcast_id: int) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT state, COUNT(*) FROM {D} WHERE broadcast_id = %s AND state "
                       f"IN (%s, %s, %s) GROUP BY state",
                       [broadcast_id, DeliveryState.PENDING, DeliveryState.CLAIMED,
                        DeliveryState.IN_DOUBT])
        return dict(cursor.fetchall())


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
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
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
        pause = (claim.slot - timezone.now()).total_seconds() if claim.slot else 0
        if pause > 0:
            time.sleep(pause)
        outcome = deliveries_send_claimed(broadcast=broadcast, claim=claim, token=token,
                                          adapter=adapter or broadcast_adapter(broadcast))
        if outcome.next_in is None and not outcome.released:
            outcome.next_in = 0.0
        return outcome
    return _finish_or_wait(broadcast, adapter)


def _finish_or_wait(broadcast: Broadcast, adapter: EspAdapter | None) -> BatchOutcome:
    # Nothing pending: now the claims of dead workers matter (before, live chains had
    # pending rows to send; sweeping on every batch would cost a commit per batch).
    deliveries_mark_abandoned(broadcast_id=broadcast.pk)
    counts = _open_counts(broadcast.pk)
    if counts.get(DeliveryState.CLAIMED):
        # Another chain is sending, or a dead worker's claim waits for its grace to end.
        return BatchOutcome(next_in=max(1.0, settings.AMENDS_SEND["CLAIM_GRACE"] / 2),
                            note="waiting for claimed rows")
    if counts.get(DeliveryState.IN_DOUBT):
        result = broadcast_reconcile(broadcast=broadcast, adapter=adapter)
        if result.requeued:
            return BatchOutcome(next_in=0.0, note=f"{result.requeued} queued again")
        if result.looked_up and result.still_in_doubt:
            # Too recent to be called missing: ask again once they have settled.
            return BatchOutcome(next_in=max(1.0, settings.AMENDS_SEND["SETTLE"] / 2),
                                note="in-doubt rows settling")
    if _complete(broadcast.pk):
        return BatchOutcome(note="completed")
    return BatchOutcome(note="nothing left for this chain")


def broadcast_watchdog(*, stale_after: float | None = None) -> list[int]:
    """Restart the chain of every sending broadcast that showed no sign of life (a killed
    worker takes its chain with it). Returns the broadcasts kicked."""
    if stale_after is None:
        stale_after = max(10.0, 2 * settings.AMENDS_SEND["CLAIM_GRACE"])
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    stale = list(Broadcast.objects.filter(status=BroadcastStatus.SENDING,
                                          heartbeat_at__lte=cutoff)
                 .values_list("pk", flat=True))
    from .tasks import broadcast_send_batch

    for pk in stale:
        broadcast_send_batch.delay(pk)
    return stale


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
