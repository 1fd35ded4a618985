"""Postmark: sending through anymail's Postmark backend (POST /email/batch, up to 500
messages a call) and reconciliation through the outbound message search
(GET /messages/outbound?count=&offset=&fromdate=&todate=&metadata_<key>=<value>, paged by
time window: offset + count may not exceed 10,000). Postmark has no pause.
Auth: header "X-Postmark-Server-Token".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.translation import gettext_lazy as _

from .anymail_sender import AnymailAdapter, AnymailSender
from .base import Capabilities, EspError, EspLookupIncomplete, SentMessage, StopAction
from .httpclient import EspHttpClient, RetryPolicy, client_options, describe

DEFAULT_URL = "https://api.postmarkapp.com"
PAGE = 500  # Postmark's largest page for message search
SEARCH_LIMIT = 10_000  # Postmark's search: offset + count may not exceed this
HISTORY = timedelta(days=45)  # how long Postmark keeps outbound messages searchable
EASTERN = ZoneInfo("America/New_York")

CAPABILITIES = Capabilities(
    can_stop_live_send=False,
    can_pause_scheduled=False,
    can_resume=False,
    stop_action=StopAction.NONE,
    explanation=_(
        "Postmark has no pause: it delivers what it accepts at once. Mail we send through it "
        "stops between batches, with our own pause."),
)


class PostmarkAdapter(AnymailAdapter):
    provider = "postmark"
    display_name = "Postmark"
    capabilities = CAPABILITIES

    def __init__(self, *, server_token: str, base_url: str = DEFAULT_URL,
                 retry: RetryPolicy | None = None, max_per_call: int = 500,
                 json_batch: bool = False, **kwargs: Any) -> None:
        if not server_token:
            raise ValueError("Postmark: server_token is required")
        options = client_options(kwargs)
        if kwargs:
            raise TypeError(f"PostmarkAdapter: unexpected options {sorted(kwargs)}")
        if json_batch:
            # Broadcasts: per-recipient bodies straight to /email/batch (postmark_json.py).
            # max_per_call is not capped here so a loopback can take more; Postmark: 500.
            from .postmark_json import PostmarkJsonSender

            self.merges_client_side = True  # the sender fills {{ field }} tags itself
            super().__init__(sender=PostmarkJsonSender(  # type: ignore[arg-type]
                server_token=server_token, base_url=base_url, max_per_call=max_per_call,
                retry=retry, **{k: v for k, v in options.items()
                                if k in ("sleep", "rng", "timeout", "session")}))
            self.client = EspHttpClient(provider=self.provider, base_url=base_url,
                                        retry=retry,
                                        headers={"X-Postmark-Server-Token": server_token},
                                        **{k: v for k, v in options.items() if k != "session"})
            return
        sender = AnymailSender(
            backend="anymail.backends.postmark.EmailBackend", esp_name="Postmark",
            backend_options={"server_token": server_token, "api_url": base_url.rstrip("/") + "/"},
            max_per_call=min(max_per_call, 500), retry=retry,
            **{k: v for k, v in options.items() if k in ("sleep", "rng")})
        super().__init__(sender=sender)
        self.client = EspHttpClient(provider=self.provider, base_url=base_url, retry=retry,
                                    headers={"X-Postmark-Server-Token": server_token},
                                    **options)

    def lookup_messages(self, metadata: Mapping[str, str], *, since: datetime | None = None,
                        until: datetime | None = None) -> list[SentMessage]:
        """Messages with all of `metadata`, accepted between `since` and `until` (default:
        Postmark's 45 days of history up to now).

        Postmark's search refuses offset + count above 10,000, so it never pages past that
        with a bare offset: a time window holding more is split in two until each half
        holds at most 10,000, then paged. Windows are whole seconds (fromdate / todate, in
        Postmark's Eastern time), inclusive, so the halves do not overlap. A failed page
        raises EspLookupIncomplete with what the earlier pages found.
        """
        now = datetime.now(UTC)
        until = until or now
        since = since or until - HISTORY
        query = {f"metadata_{k}": str(v) for k, v in metadata.items()}
        found: dict[tuple[str, str], SentMessage] = {}
        windows = [(_whole_second(since), _whole_second(until) + timedelta(seconds=1))]
        try:
            while windows:
                start, end = windows.pop()  # [start, end): whole seconds
                page = self._search(query, start, end, offset=0)
                total = int(page.get("TotalCount", 0))
                if total > SEARCH_LIMIT:
                    if end - start <= timedelta(seconds=1):
                        raise EspError(
                            f"Postmark: {total} messages in one second "
                            f"({start.isoformat()}), more than its search can list "
                            f"({SEARCH_LIMIT})", provider=self.provider)
                    middle = start + timedelta(seconds=(end - start).total_seconds() // 2)
                    windows += [(start, middle), (middle, end)]
                    continue
                offset = 0
                while True:
                    items = page.get("Messages") or []
                    self._collect(items, found)
                    offset += len(items)
                    if not items or offset >= total:
                        break
                    page = self._search(query, start, end, offset=offset,
                                        count=min(PAGE, SEARCH_LIMIT - offset))
        except EspError as exc:
            raise EspLookupIncomplete(str(exc), found=list(found.values()),
                                      provider=self.provider,
                                      http_status=exc.http_status) from exc
        return list(found.values())

    def _search(self, query: Mapping[str, str], start: datetime, end: datetime, *,
                offset: int, count: int = PAGE) -> dict[str, Any]:
        if count < 1:  # the window grew past the limit while we paged it
            raise EspError(f"Postmark: more than {SEARCH_LIMIT} messages between "
                           f"{start.isoformat()} and {end.isoformat()}", provider=self.provider)
        last = end - timedelta(seconds=1)
        response = self.client.request("GET", "/messages/outbound", params={
            "count": str(count), "offset": str(offset), "fromdate": _eastern(start),
            "todate": _eastern(last), **query})
        if not response.ok or not isinstance(response.body, dict):
            raise EspError(f"Postmark: message search failed ({response.status}): "
                           f"{describe(response.body)}", provider=self.provider,
                           http_status=response.status)
        return response.body

    @staticmethod
    def _collect(items: list[dict[str, Any]], found: dict[tuple[str, str], SentMessage]
                 ) -> None:
        for item in items:
            for recipient in item.get("Recipients") or []:
                found.setdefault((item["MessageID"], recipient), SentMessage(
                    message_id=item["MessageID"], recipient=recipient,
                    metadata=item.get("Metadata") or {},
                    accepted_at=_parse_time(item.get("ReceivedAt"))))


def _whole_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _eastern(moment: datetime) -> str:
    """Postmark's fromdate / todate are wall-clock times in US Eastern time."""
    return moment.astimezone(EASTERN).strftime("%Y-%m-%dT%H:%M:%S")


def _parse_time(value: str | None) -> datetime:
    try:
        return datetime.fromisoformat(value) if value else datetime.now(UTC)
    except ValueError:
        return datetime.now(UTC)
