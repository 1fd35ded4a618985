"""Issue 9's linter rules: blame, belittling, promises the plan does not make, and the plan
↔ email consistency of coupons, amounts and dates. A real sentence per language per rule.
Pure, so no database."""

import pytest

from incidents.apology.lint import ERROR, PROTECTIVE_STEPS_DEFAULT, WARNING, plan_facts
from incidents.models import Kind, Severity
from incidents.plan.models import PlanVersion
from tests.incidents.test_apology_lint import apology, codes, incident, lint, only

LANGUAGES = {"en": "English", "nl": "Dutch", "pl": "Polish", "id": "Indonesian",
             "ar": "Arabic", "he": "Hebrew"}


def with_body(locale: str, text: str, **overrides):
    bodies = {"en": "We are sorry: yesterday's email went to the wrong people."}
    bodies[locale] = text
    return apology(bodies=bodies, **overrides)


def plan(**fields) -> PlanVersion:
    values = {"internal_steps": "Rotate keys", "subscriber_message": "We made a mistake.",
              "subscriber_action_required": False, "subscriber_actions": "",
              "compensation_kind": "none", "compensation_value": "",
              "compensation_eligibility": "", "process_changes": "", "follow_ups": []}
    values.update(fields)
    return PlanVersion(number=1, **values)


# --- Blaming someone -----------------------------------------------------------------------

@pytest.mark.parametrize("locale,sentence,phrase", [
    ("en", "This happened because an intern pressed the wrong button.", "intern"),
    ("nl", "Dit kwam doordat een stagiair op de verkeerde knop drukte.", "stagiair"),
    ("pl", "Stało się to z winy naszego partnera technologicznego.", "z winy"),
    ("id", "Ini terjadi karena kesalahan mitra pengiriman email kami.", "kesalahan mitra"),
    ("ar", "حدث هذا بسبب خطأ ارتكبه متدرب في فريقنا.", "متدرب"),
    ("he", "זה קרה באשמת ספק הדיוור שלנו.", "באשמת"),
])
def test_blaming_someone_is_an_error_in_every_language(locale, sentence, phrase):
    finding = only(lint(with_body(locale, sentence)), "blame")
    assert finding.level == ERROR and finding.field == f"body_{locale}"
    assert finding.message == (f"“{phrase}” in the {LANGUAGES[locale]} body blames someone: "
                               "own the mistake as the company, without pointing at a person "
                               "or a partner.")


@pytest.mark.parametrize("text", [
    "Our internal checks failed; that is our fault and we are sorry.",
    "It was our mistake, not a partner's, and we are sorry.",
])
def test_owning_the_mistake_is_not_blame(text):
    assert "blame" not in codes(lint(with_body("en", text)))


def test_the_issue_s_sentence_is_both_blame_and_humour_in_a_breach():
    a = with_body("en", "Sorry, it was the intern's fault lol",
                  subject="Notice of data breach", protective_steps=PROTECTIVE_STEPS_DEFAULT)
    findings = lint(a, incident(Kind.DATA_BREACH))
    assert only(findings, "blame").message.startswith("“intern”")
    assert only(findings, "humour").level == ERROR


# --- Belittling ------------------------------------------------------------------------------

@pytest.mark.parametrize("locale,sentence,phrase", [
    ("en", "It was only a test, so you can ignore this email.", "ignore this"),
    ("nl", "Het was een test, negeer deze e-mail gerust.", "negeer deze"),
    ("pl", "To był tylko test, prosimy zignorować tę wiadomość.", "zignorować"),
    ("id", "Itu hanya uji coba, silakan abaikan email ini.", "abaikan"),
    ("ar", "كانت مجرد تجربة، يرجى تجاهل هذه الرسالة.", "تجاهل"),
    ("he", "זו הייתה רק בדיקה, אפשר להתעלם מההודעה.", "להתעלם"),
])
def test_telling_people_to_ignore_it_is_an_error_in_every_language(locale, sentence, phrase):
    finding = only(lint(with_body(locale, sentence)), "dismissive")
    assert finding.level == ERROR
    assert finding.message.startswith(f"“{phrase}”") or f"“{phrase}”" in finding.message
    assert "belittles the mistake" in finding.message


@pytest.mark.parametrize("locale,sentence", [
    ("en", "Oops, we sent the wrong email lol."),
    ("nl", "Oeps, dat was de verkeerde mail!"),
    ("pl", "Ups! Wysłaliśmy złą wiadomość."),
    ("id", "Waduh, kami salah kirim email wkwk."),
    ("ar", "أوبس، أرسلنا الرسالة الخطأ."),
    ("he", "אופס, שלחנו את המייל הלא נכון."),
])
@pytest.mark.parametrize("severity", [Severity.SEV1, Severity.SEV2])
def test_jokes_in_a_sev1_or_sev2_incident_are_errors(locale, sentence, severity):
    finding = only(lint(with_body(locale, sentence), _incident(severity)), "humour")
    assert finding.level == ERROR and finding.field == f"body_{locale}"
    assert "makes light of a serious incident" in finding.message


def _incident(severity):
    i = incident()
    i.severity = severity
    return i


def test_emoji_in_a_sev2_subject_is_an_error():
    finding = only(lint(apology(subject="We made a mistake 🙈"), _incident(Severity.SEV2)),
                   "humour")
    assert finding.level == ERROR and finding.field == "subject"


