"""The apology linter: the DO / DON'T rules of step 5 as checks with clear messages.

`apology_lint` is a pure function: it reads the apology (saved or not), the incident and
what the sending side knows about the audience, and returns findings. Errors block
sending; warnings are advice. It never touches the database, so the composer can run it
on every keystroke.
"""

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from incidents.apology.models import Apology
from incidents.models import Incident, Kind
from messaging.rendering import MERGE_TAG

ERROR = "error"
WARNING = "warning"

# Merge fields the sender fills per recipient (plus coupon_code, from the apology itself).
KNOWN_MERGE_FIELDS: frozenset[str] = frozenset({"first_name", "last_name", "email"})
APOLOGY_MERGE_FIELDS: frozenset[str] = frozenset({"coupon_code"})


@dataclass(frozen=True)
class Finding:
    level: str  # ERROR or WARNING
    code: str
    message: str
    field: str = ""  # the composer's field name, e.g. "reply_to" or "body_nl"
    locale: str = ""

    @property
    def is_error(self) -> bool:
        return self.level == ERROR


@dataclass(frozen=True)
class AudienceCheck:
    """What the sending side knows about who would receive the apology."""

    computed: bool
    affected_count: int
    matches_incident: bool


def lint_blocks_sending(findings: Iterable[Finding]) -> bool:
    return any(f.level == ERROR for f in findings)


def _language_name(locale: str) -> str:
    return str(dict(settings.LANGUAGES).get(locale, locale))


def body_field(locale: str) -> str:
    return f"body_{locale}"


# --- Rule data -------------------------------------------------------------------------

# Matched on the address's local part (or the sender name) with everything but letters
# removed, so no-reply, no_reply, do.not.reply and NoReply all read "noreply".
_NOREPLY = re.compile(
    r"(no|donot|dont|not)(reply|replies|respond|response|answer)|"
    r"(nie|niet|geen|tidak|jangan)(odpowiad|antwoord|beantwoord|balas|dibalas|membalas)|"
    r"unmonitored|mailerdaemon",
)

# Word stems that say sorry, per language. Latin scripts match at a word start; Arabic
# and Hebrew attach prefixes (and, the, we) to words, so they match anywhere.
APOLOGY_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("sorry", "apolog", "mistake", "error", "regret"),
    "nl": ("sorry", "excuses", "excuus", "verontschuldig", "spijt", "fout", "vergissing"),
    "pl": ("przeprasz", "przeprosi", "błąd", "błęd", "pomyłk", "pomyłek", "wybacz"),
    "id": ("maaf", "kesalahan", "salah", "keliru", "menyesal"),
    "ar": ("نعتذر", "اعتذار", "أعتذر", "نأسف", "آسف", "متأسف", "خطأ", "أخطأ", "عذرا", "عذراً"),
    "he": ("סליחה", "מתנצל", "התנצלות", "מצטער", "טעות", "טעינו", "שגיאה"),
}
_UNBOUNDED_SCRIPTS = {"ar", "he"}

VAGUE_SUBJECTS = frozenset({
    "update", "an update", "quick update", "important update", "important", "news",
    "hello", "hi", "hey", "notice", "information", "info", "fyi", "attention",
    "please read", "read this", "a quick note", "quick note", "message", "a message",
    "important information", "important message", "one more thing",
    "aktualizacja", "ważne", "informacja", "witaj", "belangrijk", "nieuws", "hallo",
    "informatie", "pemberitahuan", "penting", "info penting", "halo",
    "تحديث", "مهم", "مرحبا", "أخبار", "עדכון", "חשוב", "שלום", "חדשות",
})
MIN_SUBJECT_LENGTH = 12
# Short subjects are fine when they name the thing: "Correction", "We're sorry".
CLEAR_SUBJECT_WORDS = ("correction", "breach", "incident", "recall", "rectificatie",
                       "correctie", "korekta", "koreksi", "تصحيح", "תיקון")

