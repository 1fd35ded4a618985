"""Brevo v3: PUT /v3/emailCampaigns/{campaignId}/status {"status": ...} → 204.

Documented statuses include "suspended", "cancel", "draft", "queued" and "archive".
Suspending works on a campaign in progress. The API has no documented "resume"; a
suspended campaign is sent again by scheduling it in Brevo. Auth: header "api-key".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from core.sentences import said

from .base import Capabilities, ControlAction, ControlResult, EspNotSupported, StopAction
from .httpclient import EspHttpClient, HttpControlAdapter, RetryPolicy, client_options

CAPABILITIES = Capabilities(
    can_stop_live_send=True,
    can_pause_scheduled=True,
    can_resume=False,
    stop_action=StopAction.PAUSE,
    explanation=_(
        "Brevo can suspend a campaign through its API, also while it is sending, or cancel "
        "it. Its API cannot resume a suspended campaign: schedule it again in Brevo."),
)


class BrevoAdapter(HttpControlAdapter):
    provider = "brevo"
    display_name = "Brevo"
    capabilities = CAPABILITIES

    def __init__(self, *, api_key: str, base_url: str = "https://api.brevo.com",
                 retry: RetryPolicy | None = None, client: EspHttpClient | None = None,
                 **kwargs: Any) -> None:
        if not api_key:
            raise ValueError("Brevo: api_key is required")
        client = client or EspHttpClient(
            provider=self.provider, base_url=base_url, retry=retry,
            headers={"api-key": api_key}, **client_options(kwargs))
        super().__init__(client=client, **kwargs)

    def _set_status(self, action: ControlAction, ref: str, status: str, done: str
                    ) -> ControlResult:
        if not str(ref).isdigit():
            raise ValueError(f"Brevo campaign ids are numbers, got {ref!r}")
        response = self.client.request("PUT", f"/v3/emailCampaigns/{ref}/status",
                                       json_body={"status": status})
        return self._result(action, ref, response, success=done,
                            esp_status=status if response.ok else "")

    def pause_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                       ) -> ControlResult:
        return self._set_status(ControlAction.PAUSE, campaign_ref, "suspended",
                                said("Brevo suspended the campaign."))

    def cancel_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        return self._set_status(ControlAction.CANCEL, campaign_ref, "cancel",
                                said("Brevo cancelled the campaign."))

    def resume_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        raise EspNotSupported(
            said("Brevo's API cannot resume a suspended campaign; schedule it again in Brevo."),
            provider=self.provider)
