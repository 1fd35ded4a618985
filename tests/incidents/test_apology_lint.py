"""The apology linter: every rule, firing and staying quiet. Pure, so no database."""

import pytest
from django.utils import translation

from incidents.apology.lint import (
    ERROR,
    PROTECTIVE_STEPS_DEFAULT,
    WARNING,
    AudienceCheck,
    Finding,
    apology_lint,
    find_unresolved_merge_tags,
    lint_blocks_sending,
)
from incidents.apology.models import Apology
from incidents.models import Incident, Kind

AUDIENCE_OK = AudienceCheck(computed=True, affected_count=1200, matches_incident=True)


def incident(kind: str = Kind.WRONG_SEGMENT, **kwargs) -> Incident:
    return Incident(pk=7, title="Test", kind=kind, severity=2, **kwargs)


def apology(**overrides) -> Apology:
    values = {
        "subject": "We made a mistake with yesterday's email",
        "from_name": "Northwind Goods", "from_email": "care@northwind.test",
        "reply_to": "care@northwind.test", "brand_template_id": 1,
        "default_locale": "en",
        "bodies": {"en": "Dear {{ first_name }},\n\nWe are sorry: yesterday's email went "
                         "to the wrong people."},
        "coupon_code": "", "compensation_text": "", "protective_steps": "",
    }
    values.update(overrides)
    return Apology(**values)


def lint(a: Apology | None = None, i: Incident | None = None,
         audience: AudienceCheck | None = AUDIENCE_OK) -> list[Finding]:
    return apology_lint(apology=a or apology(), incident=i or incident(), audience=audience)


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def only(findings: list[Finding], code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, findings
    return matching[0]


# --- A good apology -------------------------------------------------------------------

def test_a_good_apology_has_no_findings():
    assert lint() == []


def test_a_good_breach_apology_has_no_findings():
    breach = incident(Kind.DATA_BREACH, pii_exposed=True)
    good = apology(subject="Notice of data breach", protective_steps=PROTECTIVE_STEPS_DEFAULT,
                   bodies={"en": "We are sorry: a file with your name and email was exposed."})
    assert lint(good, breach) == []


def test_errors_block_and_warnings_do_not():
    warning = Finding(WARNING, "vague_subject", "…")
    error = Finding(ERROR, "noreply", "…")
    assert not lint_blocks_sending([])
    assert not lint_blocks_sending([warning])
    assert lint_blocks_sending([warning, error])


def test_errors_come_before_warnings():
    findings = lint(apology(subject="Hello", reply_to="noreply@northwind.test"))
    assert [f.level for f in findings] == [ERROR, WARNING]


# --- No-reply senders -----------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "noreply@brand.com", "no-reply@brand.com", "no_reply@brand.com", "NoReply@brand.com",
    "donotreply@brand.com", "do-not-reply@brand.com", "do_not_reply@brand.com",
    "dont-reply@brand.com", "news.noreply@brand.com", "no.reply@mail.brand.com",
    "niet-antwoorden@brand.nl", "nie-odpowiadaj@brand.pl", "jangan-balas@brand.id",
])
def test_noreply_reply_to_is_an_error(address):
    finding = only(lint(apology(reply_to=address)), "noreply")
    assert finding.level == ERROR and finding.field == "reply_to"
    assert finding.message.startswith(f"Reply-to {address} is a no-reply address: people "
                                      "will answer this email and their replies matter.")


def test_noreply_sender_is_an_error_even_with_a_good_reply_to():
    finding = only(lint(apology(from_email="no-reply@brand.com")), "noreply")
    assert finding.field == "from_email" and "Sender no-reply@brand.com" in finding.message


def test_noreply_sender_without_reply_to_says_replies_matter():
    finding = only(lint(apology(from_email="noreply@brand.com", reply_to="")), "noreply")
    assert "their replies matter" in finding.message


@pytest.mark.parametrize("address", [
    "care@brand.com", "nora.reply@brand.com", "replies@brand.com", "noah@brand.com",
    "support@noreply-brand.com",  # the domain is not the mailbox
])
def test_ordinary_addresses_pass(address):
    assert "noreply" not in codes(lint(apology(from_email=address, reply_to=address)))