HUMOUR_WORDS = ("oops", "whoops", "whoopsie", "oopsie", "lol", "lmao", "rofl", "haha",
                "hehe", "our bad", "my bad", "yikes", "uh-oh", "uh oh", "d'oh", "xd",
                "oeps", "oepsie", "wkwk", "hihi", "ups!")
HUMOUR_SYMBOLS = ("😅", "🙈", "😂", "🤣", "😬", "🤦", "🙃", "😜", "😉", "😆", "😝", "🤪",
                  "🫣", "😇", "ههههه", "חחחח")
_EMOTICON = re.compile(r"(?<![\w/])[:;]-?[)pd](?!\w)")

PROTECTIVE_STEPS_DEFAULT = (
    "To protect your account, please:\n"
    "- Change your password, and change it anywhere else you use the same one.\n"
    "- Turn on two-factor authentication in your account settings.\n"
    "- Watch for phishing: we will never ask for your password. Be wary of emails, texts "
    "or calls that use your name or this incident to ask for personal details or payment.\n"
    "- Check your recent orders and payment statements, and tell us about anything you "
    "do not recognise."
)

# Merge tags in syntaxes other tools use; our sender fills only `{{ field }}`.
_HTML_TAGS = {"a", "b", "i", "u", "p", "br", "hr", "em", "strong", "div", "span", "ul",
              "ol", "li", "img", "table", "tr", "td", "th", "h1", "h2", "h3", "small"}
_FOREIGN_TAGS = (
    re.compile(r"\*\|[A-Za-z0-9_:\-]+\|\*"),                      # *|FNAME|*  (Mailchimp)
    re.compile(r"%%?[A-Za-z][A-Za-z0-9_]*%%?"),                   # %FIRSTNAME%
    re.compile(r"\$\{\s*[A-Za-z_][A-Za-z0-9_.]*\s*\}"),           # ${first_name}
    re.compile(r"\{\{\s*[^{}]*?[^A-Za-z0-9_{}\s][^{}]*?\s*\}\}"),  # {{ person.name }}
    re.compile(r"\{%.*?%\}"),                                     # {% if ... %}
)
_ANGLE_TAG = re.compile(r"<\s*([A-Za-z][A-Za-z0-9_]*)\s*>")
_SQUARE_TAG = re.compile(r"\[\s*([A-Za-z][A-Za-z0-9_]*)\s*\](?!\()")
# [FirstName], [first_name], [FNAME], [Email] look like fields; [sic] or [1] do not.
_FIELDISH = re.compile(r"[a-z][A-Z]|_|^[A-Z]{2,}$|(?i:name|mail|coupon|code|city|company)")


def _mentions(text: str, words: Iterable[str], *, anywhere: bool = False) -> bool:
    lowered = text.casefold()
    for word in words:
        if anywhere:
            if word in lowered:
                return True
        elif re.search(r"(?<!\w)" + re.escape(word.casefold()), lowered):
            return True
    return False


def _says_sorry(text: str, locale: str) -> bool:
    words = APOLOGY_WORDS.get(locale, APOLOGY_WORDS["en"])
    return _mentions(text, words, anywhere=locale in _UNBOUNDED_SCRIPTS)


def _humour_in(text: str) -> list[str]:
    """Every humour marker in the text, in order of appearance, each once."""
    lowered = text.casefold()
    found: list[tuple[int, str]] = []
    for word in HUMOUR_WORDS:
        found += [(m.start(), m.group(0)) for m in
                  re.finditer(r"(?<!\w)" + re.escape(word) + r"(?!\w)", lowered)]
    for symbol in HUMOUR_SYMBOLS:
        found += [(m.start(), symbol) for m in re.finditer(re.escape(symbol), lowered)]
    # "hahaha", "lolol", "whoooops", ";)"
    for pattern in (r"(?<!\w)(?:ha){2,}", r"(?<!\w)who+ps(?!\w)", r"(?<!\w)lo+l(?:ol)*(?!\w)"):
        found += [(m.start(), m.group(0)) for m in re.finditer(pattern, lowered)]
    found += [(m.start(), m.group(0)) for m in _EMOTICON.finditer(lowered)]
    markers: list[str] = []
    for _pos, marker in sorted(found):
        if not any(marker in m or m in marker for m in markers):
            markers.append(marker)
    return markers


