"""The response playbook: the six steps, their time targets and the checklists per kind.

This module is the only place these texts live; declaring an incident copies them onto
its steps and checklist items, so editing the playbook never rewrites a past incident.
"""

from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _

from incidents.models import Kind, Severity


@dataclass(frozen=True)
class StepDefinition:
    number: int
    title: str
    goal: str
    owning_teams: str
    risk_impact: str
    # Minutes from declaration, per severity; None means no target.
    targets: dict[int, int | None]
    checklist: list[str] = field(default_factory=list)


H = 60
D = 24 * H

# Items an action in Amends proves done: the action ticks them (as Amends) when it happens.
PROOF_PAUSED = _("Pause or cancel every campaign still sending or scheduled")
PROOF_AUDIENCE = _("Count the subscribers and segments that received the email")
PROOF_SENT_ONCE = _("Send only to the affected audience, once")

STEPS: list[StepDefinition] = [
    StepDefinition(
        1, _("Own the problem"),
        _("Acknowledge the mistake early and keep the team's credibility."),
        _("Marketing, leadership"),
        _("Less subscriber frustration, fewer complaints."),
        {Severity.SEV1: 10, Severity.SEV2: 30, Severity.SEV3: 2 * H, Severity.SEV4: 1 * D},
        [
            _("Tell leadership what happened, in two sentences"),
            _("Name the incident lead and the people on call"),
            _("Post an internal holding note: what we know, what we don't, next update time"),
        ],
    ),
    StepDefinition(
        2, _("Put out the fire"),
        _("Stop the harm that is still happening and escalate to the right level."),
        _("Marketing, IT, security"),
        _("No further wrong sends or data exposure."),
        {Severity.SEV1: 15, Severity.SEV2: 1 * H, Severity.SEV3: 4 * H, Severity.SEV4: 1 * D},
        [
            PROOF_PAUSED,
            _("Check automations and journeys that could send the same content"),
            _("Confirm at the ESP that nothing more is leaving"),
        ],
    ),
    StepDefinition(
        3, _("Assess the business damage"),
        _("Know the scope, the cost and the legal impact."),
        _("Marketing, legal, security"),
        _("The right response, compliance, no fines."),
        {Severity.SEV1: 2 * H, Severity.SEV2: 4 * H, Severity.SEV3: 1 * D,
         Severity.SEV4: 3 * D},
        [
            PROOF_AUDIENCE,
            _("Decide whether personal data was exposed"),
            _("Find the cause: technical fault, miscommunication, coordination or human error"),
            _("Estimate the cost, compensation included"),
            _("Ask whether legal or law enforcement must be involved"),
        ],
    ),
    StepDefinition(
        4, _("Make a plan"),
        _("Agree the fixes, the message, the follow-ups and who owns each."),
        _("Cross-functional stakeholders"),
        _("No repeat, and a message that is accurate."),
        {Severity.SEV1: 4 * H, Severity.SEV2: 8 * H, Severity.SEV3: 2 * D,
         Severity.SEV4: 5 * D},
        [
            _("Write what subscribers will be told and what they must do"),
            _("Decide on compensation in proportion to the harm"),
            _("List the process or system changes, each with an owner"),
        ],
    ),
    StepDefinition(
        5, _("Inform and apologize"),
        _("Say it clearly and honestly, with details people can act on."),
        _("Marketing, legal"),
        _("Trust kept, no spam complaints, sender reputation kept."),
        {Severity.SEV1: 1 * D, Severity.SEV2: 1 * D, Severity.SEV3: 2 * D,
         Severity.SEV4: 7 * D},
        [
            _("Use a clear subject and the brand's usual template"),
            _("Send from an address that accepts replies"),
            PROOF_SENT_ONCE,
        ],
    ),
    StepDefinition(
        6, _("Proceed with caution"),
        _("Watch the after-effects and adjust the next sends."),
        _("Deliverability, marketing"),
        _("Reputation drops are caught early."),
        {Severity.SEV1: 14 * D, Severity.SEV2: 14 * D, Severity.SEV3: 7 * D,
         Severity.SEV4: 7 * D},
        [
            _("Watch bounces, complaints and unsubscribes against the baseline"),
            _("Restart regular sends at reduced volume to engaged subscribers"),
            _("Write the post-mortem and the process changes"),
        ],
    ),
]

# Extra items per incident kind, by step number, added after the step's own items.
KIND_CHECKLISTS: dict[str, dict[int, list[str]]] = {
    Kind.DATA_BREACH: {
        1: [_("Security takes the lead on this incident")],
        2: [
            _("Security: contain the exposure (revoke keys, close access, rotate credentials)"),
            _("IT: preserve logs and evidence before anything is changed"),
        ],
        3: [
            _("Security: list which personal data fields were exposed, and for whom"),
            _("Legal: record when we became aware (GDPR: authority within 72 hours)"),
        ],
        4: [
            _("Legal and security sign the plan before anyone is told"),
            _("Tell subscribers to reset their password and turn on two-factor authentication"),
        ],
        5: [_("Subject says plainly: notice of a data breach")],
    },
    Kind.SUPPRESSION_SEND: {
        2: [_("Re-check that the suppression list is applied to every send")],
        4: [_("Do not send an apology: it would mail these people yet again")],
        5: [_("Do not send an apology to a suppression list; skip this step with the reason")],
    },
    Kind.PERSONALIZATION: {
        3: [_("Find which merge tags failed and for which subscribers")],
    },
    Kind.WRONG_OFFER: {
        3: [_("Decide whether the wrong or expired offer will be honoured")],
    },
    Kind.BROKEN_LINK: {
        2: [_("Fix or redirect the broken link at its destination")],
    },
    Kind.SENT_TOO_EARLY: {
        3: [_("Decide whether the early offer is honoured from today")],
    },
    Kind.WRONG_SEGMENT: {
        3: [_("Compare the intended segment with the one that was used")],
    },
    Kind.DUPLICATE_SEND: {
        2: [_("Find and stop the job that sent the second copy")],
    },
}


def checklist_for(kind: str, number: int) -> list[str]:
    base = next(step.checklist for step in STEPS if step.number == number)
    return [str(text) for text in [*base, *KIND_CHECKLISTS.get(kind, {}).get(number, [])]]


def is_restricted_kind(kind: str) -> bool:
    return kind == Kind.DATA_BREACH
