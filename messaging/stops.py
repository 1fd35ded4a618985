"""Stopping campaigns at their ESP: which adapter talks to an account, and one stop's run.

`campaign_stop_execute` is called by the Celery task once per CampaignStop (a stop, or a
request to resume or cancel a campaign: `CampaignStop.request`). It claims the
row with a conditional update (two workers, or a redelivered task, never both call the
ESP), calls the ESP outside any transaction, and records the answer — with the campaign's
new status and the `campaign_stop_settled` signal — in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.sentences import Sentence, encode, label, said

from .esp.accounts import account_key
from .esp.base import (
    Capabilities,
    ControlAction,
    ControlResult,
    EspAdapter,
    EspError,
    EspNotSupported,
    EspTemporaryError,
)
from .esp.registry import Provider, capabilities_for, get_adapter
from .esp.sandbox import RedisSandboxStore, SandboxAdapter
from .models import (
    Campaign,
    CampaignStatus,
    CampaignStop,
    EspAccount,
    StopAction,
    StopOutcome,
    StopRequest,
)
from .signals import campaign_stop_settled

logger = logging.getLogger(__name__)

# A stop claimed longer ago than this by a worker that died is claimed again. Longer than
# the ESP client's own retries can take (5 attempts, 30 s backoff at most, 15 s timeouts).
CLAIM_LEASE = timedelta(minutes=10)

STOPPABLE_STATUSES = (CampaignStatus.SENDING, CampaignStatus.SCHEDULED)
RESUMABLE_STATUSES = (CampaignStatus.PAUSED,)
CANCELLABLE_STATUSES = (*STOPPABLE_STATUSES, CampaignStatus.PAUSED)


def esp_adapter_for(account: EspAccount, **overrides: Any) -> EspAdapter:
    """The adapter for one account, configured from settings.AMENDS_ESP_ACCOUNTS.

    The sandbox needs no configuration: it uses AMENDS_ESP's sandbox options and, when
    Redis is there, the store web and workers share. A real ESP without credentials raises
    ValueError naming the variables to set.
    """
    options = dict(settings.AMENDS_ESP_ACCOUNTS.get(account_key(account.label), {}))
    options.update(overrides)
    if account.provider == Provider.SANDBOX:
        conf = settings.AMENDS_ESP
        sandbox: dict[str, Any] = {"latency": conf["SANDBOX_LATENCY"],
                                   "failure_rate": conf["SANDBOX_FAILURE_RATE"],
                                   "seed": conf["SANDBOX_SEED"]}
        if settings.REDIS_URL:
            sandbox["store"] = RedisSandboxStore.from_settings()
        return get_adapter(Provider.SANDBOX, **{**sandbox, **options})
    if not options:
        key = account_key(account.label)
        raise ValueError(
            f"ESP account “{account.label}” ({account.provider}) has no credentials: set "
            f"AMENDS_ESP_ACCOUNT_{key}_API_KEY (and _BASE_URL if needed) or an entry "
            f"“{account.label}” in AMENDS_ESP_ACCOUNTS.")
    try:
        return get_adapter(account.provider, **options)
    except TypeError as exc:  # an option this adapter does not take
        raise ValueError(f"ESP account “{account.label}”: {exc}") from exc


def stop_capabilities(account: EspAccount) -> Capabilities | None:
    """What this account's ESP can stop, without credentials (for the page)."""
    try:
        return capabilities_for(account.provider)
    except ValueError:
        return None


def _send_at(campaign: Campaign) -> datetime | None:
    """When the send starts (or started): ESPs with a deadline check it before stopping."""
    if campaign.status == CampaignStatus.SCHEDULED:
        return campaign.scheduled_at
    return campaign.started_at or campaign.scheduled_at or timezone.now()