def find_unresolved_merge_tags(text: str, available: Collection[str]) -> list[str]:
    """Every merge tag in `text` the sender will not fill, in order of appearance."""
    found: list[tuple[int, str]] = []
    for match in MERGE_TAG.finditer(text):
        if match.group(1) not in available:
            found.append((match.start(), match.group(0)))
    for pattern in _FOREIGN_TAGS:
        found.extend((m.start(), m.group(0)) for m in pattern.finditer(text))
    for match in _ANGLE_TAG.finditer(text):
        if match.group(1).lower() not in _HTML_TAGS:
            found.append((match.start(), match.group(0)))
    for match in _SQUARE_TAG.finditer(text):
        if _FIELDISH.search(match.group(1)):
            found.append((match.start(), match.group(0)))
    seen: set[str] = set()
    ordered = []
    for _pos, tag in sorted(found):
        if tag not in seen:
            seen.add(tag)
            ordered.append(tag)
    return ordered


def _is_breach(incident: Incident) -> bool:
    return incident.kind == Kind.DATA_BREACH or incident.pii_exposed


def _names_the_problem(subject: str) -> bool:
    return _mentions(subject, CLEAR_SUBJECT_WORDS) or any(
        _says_sorry(subject, locale) for locale in APOLOGY_WORDS)


def _normalise_subject(subject: str) -> str:
    return re.sub(r"[\W_]+", " ", subject.casefold()).strip()


# --- The linter ------------------------------------------------------------------------

