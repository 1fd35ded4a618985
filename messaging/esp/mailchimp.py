"""Mailchimp Marketing API v3: stop a campaign that is sending or scheduled.

- POST /3.0/campaigns/{id}/actions/cancel-send stops a regular or plain-text campaign that
  is already sending (before every recipient has it).
- POST /3.0/campaigns/{id}/actions/unschedule takes a scheduled campaign back to draft.
- POST /3.0/campaigns/{id}/actions/pause and /resume exist for RSS campaigns only.
- GET /3.0/campaigns/{id} tells which of these applies (status, type, emails_sent).
Auth is HTTP basic with any user name and the API key; the key's suffix names the data
centre (…-us21 → https://us21.api.mailchimp.com).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from core.sentences import said

from .base import (
    Capabilities,
    ControlAction,
    ControlResult,
    EspError,
    EspNotSupported,
    StopAction,
)
from .httpclient import (
    EspHttpClient,
    HttpControlAdapter,
    RetryPolicy,
    client_options,
    describe,
)

CAPABILITIES = Capabilities(
    can_stop_live_send=True,
    can_pause_scheduled=True,
    can_resume=False,
    stop_action=StopAction.CANCEL,
    explanation=_(
        "Mailchimp can cancel a regular campaign that is already sending; people who "
        "already received it keep it. A scheduled campaign can be unscheduled (it goes back "
        "to draft). Only RSS campaigns can be paused and resumed; any other campaign has to "
        "be scheduled again in Mailchimp."),
)

STOPPED_STATUSES = {"save", "paused", "canceled", "canceling"}


def base_url_for_key(api_key: str) -> str:
    dc = api_key.rsplit("-", 1)[-1] if "-" in api_key else ""
    if not dc.isalnum():
        raise ValueError("Mailchimp API key must end with its data centre, like …-us21")
    return f"https://{dc}.api.mailchimp.com"


class MailchimpAdapter(HttpControlAdapter):
    provider = "mailchimp"
    display_name = "Mailchimp"
    capabilities = CAPABILITIES

    def __init__(self, *, api_key: str, base_url: str | None = None,
                 retry: RetryPolicy | None = None, client: EspHttpClient | None = None,
                 **kwargs: Any) -> None:
        if not api_key:
            raise ValueError("Mailchimp: api_key is required")
        client = client or EspHttpClient(
            provider=self.provider, base_url=base_url or base_url_for_key(api_key),
            auth=("amends", api_key), retry=retry, **client_options(kwargs))
        super().__init__(client=client, **kwargs)

    def campaign(self, campaign_ref: str) -> dict:
        response = self.client.request("GET", f"/3.0/campaigns/{campaign_ref}")
        if not response.ok:
            raise EspError(f"Mailchimp: cannot read campaign {campaign_ref} "
                           f"({response.status}): {describe(response.body)}",
                           provider=self.provider, http_status=response.status,
                           detail=describe(response.body))
        return response.body or {}

    def _read(self, action: ControlAction, campaign_ref: str) -> dict | ControlResult:
        """The campaign, or Mailchimp's refusal to show it as a failed result."""
        response = self.client.request("GET", f"/3.0/campaigns/{campaign_ref}")
        if response.ok:
            return response.body or {}
        return ControlResult(action=action, ok=False, campaign_ref=campaign_ref,
                             http_status=response.status,
                             detail=said("Mailchimp refused to show campaign %(ref)s "
                                         "(%(status)s): %(answer)s", ref=campaign_ref,
                                         status=str(response.status),
                                         answer=describe(response.body)))

    def _action(self, campaign_ref: str, name: str):
        return self.client.request("POST", f"/3.0/campaigns/{campaign_ref}/actions/{name}")

    def _sent_count(self, campaign_ref: str, before: dict) -> int | None:
        """Mailchimp's own count after the stop; the count before it if that read fails."""
        try:
            after = self.campaign(campaign_ref)
        except EspError:
            after = before
        delivery = after.get("delivery_status") or {}
        if delivery.get("enabled") and delivery.get("emails_sent") is not None:
            return int(delivery["emails_sent"])
        sent = after.get("emails_sent")
        return int(sent) if sent is not None else None

    def pause_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                       ) -> ControlResult:
        info = self._read(ControlAction.PAUSE, campaign_ref)
        if isinstance(info, ControlResult):
            return info
        status, kind = info.get("status", ""), info.get("type", "")
        if kind == "rss" and status not in STOPPED_STATUSES:
            response = self._action(campaign_ref, "pause")
            return self._result(ControlAction.PAUSE, campaign_ref, response, esp_status=status,
                                success=said("Mailchimp paused the RSS campaign."))
        if status == "schedule":
            response = self._action(campaign_ref, "unschedule")
            return self._result(ControlAction.PAUSE, campaign_ref, response, esp_status=status,
                                success=said("Mailchimp unscheduled the campaign; it is a "
                                             "draft again and nothing was sent."),
                                sent_before=0 if response.ok else None)
        if status in STOPPED_STATUSES:
            return self._already(ControlAction.PAUSE, campaign_ref, status, info)
        if status == "sending":
            raise EspNotSupported(
                said("Mailchimp cannot pause a regular campaign that is already sending; it "
                     "can only cancel it (cancel-send)."), provider=self.provider)
        return self._nothing_to_stop(ControlAction.PAUSE, campaign_ref, status, info)

    def cancel_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        info = self._read(ControlAction.CANCEL, campaign_ref)
        if isinstance(info, ControlResult):
            return info
        status = info.get("status", "")
        if status == "sending":
            response = self._action(campaign_ref, "cancel-send")
            sent = self._sent_count(campaign_ref, info) if response.ok else None
            return self._result(ControlAction.CANCEL, campaign_ref, response, esp_status=status,
                                sent_before=sent,
                                success=said("Mailchimp cancelled the send; recipients who "
                                             "already had it keep it."))
        if status == "schedule":
            response = self._action(campaign_ref, "unschedule")
            return self._result(ControlAction.CANCEL, campaign_ref, response, esp_status=status,
                                sent_before=0 if response.ok else None,
                                success=said("Mailchimp unscheduled the campaign; it is a "
                                             "draft again and nothing was sent."))
        if status in STOPPED_STATUSES:
            return self._already(ControlAction.CANCEL, campaign_ref, status, info)
        return self._nothing_to_stop(ControlAction.CANCEL, campaign_ref, status, info)

    def resume_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        info = self._read(ControlAction.RESUME, campaign_ref)
        if isinstance(info, ControlResult):
            return info
        if info.get("type") != "rss":
            raise EspNotSupported(
                said("Mailchimp can resume only RSS campaigns; schedule this campaign again "
                     "in Mailchimp to send it."), provider=self.provider)
        response = self._action(campaign_ref, "resume")
        return self._result(ControlAction.RESUME, campaign_ref, response,
                            esp_status=info.get("status", ""),
                            success=said("Mailchimp resumed the RSS campaign."))

    def _already(self, action: ControlAction, ref: str, status: str, info: dict
                 ) -> ControlResult:
        return ControlResult(action=action, ok=True, campaign_ref=ref, esp_status=status,
                             detail=said("Nothing to do: Mailchimp reports the campaign "
                                         "as “%(status)s”.", status=status),
                             recipients_sent_before_stop=info.get("emails_sent"))

    def _nothing_to_stop(self, action: ControlAction, ref: str, status: str, info: dict
                         ) -> ControlResult:
        return ControlResult(action=action, ok=False, campaign_ref=ref, esp_status=status,
                             detail=said("Mailchimp reports the campaign as “%(status)s”: "
                                         "there is no send left to stop.", status=status),
                             recipients_sent_before_stop=info.get("emails_sent"))
