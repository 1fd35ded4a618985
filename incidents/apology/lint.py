"""The apology linter: the DO / DON'T rules of step 5 as checks with clear messages.

`apology_lint` is a pure function: it reads the apology (saved or not), the incident and
what the sending side knows about the audience, and returns findings. Errors block
sending; warnings are advice. It never touches the database, so the composer can run it
on every keystroke.
"""

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext as _

from incidents.apology.models import Apology
from incidents.models import Incident, Kind, Severity
from messaging.rendering import MERGE_TAG

if TYPE_CHECKING:  # a type only: the plan package imports the apology, not the reverse
    from incidents.plan.models import PlanVersion

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

HUMOUR_WORDS += ("ups", "hehe", "waduh", "אופס", "أوبس", "اوبس")
HUMOUR_SYMBOLS += ("هههه", "חחח")

# Tone and honesty rules, per language. Every text is checked against every language's
# list (people mix languages, and a subject is often in English over a translated body).
# Latin-script phrases match as whole words (a trailing * marks a stem: "stażyst*" finds
# stażysta and stażystka); Arabic and Hebrew ones anywhere, since prefixes attach to words.
# Pointing at a person or a partner instead of owning the mistake as the company.
BLAME_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("intern", "interns", "a junior", "junior employee", "junior member", "new hire",
           "trainee",
           "partner's fault", "partner’s fault", "vendor's fault", "agency's fault",
           "supplier's fault", "fault of our partner", "fault of our vendor",
           "fault of our agency", "fault of a colleague", "colleague's fault",
           "someone else's fault", "not our fault"),
    "nl": ("stagiair*", "junior medewerker", "nieuwe collega",
           "schuld van een", "schuld van onze", "schuld van de", "niet onze schuld"),
    "pl": ("stażyst*", "praktykant*", "młodszy pracownik", "młodszego pracownika",
           "z winy", "wina naszego partnera", "wina partnera", "nie nasza wina"),
    "id": ("anak magang", "karyawan magang", "karyawan junior", "staf junior",
           "kesalahan mitra", "kesalahan partner", "kesalahan pihak ketiga",
           "bukan kesalahan kami", "gara-gara"),
    "ar": ("المتدرب", "متدرب", "موظف مبتدئ", "موظف جديد", "خطأ شريك", "بسبب شريك",
           "ليس خطأنا"),
    "he": ("מתמחה", "מתלמד", "עובד זוטר", "עובדת זוטרה", "עובד חדש", "באשמת ", "אשמת ה",
           "לא באשמתנו"),
}
# Telling people the email does not matter.
DISMISSIVE_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("ignore this", "please ignore", "you can ignore", "disregard this",
           "no big deal", "not a big deal", "just kidding", "nothing to worry about"),
    "nl": ("negeer deze", "negeer dit", "negeer die", "geen big deal", "niets aan de hand",
           "geen punt", "grapje"),
    "pl": ("zignoruj*", "zignorować", "nic wielkiego", "nic się nie stało", "żartowaliśmy",
           "nie ma się czym przejmować"),
    "id": ("abaikan", "bukan masalah besar", "santai saja", "cuma bercanda",
           "tidak perlu khawatir"),
    "ar": ("تجاهل", "لا داعي للقلق", "مجرد مزحة", "ليس بالأمر الكبير"),
    "he": ("התעלמו", "להתעלם", "לא נורא", "סתם צחוק", "אין מה לדאוג"),
}
# Reassurance the facts do not allow when personal data was exposed.
NOTHING_LEAKED_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("nothing was leaked", "nothing leaked", "no data was leaked", "no data leaked",
           "nothing was exposed", "no data was exposed", "no personal data was",
           "your data is safe", "your data was not", "your information is safe",
           "your information was not"),
    "nl": ("niets is gelekt", "er is niets gelekt", "niets gelekt", "geen gegevens gelekt",
           "geen gegevens zijn gelekt", "je gegevens zijn veilig", "uw gegevens zijn veilig",
           "geen persoonsgegevens"),
    "pl": ("nic nie wyciekło", "żadne dane nie wyciekły", "dane nie wyciekły",
           "twoje dane są bezpieczne", "państwa dane są bezpieczne", "dane są bezpieczne"),
    "id": ("tidak ada data yang bocor", "tidak ada yang bocor", "data tidak bocor",
           "data anda aman", "data kamu aman"),
    "ar": ("لم يتم تسريب", "لم تتسرب", "لم يتسرب", "بياناتك آمنة", "بياناتكم آمنة"),
    "he": ("שום דבר לא דלף", "לא דלף", "לא דלפו", "המידע שלך בטוח", "הנתונים שלך בטוחים",
           "המידע שלכם בטוח"),
}
# "Nothing to do" when the plan says subscribers must act.
NO_ACTION_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("no action is needed", "no action needed", "no action is required",
           "you don't need to do anything", "you do not need to do anything",
           "nothing you need to do", "no need to do anything"),
    "nl": ("je hoeft niets te doen", "u hoeft niets te doen", "geen actie nodig",
           "geen actie vereist"),
    "pl": ("nie musisz nic robić", "nie muszą państwo nic robić", "nie trzeba nic robić",
           "nie jest wymagane żadne działanie"),
    "id": ("tidak perlu melakukan apa pun", "tidak perlu melakukan apa-apa",
           "tidak ada tindakan yang diperlukan"),
    "ar": ("لا تحتاج إلى فعل أي شيء", "لا داعي لاتخاذ أي إجراء", "لا يلزم اتخاذ أي إجراء"),
    "he": ("אין צורך לעשות דבר", "לא צריך לעשות כלום", "אין צורך בפעולה"),
}

