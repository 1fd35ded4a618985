"""Old timeline rows get their sentence stored untranslated, so they too read in the reader's
language (issue 14). Each row's English `message` is matched against the sentences below,
frozen here as they were when this migration was written (the code may reword them later):
a message that is one or more of them, optionally followed by text a person wrote, gets
data["said"]; parameters that are known labels are stored as their msgids, numbers and
date-times typed. A row that matches nothing keeps its text (and reads as written).
Reversing is a no-op: the message column was never changed.
"""

import datetime as dt
import re

from django.db import migrations

SAID_KEY = "said"

# The timeline's sentences (msgid, plural msgid) when this migration was written.
SENTENCES = [('The apology reached %(sent)s people, each once.', None),
 ('%(who)s decided to send the apology again to %(email)s (the ESP could not say whether it '
  'got it).',
  None),
 ('%(who)s decided not to send the apology again to %(email)s (the ESP could not say whether '
  'it got it).',
  None),
 ('%(who)s started sending the apology (version %(v)s) to %(n)s people of the affected '
  'audience.',
  None),
 ('%(who)s paused the apology: no further batch starts (%(n)s already at the ESP will settle).',
  None),
 ('%(who)s cancelled the apology: %(n)s people still waiting will not get it.', None),
 ('%(who)s resumed sending the apology.', None),
 ('The apology finished sending: %(sent)s sent, %(failed)s failed, %(doubt)s in doubt (listed '
  'for a decision).',
  None),
 ('The apology is sending again: the ESP confirmed it never received %(n)s of its messages, '
  'and they were queued again.',
  None),
 ('The apology is sending again (%(n)s message queued again by a decision).', None),
 ('%(who)s reconciled the apology with the ESP: %(sent)s confirmed sent, %(requeued)s queued '
  'again, %(left)s still in doubt.',
  None),
 ('%(who)s asked the ESP about messages in doubt; it could not tell: %(error)s', None),
 ('The apology email changed (version %(version)s: %(fields)s)', None),
 ('%(who)s started the apology email (version 1).', None),
 ('%(who)s edited the apology email (version %(version)s): %(fields)s.', None),
 ('body (%(languages)s)', None),
 ('The affected audience is computed: %(reached)s reached.', None),
 ('The affected audience changed (%(affected)s people)', None),
 ('%(who)s computed the affected audience of %(campaigns)s: %(reached)s reached, %(affected)s '
  'in the apology audience, %(excluded)s excluded.',
  None),
 ('Before: %(reached)s reached, %(affected)s in the apology audience.', None),
 ('%(who)s updated the assessment: %(fields)s.', None),
 ('%(who)s asked the ESP to stop %(count)d campaign: %(names)s.',
  '%(who)s asked the ESPs to stop %(count)d campaigns: %(names)s.'),
 ('%(who)s marked campaign %(names)s as faulty.',
  '%(who)s marked campaigns %(names)s as faulty.'),
 ('%(who)s asked %(esp)s to resume campaign “%(campaign)s”.', None),
 ('%(who)s asked %(esp)s to cancel campaign “%(campaign)s”.', None),
 ('Every faulty campaign is stopped at its ESP.', None),
 ('The affected audience was computed without it; compute it again in step 3.', None),
 ('Campaign “%(campaign)s” stopped at %(esp)s: %(detail)s', None),
 ('%(count)d recipient had it before the stop.',
  '%(count)d recipients had it before the stop.'),
 ('Campaign “%(campaign)s” cannot be stopped at %(esp)s: %(detail)s', None),
 ('Stopping campaign “%(campaign)s” at %(esp)s failed: %(detail)s', None),
 ('%(who)s exported the post-mortem as a PDF.', None),
 ("%(who)s started the post-mortem from the incident's record.", None),
 ('%(who)s edited the post-mortem: %(fields)s.', None),
 ('%(who)s finished the post-mortem.', None),
 ('%(who)s skipped the post-mortem: %(reason)s', None),
 ('%(who)s added a follow-up for %(owner)s, due %(due)s: “%(action)s”.', None),
 ('%(who)s added a lesson to the playbook for every “%(kind)s” incident, step %(n)s: '
  '“%(text)s”.',
  None),
 ('%(who)s marked the follow-up “%(action)s” done.', None),
 ('%(who)s reopened the follow-up “%(action)s”.', None),
 ('Deliverability alert: %(metric)s at %(rate).2f %% since the incident crosses '
  '“%(threshold)s” (%(limit).2f %%) over %(volume)s %(denominator)s messages; baseline '
  '%(baseline)s.',
  None),
 ("Deliverability alert on this incident's own mail (its campaigns and apology): %(metric)s at "
  '%(rate).2f %% crosses “%(threshold)s” (%(limit).2f %%) over %(volume)s %(denominator)s '
  'messages; account baseline %(baseline)s.',
  None),
 ('%(who)s recorded that we became aware of the breach at %(when)s.', None),
 ('%(who)s recorded the notice “%(title)s” (%(basis)s) sent at %(when)s, reference %(ref)s.',
  None),
 ('%(who)s corrected the moment of awareness from %(old)s to %(when)s.', None),
 ('%(who)s updated the jurisdictions of the breach clock.', None),
 ('Duty: %(title)s (%(basis)s), %(due)s.', None),
 ('Deadline of %(title)s (%(basis)s) moved from %(old)s to %(new)s.', None),
 ('%(title)s (%(basis)s) was already decided: its deadline of %(when)s stays.', None),
 ('LATE: the deadline was %(deadline)s.', None),
 ('%(who)s recorded that “%(title)s” (%(basis)s) is not needed, approved by %(approver)s: '
  '%(reason)s',
  None),
 ('It was already overdue when it moved.', None),
 ('due %(when)s', None),
 ('%(who)s wrote the plan (version 1).', None),
 ('%(who)s edited the plan: version %(n)s (changed: %(fields)s).', None),
 ('Note: %(note)s', None),
 ('The plan changed (version %(new)s)', None),
 ('%(who)s (%(role)s) approved plan version %(n)s.', None),
 ('%(who)s (%(role)s) rejected plan version %(n)s. Reason: %(reason)s', None),
 ('%(who)s (%(role)s) withdrew their sign-off', None),
 ("%(who)s (%(role)s) approved dropping %(role)s's sign-off: %(reason)s", None),
 ('%(who)s (%(role)s) withdrew their decision (%(decision)s) on plan version %(n)s.', None),
 ('%(change)s, so the approval of %(signer)s (%(role)s) on version %(old)s is void; they are '
  'asked to sign again.',
  None),
 ('%(change)s, so the rejection by %(signer)s (%(role)s) on version %(old)s is void; they are '
  'asked to sign again.',
  None),
 ('Sending the apology is paused: %(change)s after it was signed, so the signatures no longer '
  'cover what is being sent. Once the signers approve again, resume it.',
  None),
 ('asked for sign-off by %(roles)s', None),
 ('withdrew the request for %(roles)s', None),
 ('%(who)s %(what)s.', None),
 ('%(role)s must now sign before subscribers are told (%(why)s). This stays required even if '
  'the incident is reclassified later, until %(role)s approves dropping it.',
  None),
 ('Every required sign-off approves plan version %(n)s: the apology may be sent.', None),
 ("%(role)s's sign-off is needed again; the request to drop it is withdrawn.", None),
 ("%(who)s lowered the incident so that it would no longer need %(role)s's sign-off. It stays "
  'required until %(role)s approves dropping it.',
  None),
 ('Reason given: %(reason)s', None),
 ('%(user)s joined as %(role)s signer: their sign-off is required.', None),
 ('%(who)s set step %(n)s (%(title)s) to %(status)s.', None),
 ('%(who)s removed the owner of step %(n)s.', None),
 ('%(who)s made %(owner)s owner of step %(n)s.', None),
 ('%(who)s declared a %(sev)s incident: %(kind)s. Lead: %(lead)s.', None),
 ('%(who)s changed %(fields)s.', None),
 ('%(who)s closed the incident.', None),
 ('%(who)s reopened the incident: %(reason)s', None),
 ('Reason: %(reason)s', None),
 ('%(who)s added to step %(n)s: “%(text)s”.', None),
 ('%(who)s reworded an item of step %(n)s: “%(old)s” → “%(new)s”.', None),
 ('%(who)s ticked “%(text)s” (step %(n)s).', None),
 ('%(who)s unticked “%(text)s” (step %(n)s).', None),
 ('%(who)s moved “%(text)s” to position %(pos)s in step %(n)s.', None),
 ('%(who)s removed %(user)s (%(role)s).', None),
 ('Status moved from %(old)s to %(new)s.', None),
 ('%(n)s item left open: %(note)s', '%(n)s items left open: %(note)s'),
 ('%(who)s added %(user)s as %(role)s.', None),
 ('Step %(n)s (%(title)s) is past its target of %(minutes)s minutes.', None),
 ('Campaign “%(campaign)s” resumed at %(esp)s: %(detail)s', None),
 ('Campaign “%(campaign)s” cannot be resumed at %(esp)s: %(detail)s', None),
 ('Resuming campaign “%(campaign)s” at %(esp)s failed: %(detail)s', None),
 ('Campaign “%(campaign)s” cancelled at %(esp)s: %(detail)s', None),
 ('Campaign “%(campaign)s” cannot be cancelled at %(esp)s: %(detail)s', None),
 ('Cancelling campaign “%(campaign)s” at %(esp)s failed: %(detail)s', None)]

