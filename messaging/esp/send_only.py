"""Adapters for ESPs we only send through in Amends (Mailgun, Amazon SES, Mailjet,
Mandrill): their batch sender, and honest words about what they cannot stop."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from .anymail_sender import AnymailAdapter
from .base import Capabilities, StopAction
from .batch import HttpBatchSender
from .mailgun_batch import MailgunBatchSender
from .mailjet_batch import MailjetBatchSender
from .mandrill_batch import MandrillBatchSender
from .ses_batch import SesBatchSender


def _capabilities(words: Any) -> Capabilities:
    return Capabilities(can_stop_live_send=False, can_pause_scheduled=False, can_resume=False,
                        stop_action=StopAction.NONE, explanation=words)


class SendOnlyAdapter(AnymailAdapter):
    """Sends through `sender_class` (an HTTP batch sender); campaign control is not
    offered (pause / resume / cancel raise EspNotSupported with `capabilities`' words)."""

    sender_class: type[HttpBatchSender]
    merges_client_side = True

    def __init__(self, **options: Any) -> None:
        super().__init__(sender=self.sender_class(**options))


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