# What the plan names and the email must repeat exactly: coupon codes (capitals and digits,
# e.g. SORRY15), amounts (15%, €10, 10 EUR, Rp 50.000) and dates (2026-12-01, 1.12.2026).
_COUPON = re.compile(r"(?<![\w-])(?=[A-Z0-9-]*[A-Z])(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,}(?![\w-])")
_CURRENCY = r"(?:€|\$|£|₪|zł|rp\.?|eur|usd|gbp|pln|idr|ils|nis|sar|aed)"
_NUMBER = r"\d{1,3}(?:[.,\s]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_AMOUNT = re.compile(
    rf"(?<![\w.,])(?:(?P<pct>{_NUMBER})\s?(?:%|٪|procent|persen|proc\.?)"
    rf"|(?P<cur1>{_CURRENCY})\s?(?P<n1>{_NUMBER})"
    rf"|(?P<n2>{_NUMBER})\s?(?P<cur2>{_CURRENCY}))(?![\w])", re.IGNORECASE)
_DATE = re.compile(r"(?<![\d.\-/])(?:(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})[./](\d{1,2})[./](\d{4}))"
                   r"(?![\d.\-/]*\d)")
_CURRENCY_NAMES = {"€": "EUR", "$": "USD", "£": "GBP", "₪": "ILS", "zł": "PLN", "rp": "IDR",
                   "rp.": "IDR", "nis": "ILS"}


def _number(text: str) -> str:
    digits = re.sub(r"[\s.,]", "", text)
    # "10,50" / "10.50": keep the cents apart from thousands ("50.000").
    cents = re.search(r"[.,](\d{1,2})$", text.strip())
    if cents:
        digits = re.sub(r"[\s.,]", "", text.strip()[: cents.start()])
        if cents.group(1).strip("0"):
            digits += "." + cents.group(1)
    return digits.lstrip("0") or "0"


def plan_facts(text: str) -> dict[str, set[str]]:
    """Coupon codes, amounts and dates named in a text, normalised for comparing."""
    amounts: set[str] = set()
    for m in _AMOUNT.finditer(text):
        if m.group("pct"):
            amounts.add(_number(m.group("pct")) + "%")
        else:
            cur = (m.group("cur1") or m.group("cur2")).casefold()
            amount = _number(m.group("n1") or m.group("n2"))
            amounts.add(f"{amount} {_CURRENCY_NAMES.get(cur, cur.upper())}")
    dates: set[str] = set()
    for m in _DATE.finditer(text):
        if m.group(1):
            y, mo, d = m.group(1), m.group(2), m.group(3)
        else:
            d, mo, y = m.group(4), m.group(5), m.group(6)
        dates.add(f"{int(y):04d}-{int(mo):02d}-{int(d):02d}")
    return {"coupon": set(_COUPON.findall(text)), "amount": amounts, "date": dates}


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
                 merge_fields: Collection[str] = KNOWN_MERGE_FIELDS,
                 plan: "PlanVersion | None" = None) -> list[Finding]:
    """Check an apology against the step-5 rules; errors first, then warnings.

    `plan` (the current plan version, or None) adds the plan ↔ email rules: coupon codes,
    amounts and dates must match, and the email must not promise what the plan does not.
    """
    findings: list[Finding] = []
    add = findings.append
    breach = _is_breach(incident)
    serious = breach or incident.severity in (Severity.SEV1, Severity.SEV2)
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

    for field, locale, text in places:
        where = _where(field, locale)
        markers = _humour_in(text)
        if markers:
            quoted = ", ".join(f"“{m}”" for m in markers)
            if breach:
                message = _("%(markers)s in %(where)s makes light of a data breach: people "
                            "whose data was exposed need a serious, plain tone.")
            elif serious:
                message = _("%(markers)s in %(where)s makes light of a serious incident: "
                            "keep the tone plain and serious.")
            else:
                message = _("%(markers)s in %(where)s reads as a joke: an apology is not "
                            "the place to be funny.")
            add(Finding(ERROR if serious else WARNING, "humour", message % {
                "markers": quoted, "where": where}, field=field, locale=locale))
        for code, phrases, applies, template in (
            ("blame", BLAME_PHRASES, True, _(
                "%(phrase)s in %(where)s blames someone: own the mistake as the company, "
                "without pointing at a person or a partner.")),
            ("dismissive", DISMISSIVE_PHRASES, True, _(
                "%(phrase)s in %(where)s belittles the mistake: never tell people the email "
                "does not matter.")),
            ("false_reassurance", NOTHING_LEAKED_PHRASES, breach, _(
                "%(phrase)s in %(where)s promises what the facts do not: personal data was "
                "exposed. Say plainly what was exposed.")),
            ("no_action_promise", NO_ACTION_PHRASES,
             bool(plan is not None and plan.subscriber_action_required), _(
                "%(phrase)s in %(where)s contradicts the plan: subscribers must act "
                "(%(actions)s).")),
        ):
            if not applies:
                continue
            found = _phrases_in(text, phrases)
            if found:
                add(Finding(ERROR, code, template % {
                    "phrase": ", ".join(f"“{p}”" for p in found), "where": where,
                    "actions": getattr(plan, "subscriber_actions", "").strip()},
                    field=field, locale=locale))

    if plan is not None:
        findings += _plan_mismatches(apology, plan, places)

    if apology.brand_template_id is None:
        add(Finding(WARNING, "no_brand_template", _(
            "No brand template chosen: use the brand's usual look, so people recognise the "
            "email and do not report it as spam."), field="brand_template"))

    findings.sort(key=lambda f: f.level != ERROR)
    return findings


