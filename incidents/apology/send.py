"""Sending the apology (step 5): from the incident to a messaging Broadcast.

The incident side decides WHO (the materialised affected audience, never anyone excluded)
and WHETHER (the sign-off guard, the linter); messaging sends exactly once
(messaging/broadcasts.py). Every state change writes the incident's timeline in its own
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from incidents import playbook
from incidents.apology.lint import AudienceCheck, apology_lint, lint_blocks_sending
from incidents.apology.models import Apology
from incidents.apology.selectors import apology_audience_check, apology_locale_for, apology_render
from incidents.assessment.services import affected_recipients
from incidents.models import AffectedAudience, EventKind, Incident
from incidents.plan.signoff import require_signoff_for_send
from incidents.services import checklist_item_prove, step_complete_by_proof
from incidents.timeline import said, timeline_record, who
from messaging import broadcasts
from messaging.models import Broadcast, BroadcastStatus, Delivery, DeliveryState, EspAccount
from messaging.selectors import (
    AccountSendLimits,
    account_send_limits,
    send_estimate,
    send_settings_within,
)

User = AbstractBaseUser


def source_ref(incident: Incident) -> str:
    return f"incident:{incident.pk}"


def apology_broadcast(*, incident: Incident) -> Broadcast | None:
    """The incident's apology broadcast (the latest; a cancelled one stays shown, so
    nobody sends the apology a second time to people who already have it)."""
    return (Broadcast.objects.filter(source_ref=source_ref(incident))
            .select_related("esp_account").order_by("-created_at", "-id").first())


def apology_esp_account(*, incident: Incident) -> EspAccount:
    """The ESP account the apology goes through: the account of the faulty campaigns (the
    one most of them used, by label when tied), as containment uses it to pause them."""
    accounts = (EspAccount.objects.filter(
        campaigns__in=AffectedAudience.campaigns.through.objects.filter(
            affectedaudience__incident=incident).values("campaign"))
        .annotate(n=Count("campaigns")).order_by("-n", "label"))
    account = accounts.first()
    if account is None:
        raise ValidationError(_("The affected audience names no campaign, so there is no ESP "
                                "account to send the apology through."))
    return account


def apology_send_limits(*, incident: Incident) -> AccountSendLimits:
    """Rate and batch size the apology may use: its account's limits (issue 13); with no
    account yet, or one Amends cannot send through, the sandbox's."""
    try:
        account = apology_esp_account(incident=incident)
    except ValidationError:
        account = None
    return account_send_limits(account) or account_send_limits(None)


def _render_bodies(apology: Apology) -> dict[str, dict[str, str]]:
    """Once per locale, with per-recipient tags ({{ first_name }}…) left for the sender."""
    locales = {apology.default_locale, *(k for k, v in (apology.bodies or {}).items()
                                          if v.strip())}
    bodies = {}
    for locale in sorted(locales):
        shown = apology_locale_for(apology=apology, locale=locale)
        email = apology_render(apology=apology, locale=shown, merge_data={})
        bodies[locale] = {"subject": email.subject, "html": email.html, "text": email.text}
    return bodies


