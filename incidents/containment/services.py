"""Step 2, put out the fire: stop every running or scheduled campaign of the incident.

The incident's campaigns are the faulty campaigns of its affected audience (step 3 links
them). A request creates one CampaignStop per campaign still sending or scheduled, writes
the request on the timeline and, after commit, enqueues one task per stop. Each stop's
outcome reaches the timeline through messaging's `campaign_stop_settled` signal, in the
transaction that records it (connected in IncidentsConfig.ready).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from incidents import playbook
from incidents.containment.selectors import campaigns_recent
from incidents.models import AffectedAudience, EventKind, Incident
from incidents.services import checklist_item_prove, incident_declare
from incidents.timeline import joined, label, said, said_n, timeline_record, who
from messaging.esp.base import Capabilities
from messaging.models import (
    OPEN_STOP_OUTCOMES,
    Campaign,
    CampaignStop,
    StopOutcome,
    StopRequest,
)
from messaging.stops import (
    CANCELLABLE_STATUSES,
    RESUMABLE_STATUSES,
    STOPPABLE_STATUSES,
    stop_capabilities,
)
from messaging.tasks import campaign_stop_run


def incident_campaigns(*, incident: Incident):
    """The incident's campaigns: the faulty campaigns of its affected audience."""
    audience = AffectedAudience.objects.filter(incident=incident)
    return Campaign.objects.filter(
        pk__in=audience.values("campaigns")).select_related("esp_account").order_by("name", "pk")


@transaction.atomic
def incident_campaigns_link(*, incident: Incident, actor: AbstractBaseUser | None,
                            campaigns: Iterable[Campaign]) -> list[Campaign]:
    """Mark campaigns as this incident's faulty ones, at declaration or in step 2, so they
    can be paused at once; step 3 starts from them when it computes the audience.

    Adds, never removes (narrowing the scope is step 3's decision). Returns the campaigns
    newly linked.
    """
    if not incident.is_open:
        raise ValidationError(_("This incident is closed; reopen it to change its campaigns."))
    audience, _created = AffectedAudience.objects.get_or_create(incident=incident)
    linked = set(audience.campaigns.values_list("pk", flat=True))
    new = [c for c in campaigns if c.pk not in linked]
    if not new:
        return []
    audience.campaigns.add(*new)
    names = ", ".join(f"“{c.name}”" for c in new)
    message = [said_n("%(who)s marked campaign %(names)s as faulty.",
                      "%(who)s marked campaigns %(names)s as faulty.",
                      len(new), who=who(actor), names=names)]
    if audience.computed_at is not None:
        message.append(said("The affected audience was computed without it; compute "
                            "it again in step 3."))
    timeline_record(incident=incident, actor=actor, kind=EventKind.UPDATED,
                    message=message, data={"campaigns_linked": [c.pk for c in new]})
    return new


@transaction.atomic
def incident_declare_with_campaigns(*, campaigns: Iterable[Campaign] = (),
                                    **details) -> Incident:
    """Declare, and mark the faulty campaigns named at declaration in the same transaction,
    so step 2 can pause them before anyone assesses anything."""
    incident = incident_declare(**details)
    if campaigns:
        incident_campaigns_link(incident=incident, actor=details["actor"], campaigns=campaigns)
    return incident


def _every_campaign_stopped(incident: Incident) -> bool:
    campaigns = list(incident_campaigns(incident=incident))
    return bool(campaigns) and not any(c.status in STOPPABLE_STATUSES for c in campaigns) \
        and not _stops_of(incident).filter(outcome__in=OPEN_STOP_OUTCOMES).exists()


def _stops_of(incident: Incident):
    return CampaignStop.objects.filter(
        requested_for_type=ContentType.objects.get_for_model(Incident),
        requested_for_id=incident.pk)