def _claim(stop_id: int) -> CampaignStop | None:
    now = timezone.now()
    claimable = Q(outcome=StopOutcome.PENDING) | Q(outcome=StopOutcome.RUNNING,
                                                   claimed_at__lt=now - CLAIM_LEASE)
    claimed = CampaignStop.objects.filter(claimable, pk=stop_id).update(
        outcome=StopOutcome.RUNNING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return CampaignStop.objects.select_related("campaign__esp_account").get(pk=stop_id)


@transaction.atomic
def _settle(stop: CampaignStop, *, outcome: str, action: str, detail: str,
            result: ControlResult | None = None, http_status: int | None = None) -> CampaignStop:
    stop.outcome = outcome
    stop.action = action
    stop.detail, stop.detail_said = _detail(detail)
    stop.http_status = result.http_status if result else http_status
    stop.esp_status = (result.esp_status if result else "")[:64]
    stop.recipients_sent_before_stop = result.recipients_sent_before_stop if result else None
    stop.finished_at = timezone.now()
    stop.save(update_fields=["outcome", "action", "detail", "detail_said", "http_status",
                             "esp_status", "recipients_sent_before_stop", "finished_at"])
    status = None
    if outcome == StopOutcome.STOPPED:
        status = (CampaignStatus.CANCELLED if action == StopAction.CANCEL
                  else CampaignStatus.PAUSED)
    elif outcome == StopOutcome.RESUMED:
        campaign = stop.campaign
        # Back to where it was before the pause: sending once it had started.
        status = (CampaignStatus.SCHEDULED if campaign.started_at is None
                  and campaign.scheduled_at and campaign.scheduled_at > timezone.now()
                  else CampaignStatus.SENDING)
    if status is not None:
        Campaign.objects.filter(pk=stop.campaign_id).update(status=status)
        stop.campaign.status = status
    campaign_stop_settled.send(sender=CampaignStop, stop=stop,
                               requested_for=stop.requested_for)
    return stop


def _detail(detail: str) -> tuple[str, list]:
    """The answer as stored: English (or the ESP's words), and our sentence untranslated."""
    return str(detail)[:4000], encode(detail) if isinstance(detail, Sentence) else []


def _words(exc: Exception) -> str:
    """What an error says, keeping our sentence (str(exc) would flatten it to English)."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)


def _release(stop: CampaignStop, exc: EspTemporaryError) -> None:
    """Back to pending with the ESP's last words, for the task's next attempt."""
    detail, said_ = _detail(exc.detail)
    CampaignStop.objects.filter(pk=stop.pk, outcome=StopOutcome.RUNNING).update(
        outcome=StopOutcome.PENDING, claimed_at=None, detail=detail, detail_said=said_,
        http_status=exc.http_status)


def _sandbox_mirror(adapter: EspAdapter, campaign: Campaign) -> None:
    """The sandbox has no campaigns of its own: it simulates ours from our mirror of it."""
    ref = campaign.esp_campaign_id
    if isinstance(adapter, SandboxAdapter) and adapter.store.get_campaign(ref) is None:
        adapter.register_campaign(ref, status=campaign.status,
                                  sent=campaign.recipients.count())


def campaign_stop_execute(*, stop_id: int, final_attempt: bool = True,
                          adapter: EspAdapter | None = None) -> CampaignStop | None:
    """Ask the ESP to stop one campaign; returns the settled stop, or None when this call
    had nothing to do (another worker holds it, or it is settled already).

    Not one transaction on purpose: the ESP call must not hold database locks open.
    On EspTemporaryError the stop goes back to pending and the error is re-raised for the
    caller to retry later, unless `final_attempt`, when it is recorded as failed.
    """
    stop = _claim(stop_id)
    if stop is None:
        return None
    if stop.request != StopRequest.STOP:
        return _resume_or_cancel(stop, final_attempt=final_attempt, adapter=adapter)
    campaign = stop.campaign
    account = campaign.esp_account
    if campaign.status not in STOPPABLE_STATUSES:
        return _settle(stop, outcome=StopOutcome.STOPPED, action=StopAction.NONE,
                       detail=said("Nothing to stop: the campaign is already %(status)s.",
                                   status=label(CampaignStatus(campaign.status).label,
                                                lower=True)))
    try:
        adapter = adapter or esp_adapter_for(account)
    except (ValueError, EspError) as exc:
        return _settle(stop, outcome=StopOutcome.FAILED, action=StopAction.NONE,
                       detail=_words(exc))
    capabilities = adapter.capabilities
    if campaign.status == CampaignStatus.SENDING and not capabilities.can_stop_live_send:
        # Asking would only earn a refusal: say what this ESP can do, in its own words.
        return _settle(stop, outcome=StopOutcome.NOT_POSSIBLE, action=StopAction.NONE,
                       detail=said(capabilities.explanation))
    action = str(capabilities.stop_action)
    _sandbox_mirror(adapter, campaign)
    result = _ask(stop, action, final_attempt, lambda: adapter.stop_campaign(
        campaign.esp_campaign_id, send_at=_send_at(campaign)))
    if isinstance(result, CampaignStop):
        return result
    action = {ControlAction.PAUSE: StopAction.PAUSE,
              ControlAction.CANCEL: StopAction.CANCEL}.get(result.action, action)
    return _settle(stop, outcome=StopOutcome.STOPPED if result.ok else StopOutcome.FAILED,
                   action=action, detail=result.detail, result=result)


def _ask(stop: CampaignStop, action: str, final_attempt: bool,
         call: Callable[[], ControlResult]) -> ControlResult | CampaignStop:
    """Call the ESP; an error is settled here (the settled stop comes back), an answer is
    the caller's to read. A temporary error before the final attempt is re-raised."""
    try:
        return call()
    except EspNotSupported as exc:
        return _settle(stop, outcome=StopOutcome.NOT_POSSIBLE, action=action,
                       detail=_words(exc), http_status=exc.http_status)
    except EspTemporaryError as exc:
        if not final_attempt:
            _release(stop, exc)
            raise
        return _settle(stop, outcome=StopOutcome.FAILED, action=action,
                       detail=said("Gave up after %(n)s tries: %(error)s", n=stop.attempts,
                                   error=_words(exc)),
                       http_status=exc.http_status)
    except EspError as exc:
        return _settle(stop, outcome=StopOutcome.FAILED, action=action, detail=_words(exc),
                       http_status=exc.http_status)


def _resume_or_cancel(stop: CampaignStop, *, final_attempt: bool,
                      adapter: EspAdapter | None) -> CampaignStop:
    """A claimed resume or cancel request: the same contract as a stop."""
    campaign = stop.campaign
    resume = stop.request == StopRequest.RESUME
    action = StopAction.RESUME if resume else StopAction.CANCEL
    allowed = RESUMABLE_STATUSES if resume else CANCELLABLE_STATUSES
    if campaign.status not in allowed:
        status = label(CampaignStatus(campaign.status).label, lower=True)
        detail = (said("Nothing to resume: the campaign is %(status)s.", status=status)
                  if resume else
                  said("Nothing to cancel: the campaign is already %(status)s.", status=status))
        return _settle(stop, outcome=StopOutcome.NOT_POSSIBLE, action=StopAction.NONE,
                       detail=detail)
    capabilities = adapter.capabilities if adapter else stop_capabilities(campaign.esp_account)
    if resume and capabilities is not None and not capabilities.can_resume:
        # Asking would only earn a refusal: say what this ESP can do, in its own words.
        return _settle(stop, outcome=StopOutcome.NOT_POSSIBLE, action=StopAction.NONE,
                       detail=said(capabilities.explanation))
    try:
        adapter = adapter or esp_adapter_for(campaign.esp_account)
    except (ValueError, EspError) as exc:
        return _settle(stop, outcome=StopOutcome.FAILED, action=StopAction.NONE,
                       detail=_words(exc))
    _sandbox_mirror(adapter, campaign)
    control = adapter.resume_campaign if resume else adapter.cancel_campaign
    result = _ask(stop, action, final_attempt, lambda: control(
        campaign.esp_campaign_id, send_at=_send_at(campaign)))
    if isinstance(result, CampaignStop):
        return result
    done = StopOutcome.RESUMED if resume else StopOutcome.STOPPED
    return _settle(stop, outcome=done if result.ok else StopOutcome.FAILED, action=action,
                   detail=result.detail, result=result)