@transaction.atomic
def apology_send_start(*, incident: Incident, actor: User,
                       expected_count: int | None = None, **options) -> Broadcast:
    """Check everything, make the ledger from the affected audience, start the fan-out.

    Raises signoff.ApologyBlocked (PermissionDenied) when the sign-off guard refuses, and
    ValidationError for everything else (linter errors, already sent, audience changed).
    `options`: rate_per_second, batch_size (at most the ESP account's limits; default
    those limits), parallelism for the Broadcast. It sends through the incident's ESP
    account (apology_esp_account).
    """
    # The audience row first, as affected_audience_compute takes its locks: a computation
    # under way finishes (and voids the sign-off it changes) before this goes on.
    AffectedAudience.objects.select_for_update().filter(incident_id=incident.pk).first()
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if incident.closed_at is not None:
        raise ValidationError(_("The incident is closed; reopen it to send the apology."))
    if apology_broadcast(incident=incident) is not None:
        raise ValidationError(_("The apology has already been sent (or is being sent)."))
    require_signoff_for_send(incident)
    apology = (Apology.objects.select_for_update(of=("self",)).select_related("brand_template")
               .filter(incident=incident).first())
    if apology is None:
        raise ValidationError(_("Write the apology first."))
    check = apology_audience_check(incident=incident)  # its row is locked (above)
    findings = apology_lint(apology=apology, incident=incident, audience=check)
    if lint_blocks_sending(findings):
        raise ValidationError([str(f.message) for f in findings if f.is_error])
    if expected_count is not None and expected_count != check.affected_count:
        raise ValidationError(_(
            "The affected audience changed since the page was shown (%(then)s, now %(now)s "
            "people). Check it and confirm again.") % {"then": expected_count,
                                                       "now": check.affected_count})
    options["rate_per_second"], options["batch_size"] = send_settings_within(
        limits=apology_send_limits(incident=incident),
        rate_per_second=options.get("rate_per_second"), batch_size=options.get("batch_size"))
    broadcast = broadcasts.broadcast_create(
        source_ref=source_ref(incident), content_version=apology.version,
        subject=apology.subject, from_email=apology.from_email, from_name=apology.from_name,
        reply_to=apology.reply_to, brand_template=apology.brand_template,
        default_locale=apology.default_locale, bodies=_render_bodies(apology),
        created_by=actor, esp_account=apology_esp_account(incident=incident), **options)
    count = broadcasts.deliveries_materialise(
        broadcast=broadcast, recipients=affected_recipients(incident=incident))
    if count != check.affected_count:  # cannot happen under the locks; refuse if it does
        raise ValidationError(_("The ledger does not match the affected audience; nothing "
                                "was sent."))
    broadcast = broadcasts.broadcast_start(broadcast=broadcast)
    timeline_record(
        incident=incident, actor=actor, kind=EventKind.UPDATED,
        message=said("%(who)s started sending the apology (version %(v)s) to %(n)s people "
                     "of the affected audience.", who=who(actor), v=apology.version, n=count),
        data={"broadcast": broadcast.pk, "recipients": count,
              "apology_version": apology.version})
    return broadcast


def _broadcast_locked(incident: Incident) -> Broadcast:
    broadcast = apology_broadcast(incident=incident)
    if broadcast is None:
        raise ValidationError(_("The apology has not been sent yet."))
    return broadcast


@transaction.atomic
def apology_send_pause(*, incident: Incident, actor: User) -> Broadcast:
    """Recorded and acknowledged at once: never waits for a batch at the ESP (those settle
    as usual; the panel says so until they have)."""
    broadcast = broadcasts.broadcast_pause(broadcast=_broadcast_locked(incident))
    at_esp = broadcasts.broadcast_liveness(broadcast=broadcast).at_esp
    timeline_record(incident=incident, actor=actor, kind=EventKind.UPDATED,
                    message=said("%(who)s paused the apology: no further batch starts "
                                 "(%(n)s already at the ESP will settle).", who=who(actor),
                                 n=at_esp),
                    data={"broadcast": broadcast.pk, "paused": True, "at_esp": at_esp})
    return broadcast


@transaction.atomic
def apology_send_cancel(*, incident: Incident, actor: User) -> Broadcast:
    """Stop the apology for good: nobody still waiting gets it, and it cannot be resumed."""
    broadcast, dropped = broadcasts.broadcast_cancel(broadcast=_broadcast_locked(incident))
    timeline_record(incident=incident, actor=actor, kind=EventKind.UPDATED,
                    message=said("%(who)s cancelled the apology: %(n)s people still waiting "
                                 "will not get it.", who=who(actor), n=dropped),
                    data={"broadcast": broadcast.pk, "cancelled": True,
                          "not_sent": dropped})
    return broadcast


@transaction.atomic
def apology_send_resume(*, incident: Incident, actor: User) -> Broadcast:
    require_signoff_for_send(incident)  # a plan edit while paused voids the sign-off
    broadcast = broadcasts.broadcast_resume(broadcast=_broadcast_locked(incident))
    timeline_record(incident=incident, actor=actor, kind=EventKind.UPDATED,
                    message=said("%(who)s resumed sending the apology.", who=who(actor)),
                    data={"broadcast": broadcast.pk, "resumed": True})
    return broadcast


