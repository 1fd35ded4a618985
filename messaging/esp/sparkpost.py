"""SparkPost: DELETE /api/v1/transmissions?campaign_id=X → 204 (deletion is asynchronous).

It deletes the campaign's *scheduled* transmissions (those not yet being generated). There
is no pause and no resume, and a transmission already generating cannot be stopped.
Auth: "Authorization: <API key>" (no scheme).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from core.sentences import said

from .base import Capabilities, ControlAction, ControlResult, EspNotSupported, StopAction
from .httpclient import EspHttpClient, HttpControlAdapter, RetryPolicy, client_options

CAPABILITIES = Capabilities(
    can_stop_live_send=False,
    can_pause_scheduled=False,
    can_resume=False,
    stop_action=StopAction.CANCEL,
    explanation=_(
        "SparkPost can only delete a campaign's scheduled mail that has not started going "
        "out; it cannot pause or resume, and mail already being sent cannot be stopped."),
)


class SparkPostAdapter(HttpControlAdapter):
    provider = "sparkpost"
    display_name = "SparkPost"
    capabilities = CAPABILITIES

    def __init__(self, *, api_key: str, base_url: str = "https://api.sparkpost.com",
                 retry: RetryPolicy | None = None, client: EspHttpClient | None = None,
                 **kwargs: Any) -> None:
        if not api_key:
            raise ValueError("SparkPost: api_key is required")
        client = client or EspHttpClient(
            provider=self.provider, base_url=base_url, retry=retry,
            headers={"Authorization": api_key}, **client_options(kwargs))
        super().__init__(client=client, **kwargs)

    def pause_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                       ) -> ControlResult:
        raise EspNotSupported(said(CAPABILITIES.explanation), provider=self.provider)

    def resume_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        raise EspNotSupported(said(CAPABILITIES.explanation), provider=self.provider)

    def cancel_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        response = self.client.request("DELETE", "/api/v1/transmissions",
                                       params={"campaign_id": campaign_ref})
        return self._result(ControlAction.CANCEL, campaign_ref, response,
                            success=said("SparkPost accepted the deletion of the campaign's "
                                         "scheduled mail (it completes shortly, "
                                         "asynchronously)."))