# Labels a parameter may be (choice labels, field names, playbook and duty titles...).
LABELS = ['Account credit',
 'Alert',
 'Amends',
 'Approved',
 'Arabic',
 'As soon as practicable',
 'Ask whether legal or law enforcement must be involved',
 'Assess the business damage',
 'Assessed',
 'Bounces (hard + soft)',
 'Bounces at 2 %',
 'Bounces at 5 % (SES review level)',
 'Breach clock',
 'Broken link',
 'Check automations and journeys that could send the same content',
 'Checklist',
 'Closed',
 'Compare the intended segment with the one that was used',
 'Compensation',
 'Compensation value',
 'Complaints above 0.2 % (Brevo)',
 'Complaints at 0.1 % (SES review)',
 "Complaints at 0.1 % (half Brevo's)",
 'Complaints at 0.5 % (SES pause)',
 'Confirm at the ESP that nothing more is leaving',
 'Contained',
 'Correction',
 'Count the subscribers and segments that received the email',
 'Coupon code',
 'Data breach',
 'Decide on compensation in proportion to the harm',
 'Decide whether personal data was exposed',
 'Decide whether the early offer is honoured from today',
 'Decide whether the wrong or expired offer will be honoured',
 'Decided not needed',
 'Declared',
 'Deliverability',
 'Delivered',
 'Details changed',
 'Discount',
 'Do not send an apology to a suppression list; skip this step with the reason',
 'Do not send an apology: it would mail these people yet again',
 'Done',
 'Duplicate send',
 'Dutch',
 'English',
 'Estimate the cost, compensation included',
 'Find and stop the job that sent the second copy',
 'Find the cause: technical fault, miscommunication, coordination or human error',
 'Find which merge tags failed and for which subscribers',
 'Finish assessing whether the breach is eligible',
 'Fix or redirect the broken link at its destination',
 'Follow-up actions',
 'Free service (e.g. credit monitoring)',
 'Hard bounces',
 'Hard bounces above 2 % (Brevo)',
 "Hard bounces at 1 % (half Brevo's)",
 'Hard bounces at 10 % (SES pause)',
 'Hard bounces at 5 % (SES review)',
 'Hebrew',
 'Human error',
 'ID',
 'IT',
 'IT: preserve logs and evidence before anything is changed',
 'In progress',
 'Indonesian',
 'Inform and apologize',
 'Internal steps',
 'Lack of coordination',
 'Lead',
 'Leadership',
 'Legal',
 'Legal and security sign the plan before anyone is told',
 'Legal: record when we became aware (GDPR: authority within 72 hours)',
 'List the process or system changes, each with an owner',
 'Make a plan',
 'Marketing',
 'Miscommunication',
 'Monitoring',
 'Name the incident lead and the people on call',
 'None',
 'Not started',
 'Note',
 'Notified',
 'Notify affected Colorado residents',
 'Notify affected Connecticut residents',
 'Notify affected Florida residents',
 'Notify affected Texas residents',
 'Notify affected Washington residents',
 'Notify the ICO',
 'Notify the OAIC and affected people once eligible',
 'Notify the supervisory authority',
 'Other',
 'Own the problem',
 'Owner changed',
 'Pause or cancel every campaign still sending or scheduled',
 'Pending',
 'Personalization failure',
 'Plan',
 'Planned',
 'Polish',
 "Post an internal holding note: what we know, what we don't, next update time",
 'Post-mortem',
 'Proceed with caution',
 'Process and system changes',
 'Put out the fire',
 'Re-check that the suppression list is applied to every send',
 'Rejected',
 'Reopened',
 'Restart regular sends at reduced volume to engaged subscribers',
 'SEV1',
 'SEV2',
 'SEV3',
 'SEV4',
 'Security',
 'Security takes the lead on this incident',
 'Security: contain the exposure (revoke keys, close access, rotate credentials)',
 'Security: list which personal data fields were exposed, and for whom',
 'Send from an address that accepts replies',
 'Send only to the affected audience, once',
 'Sent to a suppression list',
 'Sent to the wrong segment',
 'Sent too early',
 'Sign-off',
 'Skipped',
 'Soft bounces',
 'Spam complaints',
 'Spam complaints at 0.1 %',
 'Spam complaints at 0.3 %',
 'Stakeholders',
 'Status changed',
 'Step changed',
 'Subject says plainly: notice of a data breach',
 'Subscribers must act',
 'Technical fault',
 'Tell leadership what happened, in two sentences',
 'Tell subscribers to reset their password and turn on two-factor authentication',
 'Tell the affected people (high risk to them)',
 'Unsubscribes',
 'Unsubscribes above 1 % (Brevo)',
 "Use a clear subject and the brand's usual template",
 'Watch bounces, complaints and unsubscribes against the baseline',
 'What subscribers are told',
 'What subscribers must do',
 'Who qualifies',
 'Without undue delay',
 'Write the post-mortem and the process changes',
 'Write what subscribers will be told and what they must do',
 'Wrong content or version',
 'Wrong or expired offer or coupon',
 'a data breach',
 'bodies',
 'brand template',
 'cause',
 'cause category',
 'closed at',
 'compensation',
 'compensation per affected person',
 'cost',
 'coupon code',
 'created at',
 'currency',
 'declared at',
 'declared by',
 'default language',
 'detected after (minutes)',
 'detected at',
 'finished at',
 'finished by',
 'how it was detected',
 'incident',
 'kind',
 'lead',
 'left out of the apology',
 'lessons',
 'must law enforcement be involved?',
 'must legal be involved?',
 'no data',
 'on a suppression list',
 'other costs',
 'people affected',
 'personal data exposed',
 'reply-to address',
 'requested by the lead',
 'restricted',
 'root cause',
 'sender address',
 'sender name',
 'severity',
 'status',
 'steps to protect yourself',
 'subject',
 'summary',
 'title',
 'updated at',
 'updated by',
 'version',
 'what happened',
 'what went badly',
 'what went well',
 'why',
 'why there is no post-mortem']