@transaction.atomic
def incident_campaigns_stop(*, incident: Incident, actor: AbstractBaseUser
                            ) -> list[CampaignStop]:
    """Ask every ESP to stop the incident's sending or scheduled campaigns.

    Idempotent while stops are under way: a campaign with an open stop gets no second one
    (the partial unique constraint backs this up against a concurrent click). Returns the
    stops created now; an empty list means there was nothing (new) to stop.
    """
    if not incident.is_open:
        raise ValidationError(_("This incident is closed; reopen it to pause campaigns."))
    # Lock the campaigns so two clicks queue up here instead of racing to the constraint.
    campaigns = list(incident_campaigns(incident=incident).select_for_update(of=("self",)))
    if not campaigns:
        raise ValidationError(_("This incident has no campaigns yet: compute the affected "
                                "audience in step 3 to link the faulty campaigns."))
    busy = set(CampaignStop.objects.filter(campaign__in=campaigns,
                                           outcome__in=OPEN_STOP_OUTCOMES)
               .values_list("campaign_id", flat=True))
    todo = [c for c in campaigns if c.status in STOPPABLE_STATUSES and c.pk not in busy]
    if not todo:
        return []
    try:
        with transaction.atomic():
            stops = CampaignStop.objects.bulk_create(
                CampaignStop(campaign=c, requested_for=incident, requested_by=actor)
                for c in todo)
    except IntegrityError:  # a concurrent request won the race: its stops will run
        return []
    names = ", ".join(f"“{c.name}” ({c.esp_account.label})" for c in todo)
    message = said_n("%(who)s asked the ESP to stop %(count)d campaign: %(names)s.",
                     "%(who)s asked the ESPs to stop %(count)d campaigns: %(names)s.",
                     len(todo), who=who(actor), count=len(todo), names=names)
    timeline_record(incident=incident, actor=actor, kind=EventKind.STEP, message=message,
                    data={"containment": {"requested": [s.pk for s in stops],
                                          "campaigns": [c.pk for c in todo]}})
    for stop in stops:
        # One task per campaign: a slow or failing ESP never holds up the others.
        transaction.on_commit(lambda pk=stop.pk: campaign_stop_run.delay(pk))
    return stops


@transaction.atomic
def incident_campaign_control(*, incident: Incident, campaign_id: int, request: str,
                              actor: AbstractBaseUser) -> CampaignStop:
    """Ask the ESP to resume a paused campaign of the incident, or to cancel one for good.
    Runs like a stop: one CampaignStop (request resume/cancel), its task after commit, the
    request and the ESP's answer on the timeline."""
    if request not in (StopRequest.RESUME, StopRequest.CANCEL):
        raise ValueError(f"incident_campaign_control: unknown request {request!r}")
    resume = request == StopRequest.RESUME
    if not incident.is_open:
        raise ValidationError(_("This incident is closed; reopen it to change its campaigns."))
    campaign = (incident_campaigns(incident=incident).select_for_update(of=("self",))
                .filter(pk=campaign_id).first())
    if campaign is None:
        raise ValidationError(_("That campaign is not one of this incident's campaigns."))
    if campaign.status not in (RESUMABLE_STATUSES if resume else CANCELLABLE_STATUSES):
        raise ValidationError(
            (_("Only a paused campaign can be resumed; “%(campaign)s” is %(status)s.") if resume
             else _("“%(campaign)s” is %(status)s: there is nothing left to cancel."))
            % {"campaign": campaign.name, "status": campaign.get_status_display().lower()})
    if CampaignStop.objects.filter(campaign=campaign, outcome__in=OPEN_STOP_OUTCOMES).exists():
        raise ValidationError(_("The ESP has not answered the last request for “%(campaign)s” "
                                "yet; wait for its answer.") % {"campaign": campaign.name})
    try:
        with transaction.atomic():
            stop = CampaignStop.objects.create(campaign=campaign, request=request,
                                               requested_for=incident, requested_by=actor)
    except IntegrityError:  # a concurrent request won the race
        raise ValidationError(_("Another request for “%(campaign)s” is already under way.")
                              % {"campaign": campaign.name}) from None
    facts = {"who": who(actor), "campaign": campaign.name,
             "esp": campaign.esp_account.label}
    message = (said("%(who)s asked %(esp)s to resume campaign “%(campaign)s”.", **facts)
               if resume
               else said("%(who)s asked %(esp)s to cancel campaign “%(campaign)s”.", **facts))
    timeline_record(incident=incident, actor=actor, kind=EventKind.STEP, message=message,
                    data={"containment": {"requested": [stop.pk], "request": request,
                                          "campaigns": [campaign.pk]}})
    transaction.on_commit(lambda: campaign_stop_run.delay(stop.pk))
    return stop


_OUTCOME_MESSAGES = {
    (StopRequest.RESUME, StopOutcome.RESUMED): _lazy("Campaign “%(campaign)s” resumed at "
                                                     "%(esp)s: %(detail)s"),
    (StopRequest.RESUME, StopOutcome.NOT_POSSIBLE): _lazy(
        "Campaign “%(campaign)s” cannot be resumed at %(esp)s: %(detail)s"),
    (StopRequest.RESUME, StopOutcome.FAILED): _lazy(
        "Resuming campaign “%(campaign)s” at %(esp)s failed: %(detail)s"),
    (StopRequest.CANCEL, StopOutcome.STOPPED): _lazy(
        "Campaign “%(campaign)s” cancelled at %(esp)s: %(detail)s"),
    (StopRequest.CANCEL, StopOutcome.NOT_POSSIBLE): _lazy(
        "Campaign “%(campaign)s” cannot be cancelled at %(esp)s: %(detail)s"),
    (StopRequest.CANCEL, StopOutcome.FAILED): _lazy(
        "Cancelling campaign “%(campaign)s” at %(esp)s failed: %(detail)s"),
}