@transaction.atomic
def apology_delivery_decide(*, incident: Incident, actor: User, delivery_id: int,
                            resend: bool) -> Delivery:
    broadcast = _broadcast_locked(incident)
    delivery = Delivery.objects.filter(broadcast=broadcast, pk=delivery_id).first()
    if delivery is None:
        raise ValidationError(_("No such recipient in this apology."))
    if resend:
        require_signoff_for_send(incident)
    delivery = broadcasts.delivery_decide(delivery=delivery, resend=resend, actor=actor)
    facts = {"who": who(actor), "email": delivery.email}
    message = (said("%(who)s decided to send the apology again to %(email)s (the ESP could "
                    "not say whether it got it).", **facts) if resend else
               said("%(who)s decided not to send the apology again to %(email)s (the ESP "
                    "could not say whether it got it).", **facts))
    timeline_record(incident=incident, actor=actor, kind=EventKind.UPDATED,
                    message=message,
                    data={"broadcast": broadcast.pk, "delivery": delivery.pk,
                          "decision": "resend" if resend else "drop"})
    return delivery


def apology_send_reconcile(*, incident: Incident, actor: User
                           ) -> broadcasts.Reconciliation:
    """Ask the ESP about rows in doubt now (outside a transaction: it calls the ESP)."""
    broadcast = _broadcast_locked(incident)
    result = broadcasts.broadcast_reconcile(broadcast=broadcast)
    with transaction.atomic():
        timeline_record(
            incident=incident, actor=actor, kind=EventKind.UPDATED,
            message=said("%(who)s reconciled the apology with the ESP: %(sent)s confirmed "
                         "sent, %(requeued)s queued again, %(left)s still in doubt.",
                         who=who(actor), sent=result.resolved_sent,
                         requeued=result.requeued, left=result.still_in_doubt)
            if result.looked_up else
            said("%(who)s asked the ESP about messages in doubt; it could not tell: "
                 "%(error)s", who=who(actor), error=result.error or "-"),
            data={"broadcast": broadcast.pk, "reconciled": True})
    return result


def _incident_of(broadcast: Broadcast) -> Incident | None:
    if not broadcast.source_ref.startswith("incident:"):
        return None
    return Incident.objects.filter(pk=int(broadcast.source_ref.split(":", 1)[1])).first()


@receiver(broadcasts.broadcast_reopened)
def _apology_reopened(sender, broadcast: Broadcast, requeued: int, by: str,
                      **kwargs) -> None:
    """Rows went back to pending on a completed apology (from the button, the watchdog's
    periodic reconciliation or a decision): it is sending again; say so on the timeline,
    in the same transaction."""
    incident = _incident_of(broadcast)
    if incident is None:
        return
    timeline_record(
        incident=incident, actor=None, kind=EventKind.UPDATED,
        message=said("The apology is sending again: the ESP confirmed it never received "
                     "%(n)s of its messages, and they were queued again.", n=requeued)
        if by == "reconcile" else
        said("The apology is sending again (%(n)s message queued again by a decision).",
             n=requeued),
        data={"broadcast": broadcast.pk, "reopened": True, "requeued": requeued})


@receiver(broadcasts.broadcast_finished)
def _apology_finished(sender, broadcast: Broadcast, **kwargs) -> None:
    """The worker completed a broadcast: write it on the incident's timeline (same
    transaction as the status change)."""
    incident = _incident_of(broadcast)
    if incident is None:
        return
    counts = broadcast_counts(broadcast=broadcast)
    timeline_record(
        incident=incident, actor=None, kind=EventKind.UPDATED,
        message=said("The apology finished sending: %(sent)s sent, %(failed)s failed, "
                     "%(doubt)s in doubt (listed for a decision).", sent=counts.sent,
                     failed=counts.failed, doubt=counts.in_doubt),
        data={"broadcast": broadcast.pk, "completed": True})
    proof = said("The apology reached %(sent)s people, each once.", sent=counts.sent)
    if counts.sent and not counts.in_doubt:
        # Sent to the ledger's audience, once each: that is what step 5 asks. Rows still in
        # doubt wait for a person, and so does the step.
        checklist_item_prove(incident=incident, step_number=5,
                             text=playbook.PROOF_SENT_ONCE, proof=proof)
        step_complete_by_proof(incident=incident, step_number=5, proof=proof)


# --- Live progress ---------------------------------------------------------------------------

RATE_WINDOW = 10  # seconds