def _where(field: str, locale: str) -> str:
    if locale:
        return _("the %(language)s body") % {"language": _language_name(locale)}
    return _("the %(field)s") % {"field": _field_label(field)}


def _phrases_in(text: str, phrases: dict[str, tuple[str, ...]]) -> list[str]:
    """The phrases of any language found in the text, in the text's own spelling."""
    lowered = text.casefold().replace("’", "'")
    found: list[tuple[int, str]] = []
    for locale, words in phrases.items():
        for phrase in words:
            stem = phrase.endswith("*")
            needle = phrase.rstrip("*").casefold().replace("’", "'")
            if locale in _UNBOUNDED_SCRIPTS:
                at = lowered.find(needle)
            else:
                m = re.search(r"(?<!\w)" + re.escape(needle) + ("" if stem else r"(?!\w)"),
                              lowered)
                at = m.start() if m else -1
                if m and stem:  # name the whole word found, not the stem
                    rest = re.match(r"\w*", lowered[m.end():])
                    needle = lowered[at:m.end() + rest.end()]
            if at >= 0:
                found.append((at, text[at:at + len(needle)].strip()))
    out: list[str] = []
    for _pos, phrase in sorted(found):
        if not any(phrase.casefold() in o.casefold() or o.casefold() in phrase.casefold()
                   for o in out):
            out.append(phrase)
    return out


PLAN_TEXT_FIELDS = ("subscriber_message", "subscriber_actions", "compensation_value",
                    "compensation_eligibility")


def _plan_mismatches(apology: Apology, plan, places: list[tuple[str, str, str]]
                     ) -> list[Finding]:
    """Coupon codes, amounts and dates must be the plan's; the email may not add a coupon
    or an amount the plan does not name."""
    plan_text = "\n".join(str(getattr(plan, name, "") or "") for name in PLAN_TEXT_FIELDS)
    named = plan_facts(plan_text)
    out: list[Finding] = []
    labels = {"coupon": _("coupon code"), "amount": _("amount"), "date": _("date")}
    texts = list(places) + [("coupon_code", "", apology.coupon_code)]
    for field, locale, text in texts:
        said = plan_facts(text)
        where = _where(field, locale)
        for kind in ("coupon", "amount", "date"):
            extra = sorted(said[kind] - named[kind])
            if not extra or (kind == "date" and not named[kind]):
                continue
            if named[kind]:
                message = _("The %(what)s %(said)s in %(where)s differs from the plan, which "
                            "says %(planned)s. Make them match before anyone signs.")
            else:
                message = _("The %(what)s %(said)s in %(where)s is not in the plan: the email "
                            "may not promise what the plan does not.")
            out.append(Finding(ERROR, "plan_mismatch", message % {
                "what": labels[kind], "said": ", ".join(extra), "where": where,
                "planned": ", ".join(sorted(named[kind]))}, field=field, locale=locale))
    email = plan_facts("\n".join(text for _f, _l, text in texts))
    missing = sorted(named["coupon"] - email["coupon"])
    if missing:
        out.append(Finding(ERROR, "plan_mismatch", _(
            "The plan promises the coupon code %(codes)s, but the email does not give it.")
            % {"codes": ", ".join(missing)}, field="coupon_code"))
    return out


def _field_label(field: str) -> str:
    return str({
        "subject": _("subject"), "protective_steps": _("protective steps"),
        "compensation_text": _("compensation text"), "from_email": _("sender address"),
        "reply_to": _("reply-to address"), "coupon_code": _("coupon code"),
    }.get(field, field))