def test_noreply_sender_name_is_an_error():
    finding = only(lint(apology(from_name="Do Not Reply")), "noreply_name")
    assert finding.field == "from_name" and finding.level == ERROR


def test_missing_sender_is_an_error():
    assert only(lint(apology(from_email="")), "sender_missing").field == "from_email"


# --- Apology wording, per locale ------------------------------------------------------

def test_body_and_subject_without_sorry_warn():
    findings = lint(apology(subject="About yesterday's VIP email",
                           bodies={"en": "Yesterday's email went to the wrong people."}))
    finding = only(findings, "no_apology_wording")
    assert finding.level == WARNING and finding.field == "body_en"
    assert "English body says sorry" in finding.message


def test_sorry_in_the_subject_is_enough():
    findings = lint(apology(subject="We apologise for yesterday's email",
                           bodies={"en": "Yesterday's email went to the wrong people."}))
    assert "no_apology_wording" not in codes(findings)


@pytest.mark.parametrize("locale,body", [
    ("en", "We apologize for the confusion."),
    ("en", "That was our mistake."),
    ("nl", "Het spijt ons: de e-mail van gisteren ging naar de verkeerde mensen."),
    ("nl", "Onze excuses voor de verwarring."),
    ("pl", "Przepraszamy za wczorajszą wiadomość."),
    ("pl", "To był nasz błąd."),
    ("id", "Kami mohon maaf atas email kemarin."),
    ("ar", "نعتذر عن الرسالة التي أرسلناها أمس."),
    ("ar", "لقد ارتكبنا خطأ في رسالة الأمس."),
    ("he", "אנחנו מתנצלים על ההודעה של אתמול."),
    ("he", "סליחה על הבלבול."),
])
def test_apology_wording_is_recognised_per_language(locale, body):
    a = apology(subject="About yesterday's VIP email",
                bodies={"en": "We are sorry.", locale: body})
    assert "no_apology_wording" not in codes(lint(a))


@pytest.mark.parametrize("locale,body,language", [
    ("nl", "De e-mail van gisteren ging naar de verkeerde mensen.", "Dutch"),
    ("pl", "Wczorajsza wiadomość trafiła do niewłaściwych osób.", "Polish"),
    ("ar", "وصلت رسالة الأمس إلى أشخاص غير مقصودين.", "Arabic"),
    ("he", "ההודעה של אתמול נשלחה לאנשים הלא נכונים.", "Hebrew"),
    ("id", "Email kemarin terkirim ke orang yang tidak tepat.", "Indonesian"),
])
def test_a_translation_without_sorry_warns_for_that_language(locale, body, language):
    a = apology(subject="About yesterday's VIP email",
                bodies={"en": "We are sorry.", locale: body})
    finding = only(lint(a), "no_apology_wording")
    assert finding.locale == locale and finding.field == f"body_{locale}"
    assert f"{language} body" in finding.message


def test_findings_follow_the_interface_language():
    with translation.override("nl"):
        finding = only(lint(apology(reply_to="noreply@brand.com")), "noreply")
    assert isinstance(finding.message, str) and "noreply@brand.com" in finding.message


# --- Vague subjects -------------------------------------------------------------------

@pytest.mark.parametrize("subject", ["Update", "Important!", "News", "Hello", "hi there",
                                     "Re: sale",
                                     "An update", "IMPORTANT UPDATE", "Belangrijk", "FYI"])
def test_vague_subject_warns(subject):
    finding = only(lint(apology(subject=subject)), "vague_subject")
    assert finding.level == WARNING and finding.field == "subject"
    assert subject in finding.message


@pytest.mark.parametrize("subject", ["We made a mistake", "Notice of data breach",
                                     "Correction: the sale starts tomorrow", "Correction",
                                     "We're sorry", "Przepraszamy", "Onze excuses"])
def test_clear_subject_passes(subject):
    assert "vague_subject" not in codes(lint(apology(subject=subject)))


def test_empty_subject_is_an_error():
    assert only(lint(apology(subject="  ")), "subject_missing").level == ERROR


