import pytest
from django.core.exceptions import ValidationError

from incidents import services
from incidents.apology.lint import PROTECTIVE_STEPS_DEFAULT
from incidents.apology.models import Apology
from incidents.apology.selectors import (
    apology_draft,
    apology_render,
    apology_summary,
    sample_merge_data,
)
from incidents.apology.services import apology_save
from incidents.models import EventKind, Kind, StepStatus
from messaging.services import brand_template_ensure_demo
from tests.factories import declare

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(marketer):
    return declare(marketer)


def content(**overrides) -> dict:
    values = {"subject": "We made a mistake", "from_name": "Northwind",
              "from_email": "care@northwind.test", "reply_to": "", "brand_template": None,
              "default_locale": "en", "bodies": {"en": "Dear {{ first_name }}, sorry."}}
    values.update(overrides)
    return values


def apology_events(incident):
    return [e for e in incident.events.all() if e.data.get("apology")]


def test_first_save_creates_version_one_with_a_timeline_event(incident, marketer):
    apology = apology_save(incident=incident, actor=marketer, expected_version=0, **content())
    assert apology.version == 1 and apology.updated_by == marketer
    [event] = apology_events(incident)
    assert event.kind == EventKind.UPDATED and event.actor == marketer
    assert event.message == "Maya started the apology email (version 1)."


def test_edit_bumps_version_and_names_what_changed(incident, marketer):
    apology_save(incident=incident, actor=marketer, **content())
    apology = apology_save(incident=incident, actor=marketer, expected_version=1, **content(
        subject="Correction: the sale starts tomorrow",
        bodies={"en": "Dear {{ first_name }}, sorry.", "nl": "Sorry!"}))
    assert apology.version == 2
    event = apology_events(incident)[0]
    assert event.message == ("Maya edited the apology email (version 2): subject, "
                             "body (Dutch).")
    assert event.data["fields"] == ["subject", "bodies"]


def test_saving_unchanged_content_writes_nothing(incident, marketer):
    apology_save(incident=incident, actor=marketer, **content())
    again = apology_save(incident=incident, actor=marketer, **content(subject=" We made  a "
                                                                               "mistake "))
    assert again.version == 1 and len(apology_events(incident)) == 1


def test_stale_version_is_refused(incident, marketer, lawyer):
    apology_save(incident=incident, actor=lawyer, **content())
    with pytest.raises(ValidationError, match="Leo changed the apology while you were "
                                              "editing"):
        apology_save(incident=incident, actor=marketer, expected_version=0,
                     **content(subject="Other"))
    assert Apology.objects.get().subject == "We made a mistake"


@pytest.mark.parametrize("overrides,field", [
    ({"from_email": "not-an-address"}, "from_email"),
    ({"reply_to": "x@"}, "reply_to"),
    ({"default_locale": "xx"}, "default_locale"),
    ({"bodies": {"xx": "Hi"}}, "bodies"),
    ({"coupon_code": "SORRY20"}, "compensation_text"),
])
def test_bad_input_is_refused_and_nothing_is_written(incident, marketer, overrides, field):
    with pytest.raises(ValidationError) as exc:
        apology_save(incident=incident, actor=marketer, **content(**overrides))
    assert field in exc.value.message_dict
    assert not Apology.objects.exists() and not apology_events(incident)


def test_closed_incident_apology_cannot_change(incident, marketer):
    for step in incident.steps.all():
        services.step_set_status(step=step, actor=marketer, status=StepStatus.DONE,
                                 note="Handled by hand")
    services.incident_close(incident=incident, actor=marketer,
                            postmortem_skip_reason="A test incident.")
    with pytest.raises(ValidationError, match="closed"):
        apology_save(incident=incident, actor=marketer, **content())


def test_empty_bodies_are_dropped(incident, marketer):
    apology = apology_save(incident=incident, actor=marketer,
                           **content(bodies={"en": "Sorry\r\nreally", "nl": "   "}))
    assert apology.bodies == {"en": "Sorry\nreally"}


def test_breach_draft_offers_protective_steps_and_a_clear_subject(security_officer):
    brand = brand_template_ensure_demo()
    breach = declare(security_officer, kind=Kind.DATA_BREACH, severity=1)
    draft = apology_draft(incident=breach)
    assert draft.pk is None and draft.version == 0
    assert draft.protective_steps == PROTECTIVE_STEPS_DEFAULT
    assert "two-factor authentication" in draft.protective_steps
    assert draft.subject == "Notice of data breach" and draft.brand_template == brand


def test_ordinary_draft_has_no_protective_steps(incident):
    draft = apology_draft(incident=incident)
    assert draft.protective_steps == "" and draft.subject == "We made a mistake"


def test_render_adds_compensation_and_steps_in_the_recipient_locale(incident, marketer):
    brand = brand_template_ensure_demo()
    apology = apology_save(incident=incident, actor=marketer, **content(
        brand_template=brand, coupon_code="SORRY20", compensation_text="20% off",
        protective_steps="- Change your password",
        bodies={"en": "Dear {{ first_name }}, sorry.", "pl": "Drogi {{ first_name }}, "
                                                             "przepraszamy."}))
    email = apology_render(apology=apology, locale="pl",
                           merge_data=sample_merge_data(incident, "pl"))
    assert "Drogi Anna, przepraszamy." in email.html and 'lang="pl"' in email.html
    assert "<strong>SORRY20</strong>" in email.html and "20% off" in email.html
    assert "Change your password" in email.text and "Northwind Goods" in email.text
    # No Dutch body: Dutch recipients get the default language.
    dutch = apology_render(apology=apology, locale="nl", merge_data={"first_name": "Sanne"})
    assert "Dear Sanne, sorry." in dutch.text and 'lang="en"' in dutch.html


def test_summary_counts_findings_without_rendering(incident, marketer,
                                                   django_assert_num_queries):
    assert apology_summary(incident=incident).apology is None
    apology_save(incident=incident, actor=marketer, **content(reply_to="noreply@x.test"))
    # The apology, the affected audience's state, and the plan (the plan ↔ email rules).
    with django_assert_num_queries(3):
        summary = apology_summary(incident=incident)
    # no-reply, audience not computed; no brand template is a warning.
    assert summary.errors == 2 and summary.warnings == 1 and summary.blocks_sending


def test_demo_seed_adds_one_default_brand_and_stays_idempotent():
    from incidents.demo import demo_seed
    from messaging.models import BrandTemplate

    demo_seed()
    demo_seed()
    assert BrandTemplate.objects.filter(is_default=True).count() == 1
    assert BrandTemplate.objects.count() == 1


def test_an_arabic_or_hebrew_apology_is_written_right_to_left(incident, marketer):
    apology = apology_save(incident=incident, actor=marketer, **content(
        default_locale="ar", coupon_code="SAVE-20", compensation_text="20%",
        bodies={"ar": "عزيزي {{ first_name }}، نعتذر.", "he": "{{ first_name }} היקר, סליחה.",
                "en": "Dear {{ first_name }}, sorry."}))
    hebrew = apology_render(apology=apology, locale="he", merge_data={"first_name": "Noa"})
    assert '<html lang="he" dir="rtl">' in hebrew.html and "סליחה" in hebrew.html
    # No Dutch body: Dutch readers get the default language, Arabic, and its direction.
    dutch = apology_render(apology=apology, locale="nl", merge_data={"first_name": "Sanne"})
    assert '<html lang="ar" dir="rtl">' in dutch.html and "نعتذر" in dutch.html
    english = apology_render(apology=apology, locale="en", merge_data={"first_name": "Al"})
    assert '<html lang="en" dir="ltr">' in english.html
