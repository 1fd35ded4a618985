"""Postmark: sending through anymail's Postmark backend (POST /email/batch, up to 500
messages a call) and reconciliation through the outbound message search
(GET /messages/outbound?count=&offset=&metadata_<key>=<value>). Postmark has no pause.
Auth: header "X-Postmark-Server-Token".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from .anymail_sender import AnymailAdapter, AnymailSender
from .base import Capabilities, EspError, SentMessage, StopAction
from .httpclient import EspHttpClient, RetryPolicy, client_options, describe

DEFAULT_URL = "https://api.postmarkapp.com"
PAGE = 500  # Postmark's largest page for message search

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

    def lookup_messages(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        found: list[SentMessage] = []
        offset = 0
        query = {f"metadata_{k}": str(v) for k, v in metadata.items()}
        while True:
            response = self.client.request("GET", "/messages/outbound",
                                           params={"count": str(PAGE), "offset": str(offset),
                                                   **query})
            if not response.ok:
                raise EspError(f"Postmark: message search failed ({response.status}): "
                               f"{describe(response.body)}", provider=self.provider,
                               http_status=response.status)
            page = response.body.get("Messages") or []
            for item in page:
                for recipient in item.get("Recipients") or []:
                    found.append(SentMessage(
                        message_id=item["MessageID"], recipient=recipient,
                        metadata=item.get("Metadata") or {},
                        accepted_at=_parse_time(item.get("ReceivedAt"))))
            offset += len(page)
            if not page or offset >= int(response.body.get("TotalCount", 0)):
                return found


def _parse_time(value: str | None) -> datetime:
    try:
        return datetime.fromisoformat(value) if value else datetime.now(UTC)
    except ValueError:
        return datetime.now(UTC)