# --- Humour in a breach ---------------------------------------------------------------

@pytest.mark.parametrize("text", ["Oops, that was us!", "Whoooops.", "lol, sorry", "hahaha",
                                  "our bad, sorry", "Sorry 😅", "Sorry 🙈", "Sorry 😂",
                                  "Sorry ;)"])
def test_humour_in_a_breach_apology_is_an_error(text):
    # Issue 9: jokes and emoji in any breach (or SEV1/SEV2) block sending.
    breach = incident(Kind.DATA_BREACH)
    a = apology(subject="Notice of data breach", protective_steps=PROTECTIVE_STEPS_DEFAULT,
                bodies={"en": f"We are sorry. {text}"})
    finding = only(lint(a, breach), "humour")
    assert finding.level == ERROR and finding.field == "body_en"
    assert "makes light of a data breach" in finding.message


@pytest.mark.parametrize("locale,text,language", [
    ("nl", "Oeps! Het spijt ons.", "Dutch"), ("id", "Maaf ya wkwk", "Indonesian"),
    ("he", "סליחה 🙈", "Hebrew"), ("pl", "Przepraszamy, hahaha.", "Polish"),
])
def test_humour_is_found_in_translations_too(locale, text, language):
    breach = incident(Kind.DATA_BREACH)
    a = apology(subject="Notice of data breach", protective_steps=PROTECTIVE_STEPS_DEFAULT,
                bodies={"en": "We are sorry.", locale: text})
    finding = only(lint(a, breach), "humour")
    assert finding.field == f"body_{locale}" and f"the {language} body" in finding.message


def test_every_humour_marker_is_named_once():
    breach = incident(Kind.DATA_BREACH)
    a = apology(subject="Notice of data breach", protective_steps=PROTECTIVE_STEPS_DEFAULT,
                bodies={"en": "Oops 😅 we are sorry, oops. Haha."})
    assert only(lint(a, breach), "humour").message.startswith("“oops”, “😅”, “haha” in the "
                                                                "English body makes light")


def test_humour_in_a_breach_subject_names_the_subject():
    breach = incident(Kind.DATA_BREACH)
    a = apology(subject="Oops: notice of data breach",
                protective_steps=PROTECTIVE_STEPS_DEFAULT)
    assert only(lint(a, breach), "humour").field == "subject"


def test_humour_outside_a_breach_and_sev1_sev2_is_only_a_warning():
    minor = incident()
    minor.severity = 3
    finding = only(lint(apology(bodies={"en": "Oops, sorry! 😅"}), minor), "humour")
    assert finding.level == WARNING


@pytest.mark.parametrize("text", ["We are sorry. Follow the steps below.",
                                  "Note:please reset your password. Sorry.",
                                  "Sorry; our lollipop sale is unaffected."])
def test_serious_breach_text_has_no_humour_finding(text):
    breach = incident(Kind.DATA_BREACH)
    a = apology(subject="Notice of data breach", protective_steps=PROTECTIVE_STEPS_DEFAULT,
                bodies={"en": text})
    assert "humour" not in codes(lint(a, breach))


# --- Protective steps ------------------------------------------------------------------

def test_breach_without_protective_steps_is_an_error():
    finding = only(lint(apology(protective_steps=" "), incident(Kind.DATA_BREACH)),
                   "protective_steps_missing")
    assert finding.level == ERROR and finding.field == "protective_steps"


def test_exposed_personal_data_needs_protective_steps_whatever_the_kind():
    i = incident(Kind.WRONG_SEGMENT, pii_exposed=True)
    assert "protective_steps_missing" in codes(lint(apology(), i))


def test_ordinary_mistake_needs_no_protective_steps():
    assert "protective_steps_missing" not in codes(lint(apology()))


# --- Merge tags -----------------------------------------------------------------------

@pytest.mark.parametrize("tag", ["<FirstName>", "*|FNAME|*", "{{ first_nam }}",
                                 "{{first_name_x}}", "%FIRSTNAME%", "[FirstName]",
                                 "{{ person.first_name }}", "${firstName}", "[first_name]",
                                 "{% if vip %}"])