# Parameters that are what a person or an ESP wrote: never looked up as labels or numbers.
TEXT_ONLY = {"reason", "note", "ref", "email", "error", "action", "campaign", "campaigns",
             "names", "esp", "basis", "denominator"}
PEOPLE = {"who", "lead", "owner", "user", "signer", "approver"}
LISTS = {"fields", "roles", "languages"}
NESTED = {"change", "what"}
PLACEHOLDER = re.compile(
    r"%%|%\((?P<name>\w+)\)[-#0 +]*\d*(?:\.(?P<prec>\d+))?(?P<conv>[sdif])")
OLD_MOMENT = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC")
LABEL_SET = frozenset(LABELS)
LOWER_LABELS = {label.lower(): label for label in LABELS}


def _compile(msgid: str) -> tuple[re.Pattern, int, tuple[str, str]]:
    """A regex matching the English rendering, and how many literal characters it has (the
    more, the more specific: "%(who)s %(what)s." must not win over a longer sentence)."""
    out, pos, seen = [], 0, set()
    for m in PLACEHOLDER.finditer(msgid):
        out.append(re.escape(msgid[pos:m.start()]))
        if m.group(0) == "%%":
            out.append("%")
        elif m.group("name") in seen:
            out.append(f"(?P={m.group('name')})")
        else:
            seen.add(m.group("name"))
            conv = m.group("conv")
            body = (r"-?\d+" if conv in "di" else r"-?\d+(?:\.\d+)?" if conv == "f" else ".+?")
            out.append(f"(?P<{m.group('name')}>{body})")
        pos = m.end()
    out.append(re.escape(msgid[pos:]))
    return (re.compile("".join(out), re.DOTALL), len(PLACEHOLDER.sub("", msgid)),
            literal_ends(msgid))


