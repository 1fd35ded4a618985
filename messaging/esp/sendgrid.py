"""SendGrid v3 "Cancel Scheduled Sends": pause or cancel a scheduled batch by batch_id.

- POST /v3/user/scheduled_sends {"batch_id", "status": "pause" | "cancel"} → 201
- PATCH /v3/user/scheduled_sends/{batch_id} {"status"} changes an existing pause/cancel → 204
- DELETE /v3/user/scheduled_sends/{batch_id} removes it, so a paused batch goes out → 204
- GET /v3/user/scheduled_sends/{batch_id} lists what is set for the batch.
Only scheduled batches, and not later than 10 minutes before `send_at`. A send already
running cannot be stopped through the API. Auth: "Authorization: Bearer <API key>".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils.translation import gettext_lazy as _

from core.sentences import said

from .base import Capabilities, ControlAction, ControlResult, EspNotSupported, StopAction
from .httpclient import EspHttpClient, HttpControlAdapter, RetryPolicy, client_options

DEADLINE = timedelta(minutes=10)

CAPABILITIES = Capabilities(
    can_stop_live_send=False,
    can_pause_scheduled=True,
    can_resume=True,
    stop_action=StopAction.PAUSE,
    explanation=_(
        "SendGrid can pause or cancel only a scheduled send, up to 10 minutes before it "
        "starts; a send already running cannot be stopped through its API."),
)

TOO_LATE = _("SendGrid cannot stop this send: it starts in less than 10 minutes or is "
             "already running, and SendGrid's API can only pause or cancel a scheduled send "
             "up to 10 minutes before it starts.")


class SendGridAdapter(HttpControlAdapter):
    provider = "sendgrid"
    display_name = "SendGrid"
    capabilities = CAPABILITIES

    def __init__(self, *, api_key: str, base_url: str = "https://api.sendgrid.com",
                 retry: RetryPolicy | None = None, client: EspHttpClient | None = None,
                 **kwargs: Any) -> None:
        if not api_key:
            raise ValueError("SendGrid: api_key is required")
        client = client or EspHttpClient(
            provider=self.provider, base_url=base_url, retry=retry,
            headers={"Authorization": f"Bearer {api_key}"}, **client_options(kwargs))
        super().__init__(client=client, **kwargs)

    def _check_deadline(self, send_at: datetime | None) -> None:
        if send_at is not None and self.now() >= send_at - DEADLINE:
            raise EspNotSupported(said(TOO_LATE), provider=self.provider)

    def _current_status(self, batch_id: str) -> str | None:
        response = self.client.request("GET", f"/v3/user/scheduled_sends/{batch_id}")
        if response.ok and isinstance(response.body, list):
            for entry in response.body:
                if isinstance(entry, dict) and entry.get("batch_id") == batch_id:
                    return entry.get("status")
        return None

    def _set_status(self, action: ControlAction, batch_id: str, status: str,
                    send_at: datetime | None) -> ControlResult:
        self._check_deadline(send_at)
        current = self._current_status(batch_id)
        if current == status:
            return ControlResult(action=action, ok=True, campaign_ref=batch_id,
                                 esp_status=current, recipients_sent_before_stop=0,
                                 detail=said("Nothing to do: SendGrid already has this "
                                             "batch marked “%(status)s”.", status=status))
        if current:
            response = self.client.request("PATCH", f"/v3/user/scheduled_sends/{batch_id}",
                                           json_body={"status": status})
        else:
            response = self.client.request("POST", "/v3/user/scheduled_sends",
                                           json_body={"batch_id": batch_id, "status": status})
        done = (said("SendGrid paused the scheduled batch; it will not go out until resumed.")
                if status == "pause" else
                said("SendGrid cancelled the scheduled batch; its messages will be discarded."))
        esp_status = status if response.ok else (current or "")
        return self._result(action, batch_id, response, success=done, esp_status=esp_status,
                            sent_before=0 if response.ok else None)

    def pause_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                       ) -> ControlResult:
        return self._set_status(ControlAction.PAUSE, campaign_ref, "pause", send_at)

    def cancel_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        return self._set_status(ControlAction.CANCEL, campaign_ref, "cancel", send_at)

    def resume_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        response = self.client.request("DELETE", f"/v3/user/scheduled_sends/{campaign_ref}")
        return self._result(ControlAction.RESUME, campaign_ref, response,
                            success=said("SendGrid removed the pause; the batch will go "
                                         "out at its scheduled time."))