def apology_lint(*, apology: Apology, incident: Incident, audience: AudienceCheck | None,
                 merge_fields: Collection[str] = KNOWN_MERGE_FIELDS) -> list[Finding]:
    """Check an apology against the step-5 rules; errors first, then warnings."""
    findings: list[Finding] = []
    add = findings.append
    breach = _is_breach(incident)
    default = apology.default_locale
    bodies = {loc: (body or "") for loc, body in (apology.bodies or {}).items()
              if (body or "").strip()}

    if incident.kind == Kind.SUPPRESSION_SEND:
        add(Finding(ERROR, "suppression_send", _(
            "This incident mailed a suppression list: those people asked not to be "
            "emailed. Do not send an apology at all; it would mail them yet again."),
            field="audience"))

    # Senders people can answer.
    if not apology.from_email.strip():
        add(Finding(ERROR, "sender_missing", _(
            "Sender address is empty: say who this email comes from."), field="from_email"))
    for field, label, address in (("from_email", _("Sender"), apology.from_email),
                                  ("reply_to", _("Reply-to"), apology.reply_to)):
        local = address.strip().split("@")[0].casefold()
        if address.strip() and _NOREPLY.search(re.sub(r"[^a-z]", "", local)):
            if field == "reply_to" or not apology.reply_to.strip():
                reason = _("people will answer this email and their replies matter.")
            else:
                reason = _("it looks like you do not want to hear back, even with a "
                           "reply-to set.")
            add(Finding(ERROR, "noreply", _(
                "%(label)s %(address)s is a no-reply address: %(reason)s Use a mailbox "
                "someone reads.") % {"label": label, "address": address.strip(),
                                     "reason": reason}, field=field))
    if _NOREPLY.search(re.sub(r"[^a-z]", "", apology.from_name.casefold())):
        add(Finding(ERROR, "noreply_name", _(
            "Sender name “%(name)s” tells people not to reply: people will answer this "
            "email and their replies matter.") % {"name": apology.from_name.strip()},
            field="from_name"))

    # The body in the default language is what everyone without a translation gets.
    if default not in bodies:
        add(Finding(ERROR, "body_missing", _(
            "The %(language)s body is empty: it is the default language, sent to everyone "
            "whose language has no body of its own.") % {"language": _language_name(default)},
            field=body_field(default), locale=default))

    if breach and not apology.protective_steps.strip():
        add(Finding(ERROR, "protective_steps_missing", _(
            "Personal data was exposed, but the email has no steps people can take to "
            "protect themselves (change password, turn on two-factor authentication, watch "
            "for phishing)."), field="protective_steps"))

    # Merge tags the sender cannot fill.
    available = set(merge_fields)
    if apology.coupon_code.strip():
        available |= APOLOGY_MERGE_FIELDS
    places: list[tuple[str, str, str]] = [("subject", "", apology.subject)]
    places += [(body_field(loc), loc, text) for loc, text in bodies.items()]
    places += [("protective_steps", "", apology.protective_steps),
               ("compensation_text", "", apology.compensation_text)]
    for field, locale, text in places:
        for tag in find_unresolved_merge_tags(text, available):
            if locale:
                message = _("Merge tag %(tag)s in the %(language)s body will not be filled "
                            "in: recipients would see it raw.")
            else:
                message = _("Merge tag %(tag)s in the %(field)s will not be filled in: "
                            "recipients would see it raw.")
            if tag.strip("{} ") == "coupon_code":
                message += " " + _("Enter a coupon code, or remove the tag.")
            else:
                message += " " + _("Use one of: %(fields)s.")
            add(Finding(ERROR, "merge_tag", message % {
                "tag": tag, "language": _language_name(locale),
                "field": _field_label(field),
                "fields": ", ".join("{{ " + f + " }}" for f in sorted(available))},
                field=field, locale=locale))

    # Who receives it.
    if audience is None or not audience.computed:
        add(Finding(ERROR, "audience_not_computed", _(
            "Compute the affected audience first: the apology goes only to people who got "
            "the faulty email."), field="audience"))
    elif not audience.matches_incident:
        add(Finding(ERROR, "audience_mismatch", _(
            "The chosen audience is not this incident's affected audience: mailing people "
            "who were not affected would be a second mistake."), field="audience"))
    elif audience.affected_count == 0:
        add(Finding(ERROR, "audience_empty", _(
            "The affected audience is empty: nobody would receive this apology."),
            field="audience"))

    # Advice.
    subject = apology.subject.strip()
    if not subject:
        add(Finding(ERROR, "subject_missing", _(
            "The subject is empty: say plainly what this is, e.g. “We made a mistake”."),
            field="subject"))
    elif _normalise_subject(subject) in VAGUE_SUBJECTS or (
            len(_normalise_subject(subject)) < MIN_SUBJECT_LENGTH
            and not _names_the_problem(subject)):
        add(Finding(WARNING, "vague_subject", _(
            "Subject “%(subject)s” is vague: say plainly what happened, e.g. “We made a "
            "mistake”, “Notice of data breach” or “Correction”.") % {"subject": subject},
            field="subject"))

    subject_words = {default, "en"}
    for locale in bodies:
        if _says_sorry(bodies[locale], locale) or any(
                _says_sorry(subject, loc) for loc in subject_words | {locale}):
            continue
        add(Finding(WARNING, "no_apology_wording", _(
            "Neither the subject nor the %(language)s body says sorry: apologise plainly, "
            "whether the mistake was big or small.") % {"language": _language_name(locale)},
            field=body_field(locale), locale=locale))

    if breach:
        for field, locale, text in places:
            markers = _humour_in(text)
            if markers:
                where = (_("the %(language)s body") % {"language": _language_name(locale)}
                         if locale else _field_label(field))
                add(Finding(WARNING, "humour", _(
                    "%(markers)s in %(where)s makes light of a data breach: people whose "
                    "data was exposed need a serious, plain tone.") % {
                        "markers": ", ".join(f"“{m}”" for m in markers), "where": where},
                    field=field, locale=locale))

    if apology.brand_template_id is None:
        add(Finding(WARNING, "no_brand_template", _(
            "No brand template chosen: use the brand's usual look, so people recognise the "
            "email and do not report it as spam."), field="brand_template"))

    findings.sort(key=lambda f: f.level != ERROR)
    return findings


def _field_label(field: str) -> str:
    return str({
        "subject": _("subject"), "protective_steps": _("protective steps"),
        "compensation_text": _("compensation text"), "from_email": _("sender address"),
        "reply_to": _("reply-to address"),
    }.get(field, field))