def literal_ends(msgid: str) -> tuple[str, str]:
    """The fixed text a rendering starts and ends with: a cheap test before the regex."""
    text = msgid.replace("%%", "\0")
    first, last = PLACEHOLDER.search(text), None
    for last in PLACEHOLDER.finditer(text):
        pass
    if first is None:
        return text.replace("\0", "%"), ""
    return (text[:first.start()].replace("\0", "%"), text[last.end():].replace("\0", "%"))


class Matcher:
    def __init__(self, sentences):
        forms = []  # (pattern, literal characters, (prefix, suffix), msgid, plural, is_plural)
        for msgid, plural in sentences:
            forms.append((*_compile(msgid), msgid, plural, False))
            if plural:
                forms.append((*_compile(plural), msgid, plural, True))
        self.forms = sorted(forms, key=lambda f: -f[1])

    def _match(self, s: str, start: int, end: int):
        """(part, weight) of the most specific sentence that is exactly s[start:end]."""
        for pattern, weight, (prefix, suffix), msgid, plural, is_plural in self.forms:
            if not (s.startswith(prefix, start, end) and s.endswith(suffix, start, end)):
                continue
            m = pattern.fullmatch(s, start, end)
            if m is None:
                continue
            found = m.groupdict()
            part = {"s": msgid}
            if plural:
                n = found.get("n") or found.get("count")
                part["p"], part["c"] = plural, (int(n) if n and n.isdigit() else
                                                2 if is_plural else 1)
            if found:
                part["a"] = {k: self.param(k, v) for k, v in found.items()}
                # A sentence inside a sentence must be one ("%(who)s %(what)s." is no
                # catch-all for any two words and a full stop).
                if any(k in NESTED and "t" in v for k, v in part["a"].items()):
                    continue
            return part, weight
        return None

    def sentence(self, s: str):
        """The most specific sentence that is exactly `s`, as a stored part, or None."""
        found = self._match(s, 0, len(s))
        return found[0] if found else None

    def message(self, s: str):
        """Sentences joined by spaces, possibly ending in what a person wrote (a note); the
        split matching the most literal text wins. None if no sentence starts it."""
        if len(s) > 4000:
            return None
        ends = [i for i, ch in enumerate(s) if ch == " "] + [len(s)]
        memo: dict[int, tuple | None] = {}

        def best(start: int):  # (score, [(match, msgid, plural, is_plural) | text])
            if start == len(s):
                return (0, [])
            if start in memo:
                return memo[start]
            # Free text to the end scores nothing, so any sentence beats it (not at 0).
            # On a tie the longer sentence wins: free text stays in the param it follows.
            choice = (0, [{"t": s[start:]}]) if start else None
            for end in sorted((e for e in ends if e > start), reverse=True):
                rest = best(end + 1) if end < len(s) else (0, [])
                if rest is None:
                    continue
                found = self._match(s, start, end)
                if found and (choice is None or found[1] + rest[0] > choice[0]):
                    choice = (found[1] + rest[0], [found[0], *rest[1]])
            memo[start] = choice
            return choice

        found = best(0)
        return found[1] if found else None

    def param(self, name: str, value: str) -> dict:
        if name in TEXT_ONLY:
            return {"t": value}
        if name == "detail":  # as written today: looked up when read, unchanged if unknown
            return {"l": value}
        if name == "change":
            return self.sentence(value) or {"t": value}
        if name == "what":
            parts = [self.sentence(p) for p in value.split("; ")]
            return ({"j": parts, "sep": "; "} if all(parts) else {"t": value})
        if name == "due":
            if value.lower() in LOWER_LABELS and value not in LABEL_SET:
                return {"l": LOWER_LABELS[value.lower()], "lower": True}
            return self.sentence(value) or self.plain(value)
        if name in PEOPLE:
            return {"l": value} if value == "Amends" else {"t": value}
        if name in LISTS and value not in LABEL_SET:
            items = value.split(", ")
            if all(i in LABEL_SET for i in items):
                return {"ls": items}
            return {"t": value}
        return self.plain(value)

    @staticmethod
    def plain(value: str) -> dict:
        if value in LABEL_SET:
            return {"l": value}
        if re.fullmatch(r"-?\d+", value):
            return {"n": int(value)}
        if re.fullmatch(r"-?\d+\.\d+", value):
            return {"n": float(value), "d": len(value.split(".")[1])}
        m = OLD_MOMENT.fullmatch(value)
        if m:
            when = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M")
            return {"dt": when.replace(tzinfo=dt.timezone.utc).isoformat()}
        return {"t": value}


def store_sentences(apps, schema_editor):
    TimelineEvent = apps.get_model("incidents", "TimelineEvent")
    matcher = Matcher(SENTENCES)
    batch = []
    rows = (TimelineEvent.objects.exclude(kind__in=["note", "correction"])
            .exclude(data__has_key=SAID_KEY).only("id", "message", "data").iterator(2000))
    for event in rows:
        parts = matcher.message(event.message)
        if parts is None:
            continue
        event.data = {**(event.data or {}), SAID_KEY: parts}
        batch.append(event)
        if len(batch) >= 500:
            TimelineEvent.objects.bulk_update(batch, ["data"])
            batch = []
    if batch:
        TimelineEvent.objects.bulk_update(batch, ["data"])


class Migration(migrations.Migration):
    dependencies = [("incidents", "0008_audience_computation")]

    operations = [migrations.RunPython(store_sentences, migrations.RunPython.noop,
                                       elidable=True)]