def test_unresolved_merge_tag_is_an_error_naming_tag_and_locale(tag):
    a = apology(bodies={"en": "We are sorry.", "nl": f"Beste {tag}, het spijt ons."})
    finding = only(lint(a), "merge_tag")
    assert finding.level == ERROR and finding.field == "body_nl" and finding.locale == "nl"
    assert tag in finding.message and "Dutch body" in finding.message


def test_unresolved_tag_in_the_subject():
    finding = only(lint(apology(subject="Hi *|FNAME|*, we made a mistake")), "merge_tag")
    assert finding.field == "subject" and "subject" in finding.message


@pytest.mark.parametrize("text", ["Dear {{ first_name }} {{last_name}}, sorry.",
                                  "Sent to {{ email }}. Sorry.",
                                  "Sorry. See [our FAQ](https://brand.test/faq) <b>now</b>.",
                                  "Sorry. Use code SAVE20 for 20% off, 30% on shoes.",
                                  "Sorry [sic], write to <care@brand.test>."])
def test_known_tags_and_ordinary_text_are_not_merge_tags(text):
    assert "merge_tag" not in codes(lint(apology(bodies={"en": text})))


def test_coupon_tag_needs_a_coupon_code():
    body = {"en": "Sorry. Your code: {{ coupon_code }}"}
    finding = only(lint(apology(bodies=body)), "merge_tag")
    assert "Enter a coupon code" in finding.message
    with_code = apology(bodies=body, coupon_code="SORRY20", compensation_text="20% off")
    assert "merge_tag" not in codes(lint(with_code))


def test_merge_fields_are_an_argument():
    a = apology(bodies={"en": "Sorry, {{ city }} team."})
    assert "merge_tag" in codes(lint(a))
    assert apology_lint(apology=a, incident=incident(), audience=AUDIENCE_OK,
                        merge_fields={"first_name", "city"}) == []


def test_find_unresolved_merge_tags_lists_each_once_in_order():
    text = "Hi <FirstName>, *|FNAME|* and <FirstName> again, {{ x }}"
    assert find_unresolved_merge_tags(text, {"first_name"}) == [
        "<FirstName>", "*|FNAME|*", "{{ x }}"]


# --- Audience -------------------------------------------------------------------------

def test_audience_not_computed_is_an_error():
    for audience in (None, AudienceCheck(computed=False, affected_count=0,
                                         matches_incident=False)):
        finding = only(lint(audience=audience), "audience_not_computed")
        assert finding.level == ERROR and "Compute the affected audience first" in \
            finding.message


def test_audience_that_is_not_the_affected_one_is_an_error():
    audience = AudienceCheck(computed=True, affected_count=5000, matches_incident=False)
    finding = only(lint(audience=audience), "audience_mismatch")
    assert "second mistake" in finding.message


def test_empty_affected_audience_is_an_error():
    audience = AudienceCheck(computed=True, affected_count=0, matches_incident=True)
    assert "audience_empty" in codes(lint(audience=audience))


# --- Kinds and bodies -----------------------------------------------------------------

def test_suppression_list_send_gets_no_apology():
    finding = only(lint(i=incident(Kind.SUPPRESSION_SEND)), "suppression_send")
    assert finding.level == ERROR and "Do not send an apology at all" in finding.message


def test_other_kinds_are_no_suppression_send():
    for kind in (Kind.DUPLICATE_SEND, Kind.WRONG_OFFER, Kind.DATA_BREACH):
        assert "suppression_send" not in codes(lint(i=incident(kind)))


def test_missing_default_locale_body_is_an_error():
    a = apology(default_locale="nl", bodies={"en": "We are sorry."})
    finding = only(lint(a), "body_missing")
    assert finding.field == "body_nl" and "Dutch body is empty" in finding.message


def test_blank_default_body_counts_as_missing():
    assert "body_missing" in codes(lint(apology(bodies={"en": "   "})))


def test_no_brand_template_is_a_warning():
    finding = only(lint(apology(brand_template_id=None)), "no_brand_template")
    assert finding.level == WARNING
