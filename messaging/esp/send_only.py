"""Adapters for ESPs we only send through in Amends (Mailgun, Amazon SES, Mailjet,
Mandrill): their batch sender, and honest words about what they cannot stop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from .base import (
    Capabilities,
    ControlResult,
    EspAdapter,
    EspNotSupported,
    OutgoingMessage,
    RecipientResult,
    SentMessage,
    StopAction,
)
from .batch import HttpBatchSender
from .mailgun_batch import MailgunBatchSender
from .mailjet_batch import MailjetBatchSender
from .mandrill_batch import MandrillBatchSender
from .ses_batch import SesBatchSender


def _capabilities(words: Any) -> Capabilities:
    return Capabilities(can_stop_live_send=False, can_pause_scheduled=False, can_resume=False,
                        stop_action=StopAction.NONE, explanation=words)


class SendOnlyAdapter(EspAdapter):
    """Sends through `sender_class`; campaign control is not offered."""

    sender_class: type[HttpBatchSender]
    merges_client_side = True

    def __init__(self, **options: Any) -> None:
        self.sender = self.sender_class(**options)

    def _unsupported(self) -> EspNotSupported:
        return EspNotSupported(str(self.capabilities.explanation), provider=self.provider)

    def pause_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                       ) -> ControlResult:
        raise self._unsupported()

    def resume_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        raise self._unsupported()

    def cancel_campaign(self, campaign_ref: str, *, send_at: datetime | None = None
                        ) -> ControlResult:
        raise self._unsupported()

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        return self.sender.send_batch(messages)

    def lookup_messages(self, metadata: Mapping[str, str]) -> list[SentMessage]:
        return self.sender.lookup_messages(metadata)


class MailgunAdapter(SendOnlyAdapter):
    provider = "mailgun"
    display_name = "Mailgun"
    sender_class = MailgunBatchSender
    capabilities = _capabilities(_(
        "Mailgun can only drop everything still queued for the whole domain, not one "
        "campaign. Mail we send through it stops between batches, with our own pause."))


class SesAdapter(SendOnlyAdapter):
    provider = "ses"
    display_name = "Amazon SES"
    sender_class = SesBatchSender
    capabilities = _capabilities(_(
        "Amazon SES can only turn sending off for the whole account or a configuration "
        "set. Mail we send through it stops between batches, with our own pause."))


class MailjetAdapter(SendOnlyAdapter):
    provider = "mailjet"
    display_name = "Mailjet"
    sender_class = MailjetBatchSender
    capabilities = _capabilities(_(
        "Mailjet delivers what its Send API accepts at once. Mail we send through it stops "
        "between batches, with our own pause."))


class MandrillAdapter(SendOnlyAdapter):
    provider = "mandrill"
    display_name = "Mandrill"
    sender_class = MandrillBatchSender
    capabilities = _capabilities(_(
        "Mandrill delivers what it accepts at once (scheduled messages aside). Mail we send "
        "through it stops between batches, with our own pause."))