@dataclass(frozen=True)
class SendProgress:
    broadcast: Broadcast | None
    total: int = 0
    sent: int = 0
    failed: int = 0
    in_doubt: int = 0
    claimed: int = 0
    pending: int = 0
    cancelled: int = 0  # not sent: the broadcast was cancelled before their turn
    recent: int = 0  # settled within the last RATE_WINDOW seconds

    @property
    def remaining(self) -> int:
        return self.pending + self.claimed

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.in_doubt + self.cancelled

    @property
    def rate(self) -> float:
        return self.recent / RATE_WINDOW

    @property
    def eta_seconds(self) -> int | None:
        if not self.remaining:
            return 0
        return round(self.remaining / self.rate) if self.rate else None

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def percent_announced(self) -> int:
        """What a screen reader hears: whole tenths, never 100 before the last message."""
        return 10 * (10 * self.done // self.total) if self.total else 0

    @property
    def sending(self) -> bool:
        return bool(self.broadcast and self.broadcast.status == BroadcastStatus.SENDING)


def broadcast_counts(*, broadcast: Broadcast) -> SendProgress:
    """Every count of the bar in one query."""
    by = broadcasts.deliveries_state_counts(
        broadcast.pk, settled_since=timezone.now() - timedelta(seconds=RATE_WINDOW))

    def n(*states: str) -> int:
        return sum(by[s][0] for s in states if s in by)

    return SendProgress(
        broadcast=broadcast, total=sum(people for people, _recent in by.values()),
        sent=n(DeliveryState.SENT, DeliveryState.RESOLVED_SENT),
        failed=n(DeliveryState.FAILED, DeliveryState.RESOLVED_MISSING),
        in_doubt=n(DeliveryState.IN_DOUBT), claimed=n(DeliveryState.CLAIMED),
        pending=n(DeliveryState.PENDING), cancelled=n(DeliveryState.CANCELLED),
        recent=sum(recent for _people, recent in by.values()))


def apology_send_progress(*, incident: Incident) -> SendProgress:
    broadcast = apology_broadcast(incident=incident)
    if broadcast is None:
        return SendProgress(broadcast=None)
    return broadcast_counts(broadcast=broadcast)


def apology_in_doubt(*, incident: Incident, limit: int = 50) -> list[Delivery]:
    broadcast = apology_broadcast(incident=incident)
    if broadcast is None:
        return []
    return list(Delivery.objects.filter(broadcast=broadcast, state=DeliveryState.IN_DOUBT)
                .order_by("id")[:limit])


class SendPanel:
    """What the step-5 send panel shows; computed only when the template reads it."""

    def __init__(self, incident: Incident, summary=None) -> None:
        self.incident = incident
        self._summary = summary

    @cached_property
    def broadcast(self) -> Broadcast | None:
        return apology_broadcast(incident=self.incident)

    @cached_property
    def progress(self) -> SendProgress:
        if self.broadcast is None:
            return SendProgress(broadcast=None)
        return broadcast_counts(broadcast=self.broadcast)

    @cached_property
    def liveness(self) -> broadcasts.Liveness:
        """Batches at the ESP and running chains (one look at the lock table): the panel
        says "Paused — 1 batch was already at the ESP, settling" and "recovering"."""
        if self.broadcast is None:
            return broadcasts.Liveness()
        return broadcasts.broadcast_liveness(broadcast=self.broadcast)

    @property
    def settling(self) -> int:
        """Batches still at the ESP after a pause or a cancel."""
        if self.broadcast is None or self.broadcast.status == BroadcastStatus.SENDING:
            return 0
        return self.liveness.at_esp

    @property
    def live(self) -> bool:
        """Whether the progress block keeps polling."""
        return bool(self.progress.sending or self.progress.claimed or self.settling)

    @cached_property
    def in_doubt(self) -> list[Delivery]:
        if not self.progress.in_doubt:
            return []
        return apology_in_doubt(incident=self.incident)

    @cached_property
    def audience(self) -> AudienceCheck | None:
        return apology_audience_check(incident=self.incident)

    @property
    def affected_count(self) -> int:
        return self.audience.affected_count if self.audience else 0

    @cached_property
    def limits(self) -> AccountSendLimits:
        return apology_send_limits(incident=self.incident)

    @property
    def estimate(self) -> str:
        """"1,000,000 people at 5,000/s: about 3 min 20 s" (the account's rate)."""
        return send_estimate(self.affected_count, self.limits)

    @cached_property
    def blockers(self) -> list[str]:
        """Why the apology cannot be sent besides the sign-off (the linter's errors)."""
        from incidents.apology.selectors import apology_summary

        summary = self._summary or apology_summary(incident=self.incident)
        if summary.apology is None:
            return [_("Write the apology first.")]
        return [str(f.message) for f in summary.findings if f.is_error]