def stop_detail_param(stop: CampaignStop) -> dict:
    """The ESP's answer as a sentence param: the sentence we worded (stored untranslated on
    the stop), else the text looked up when read (rows from before; an ESP's own words
    match no msgid, so they read as the ESP wrote them)."""
    if stop.detail_said:
        return joined(stop.detail_said, sep=" ")
    return label(stop.detail)


def stop_settled_on_timeline(sender, *, stop: CampaignStop, requested_for=None,
                             **kwargs) -> None:
    """Receiver of messaging's campaign_stop_settled: the outcome on the incident's timeline."""
    if not isinstance(requested_for, Incident):
        return
    campaign = stop.campaign
    facts = {"campaign": campaign.name, "esp": campaign.esp_account.label,
             "detail": stop_detail_param(stop)}
    if (stop.request, stop.outcome) in _OUTCOME_MESSAGES:
        first = said(_OUTCOME_MESSAGES[stop.request, stop.outcome], **facts)
    elif stop.outcome == StopOutcome.STOPPED:
        first = said("Campaign “%(campaign)s” stopped at %(esp)s: %(detail)s", **facts)
    elif stop.outcome == StopOutcome.NOT_POSSIBLE:
        first = said("Campaign “%(campaign)s” cannot be stopped at %(esp)s: %(detail)s",
                     **facts)
    else:
        first = said("Stopping campaign “%(campaign)s” at %(esp)s failed: %(detail)s",
                     **facts)
    message = [first]
    if stop.recipients_sent_before_stop is not None:
        message.append(said_n("%(count)d recipient had it before the stop.",
                              "%(count)d recipients had it before the stop.",
                              stop.recipients_sent_before_stop,
                              count=stop.recipients_sent_before_stop))
    kind = (EventKind.STEP if stop.outcome in (StopOutcome.STOPPED, StopOutcome.RESUMED)
            else EventKind.ALERT)
    timeline_record(incident=requested_for, actor=None, kind=kind, message=message,
                    data={"containment": {
                        "stop": stop.pk, "campaign": campaign.pk, "outcome": stop.outcome,
                        "request": stop.request,
                        "action": stop.action, "http_status": stop.http_status,
                        "esp_status": stop.esp_status,
                        "sent_before_stop": stop.recipients_sent_before_stop}})
    # Only a stop that stopped something proves the pause (not a resume, not a refusal).
    if stop.outcome == StopOutcome.STOPPED and _every_campaign_stopped(requested_for):
        proof = said("Every faulty campaign is stopped at its ESP.")
        checklist_item_prove(incident=requested_for, step_number=2,
                             text=playbook.PROOF_PAUSED, proof=proof)


# --- The step-2 panel ------------------------------------------------------------------

@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    stop: CampaignStop | None  # this incident's latest stop of the campaign
    capabilities: Capabilities | None

    @property
    def stoppable(self) -> bool:
        return self.campaign.status in STOPPABLE_STATUSES

    @property
    def busy(self) -> bool:
        return self.stop is not None and self.stop.is_open

    @property
    def resumable(self) -> bool:
        return (self.campaign.status in RESUMABLE_STATUSES and not self.busy
                and self.capabilities is not None and self.capabilities.can_resume)

    @property
    def cancellable(self) -> bool:
        return self.campaign.status in CANCELLABLE_STATUSES and not self.busy


class ContainmentPanel:
    """What the step-2 card shows; two queries, read when the card renders: the campaigns
    (the incident's, and the recent ones it may still mark as faulty) and the stops."""

    def __init__(self, incident: Incident) -> None:
        self.incident = incident

    @cached_property
    def _campaigns(self) -> list[Campaign]:
        linked = AffectedAudience.campaigns.through.objects.filter(
            affectedaudience__incident=self.incident, campaign=OuterRef("pk"))
        recent = campaigns_recent().values("pk")
        return list(Campaign.objects.select_related("esp_account")
                    .annotate(is_linked=Exists(linked))
                    .filter(Q(is_linked=True) | Q(pk__in=recent))
                    .order_by("name", "pk"))

    @cached_property
    def rows(self) -> list[CampaignRow]:
        latest: dict[int, CampaignStop] = {}
        for stop in _stops_of(self.incident).order_by("requested_at", "pk"):
            latest[stop.campaign_id] = stop
        return [CampaignRow(campaign=c, stop=latest.get(c.pk),
                            capabilities=stop_capabilities(c.esp_account))
                for c in self._campaigns if c.is_linked]

    @property
    def candidates(self) -> list[Campaign]:
        """Recent campaigns not yet marked as this incident's: what step 2 offers to mark."""
        return [c for c in self._campaigns if not c.is_linked]

    @property
    def pending(self) -> bool:
        return any(r.stop is not None and r.stop.is_open for r in self.rows)

    @property
    def stoppable(self) -> bool:
        return any(r.stoppable and not (r.stop and r.stop.is_open) for r in self.rows)
