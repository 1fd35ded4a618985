"""Klaviyo: PATCH /api/campaign-send-jobs/{id} stops a campaign that is sending.

Body (JSON:API): {"data": {"type": "campaign-send-job", "id": id,
                           "attributes": {"action": "cancel" | "revert"}}}
"cancel" sets the campaign to CANCELED for good; "revert" sets it back to DRAFT. Either way
people who already received it keep it. Auth: "Authorization: Klaviyo-API-Key <key>" and a
"revision" header naming the API version. 429 answers carry Retry-After.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from core.sentences import said

from .base import Capabilities, ControlAction, ControlResult, EspNotSupported, StopAction
from .httpclient import EspHttpClient, HttpControlAdapter, RetryPolicy, client_options

REVISION = "2024-10-15"

CAPABILITIES = Capabilities(
    can_stop_live_send=True,
    can_pause_scheduled=False,
    can_resume=False,
    stop_action=StopAction.CANCEL,
    explanation=_(
        "Klaviyo can cancel a campaign while it is sending, or revert it to draft; people "
        "who already received it keep it. Its API cannot resume a campaign: send it again "
        "from Klaviyo."),
)


class KlaviyoAdapter(HttpControlAdapter):
    provider = "klaviyo"
    display_name = "Klaviyo"
    capabilities = CAPABILITIES

    def __init__(self, *, api_key: str, base_url: str = "https://a.klaviyo.com",
                 revision: str = REVISION, retry: RetryPolicy | None = None,
                 client: EspHttpClient | None = None, **kwargs: Any) -> None:
        if not api_key:
            raise ValueError("Klaviyo: api_key is required")
        client = client or EspHttpClient(
            provider=self.provider, base_url=base_url, retry=retry,
            headers={"Authorization": f"Klaviyo-API-Key {api_key}", "revision": revision,
                     "Accept": "application/vnd.api+json",
                     "Content-Type": "application/vnd.api+json"},
            **client_options(kwargs))
        super().__init__(client=client, **kwargs)

    def _send_job(self, action: ControlAction, ref: str, verb: str, done: str
                  ) -> ControlResult:
        response = self.client.request(
            "PATCH", f"/api/campaign-send-jobs/{ref}",
            json_body={"data": {"type": "campaign-send-job", "id": ref,
                                "attributes": {"action": verb}}})
        return self._result(action, ref, response, success=done,
                            esp_status={"cancel": "CANCELED", "revert": "DRAFT"}[verb]
                            if response.ok else "")

    def pause_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                       ) -> ControlResult:
        return self._send_job(ControlAction.PAUSE, campaign_ref, "revert",
                              said("Klaviyo stopped the send and reverted the campaign to "
                                   "draft."))

    def cancel_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        return self._send_job(ControlAction.CANCEL, campaign_ref, "cancel",
                              said("Klaviyo cancelled the campaign's send."))

    def resume_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        raise EspNotSupported(said("Klaviyo's API cannot resume a stopped campaign; send it "
                                   "again from Klaviyo."), provider=self.provider)