def test_a_joke_in_a_minor_incident_is_only_a_warning():
    finding = only(lint(with_body("en", "Oops, sorry! 😅"), _incident(Severity.SEV3)),
                   "humour")
    assert finding.level == WARNING and "reads as a joke" in finding.message


# --- Promising what the plan does not ------------------------------------------------------

@pytest.mark.parametrize("locale,sentence", [
    ("en", "Rest assured, nothing was leaked."),
    ("nl", "Wees gerust: er is niets gelekt."),
    ("pl", "Zapewniamy, że żadne dane nie wyciekły."),
    ("id", "Tenang, tidak ada data yang bocor."),
    ("ar", "نؤكد لكم أنه لم يتم تسريب أي بيانات."),
    ("he", "אנחנו מבטיחים ששום דבר לא דלף."),
])
def test_nothing_was_leaked_is_an_error_when_personal_data_was_exposed(locale, sentence):
    a = with_body(locale, sentence, subject="Notice of data breach",
                  protective_steps=PROTECTIVE_STEPS_DEFAULT)
    finding = only(lint(a, incident(Kind.DATA_BREACH)), "false_reassurance")
    assert finding.level == ERROR and finding.field == f"body_{locale}"
    assert "personal data was exposed" in finding.message


def test_nothing_was_leaked_is_fine_when_no_personal_data_was_exposed():
    assert "false_reassurance" not in codes(lint(with_body(
        "en", "We are sorry. Nothing was leaked: only the sale date was wrong.")))


@pytest.mark.parametrize("locale,sentence", [
    ("en", "We are sorry. You don't need to do anything."),
    ("nl", "Het spijt ons. U hoeft niets te doen."),
    ("pl", "Przepraszamy. Nie musisz nic robić."),
    ("id", "Maaf. Anda tidak perlu melakukan apa pun."),
    ("ar", "نعتذر. لا تحتاج إلى فعل أي شيء."),
    ("he", "סליחה. אין צורך לעשות דבר."),
])
def test_no_action_needed_contradicts_a_plan_that_asks_people_to_act(locale, sentence):
    must_act = plan(subscriber_action_required=True,
                    subscriber_actions="Reset your password.")
    finding = only(apology_lint_with_plan(with_body(locale, sentence), must_act),
                   "no_action_promise")
    assert finding.level == ERROR
    assert finding.message.endswith("contradicts the plan: subscribers must act (Reset your "
                                    "password.).")
    assert "no_action_promise" not in codes(apology_lint_with_plan(
        with_body(locale, sentence), plan()))


# --- Plan ↔ email: coupons, amounts, dates -------------------------------------------------

def apology_lint_with_plan(a, p, i=None):
    from incidents.apology.lint import apology_lint
    from tests.incidents.test_apology_lint import AUDIENCE_OK

    return apology_lint(apology=a, incident=i or incident(), audience=AUDIENCE_OK, plan=p)


def test_plan_facts_are_normalised():
    facts = plan_facts("Use SORRY15 for 15 % off, or €10 (10,00 EUR) until 31.12.2026; "
                       "Rp 50.000 in Indonesia.")
    assert facts == {"coupon": {"SORRY15"}, "amount": {"15%", "10 EUR", "50000 IDR"},
                     "date": {"2026-12-31"}}


def test_the_issue_s_coupon_mismatch_is_an_error():
    p = plan(compensation_kind="coupon", compensation_value="15% off with code SORRY15",
             compensation_eligibility="Everyone affected")
    a = apology(coupon_code="SORRY10", compensation_text="10% off your next order")
    messages = [f.message for f in apology_lint_with_plan(a, p) if f.code == "plan_mismatch"]
    assert ("The amount 10% in the compensation text differs from the plan, which says 15%. "
            "Make them match before anyone signs.") in messages
    assert ("The coupon code SORRY10 in the coupon code differs from the plan, which says "
            "SORRY15. Make them match before anyone signs.") in messages
    assert ("The plan promises the coupon code SORRY15, but the email does not give it."
            in messages)


def test_matching_coupon_amount_and_date_pass():
    p = plan(compensation_kind="coupon",
             compensation_value="15% off with SORRY15, valid until 2026-12-31",
             compensation_eligibility="Everyone affected")
    a = apology(coupon_code="SORRY15", compensation_text="15 % off, until 31.12.2026",
                bodies={"en": "We are sorry. Your code {{ coupon_code }} gives 15% off."})
    assert "plan_mismatch" not in codes(apology_lint_with_plan(a, p))


def test_a_different_date_in_a_translation_is_named():
    p = plan(compensation_kind="discount", compensation_value="15% off until 2026-12-31",
             compensation_eligibility="Everyone affected")
    a = apology(compensation_text="15% off", bodies={
        "en": "We are sorry. 15% off until 31.12.2026.",
        "nl": "Het spijt ons. 15% korting tot 30.12.2026."})
    finding = only(apology_lint_with_plan(a, p), "plan_mismatch")
    assert finding.field == "body_nl" and "2026-12-30" in finding.message


def test_an_email_coupon_the_plan_never_mentions_is_a_promise_the_plan_does_not_make():
    a = apology(coupon_code="FREE50", compensation_text="50% off")
    messages = [f.message for f in apology_lint_with_plan(a, plan())
                if f.code == "plan_mismatch"]
    assert any(m.startswith("The coupon code FREE50 in the coupon code is not in the plan")
               for m in messages)
