import re

import pytest
from django.urls import reverse

from incidents.apology.models import Apology
from incidents.apology.services import apology_save
from incidents.models import Kind, StepStatus
from incidents.services import incident_close, step_set_status
from messaging.services import brand_template_ensure_demo
from tests.factories import declare

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def incident(marketer):
    return declare(marketer)


@pytest.fixture
def breach(security_officer):
    return declare(security_officer, title="Export leaked", kind=Kind.DATA_BREACH, severity=1)


@pytest.fixture
def brand(db):
    return brand_template_ensure_demo()


def url(name: str, incident) -> str:
    return reverse(f"incidents:apology-{name}", args=[incident.pk])


def form_data(**overrides) -> dict:
    data = {"subject": "We made a mistake with yesterday's email",
            "from_name": "Northwind", "from_email": "care@northwind.test", "reply_to": "",
            "brand_template": "", "default_locale": "en", "version": "0",
            "body_en": "Dear {{ first_name }},\n\nWe are sorry: the email went to everyone.",
            "coupon_code": "", "compensation_text": "", "protective_steps": "",
            "preview_locale": "en"}
    data.update(overrides)
    return data


def codes(response) -> list[str]:
    return re.findall(r'data-code="([a-z_]+)"', response.content.decode())


# --- The composer page ----------------------------------------------------------------

def test_composer_shows_a_first_draft_with_checks_and_preview(client, marketer, incident,
                                                              brand):
    client.force_login(marketer)
    response = client.get(url("compose", incident))
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert 'value="We made a mistake"' in html and "Not saved yet" in html
    for code in ("en", "ar", "he", "pl", "id", "nl"):
        assert f'name="body_{code}"' in html
    assert 'hx-trigger="input changed delay:500ms, change"' in html
    assert f'hx-post="{url("check", incident)}"' in html
    assert 'sandbox src="' + url("preview", incident) in html
    assert "body_missing" in codes(response) and "audience_not_computed" in codes(response)
    assert "<script" not in html.split("</head>")[1]  # CSP: no inline script


def test_composer_fragment_is_the_composer_only(client, marketer, incident):
    client.force_login(marketer)
    response = client.get(url("compose", incident), **HTMX)
    assert response.status_code == 200
    assert b"<html" not in response.content and b'id="composer"' in response.content


def test_save_creates_the_apology_and_redirects(client, marketer, incident, brand):
    client.force_login(marketer)
    response = client.post(url("compose", incident), form_data(
        brand_template=str(brand.pk), body_nl="Sorry, {{ first_name }}."))
    assert response.status_code == 302 and response["Location"] == url("compose", incident)
    apology = Apology.objects.get(incident=incident)
    assert apology.version == 1 and apology.brand_template == brand
    assert apology.bodies == {"en": form_data()["body_en"], "nl": "Sorry, {{ first_name }}."}
    page = client.get(response["Location"])
    assert b"Apology saved (version 1)." in page.content
    assert b"Version 1, saved by Maya" in page.content


def test_invalid_input_is_shown_next_to_its_field_and_nothing_saved(client, marketer,
                                                                   incident):
    client.force_login(marketer)
    response = client.post(url("compose", incident), form_data(reply_to="not an address"))
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="id_reply_to_error"' in html and "Enter a valid email address." in html
    assert "Reply-to address: Enter a valid email address." in html  # also in the checks
    assert not Apology.objects.exists()


def test_stale_form_is_refused_with_a_clear_message(client, marketer, lawyer, incident):
    apology_save(incident=incident, actor=lawyer, subject="x", from_name="", from_email="",
                 reply_to="", brand_template=None, default_locale="en", bodies={})
    client.force_login(marketer)
    response = client.post(url("compose", incident), form_data(version="0"))
    assert response.status_code == 422
    assert b"Leo changed the apology while you were editing" in response.content
    assert Apology.objects.get().subject == "x"


def test_service_field_errors_land_on_the_field(client, marketer, incident):
    client.force_login(marketer)
    response = client.post(url("compose", incident), form_data(coupon_code="SORRY20"))
    assert response.status_code == 422
    assert b'id="id_compensation_text_error"' in response.content


# --- Live checks ----------------------------------------------------------------------

def test_check_fragment_lists_findings_for_unsaved_text(client, marketer, incident):
    client.force_login(marketer)
    response = client.post(url("check", incident), form_data(
        reply_to="noreply@northwind.test", subject="Update"), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<aside class="composer-side" id="apology-checks"')
    assert "Reply-to noreply@northwind.test is a no-reply address: people will answer this " \
           "email and their replies matter." in html
    assert codes(response) == ["noreply", "audience_not_computed", "vague_subject",
                               "no_brand_template"]
    assert not Apology.objects.exists()  # checking never saves


def test_check_without_javascript_returns_the_whole_page(client, marketer, incident):
    client.force_login(marketer)
    response = client.post(url("check", incident), form_data(reply_to="no-reply@x.test"))
    assert response.status_code == 200 and b"<html" in response.content
    assert b'value="no-reply@x.test"' in response.content and "noreply" in codes(response)


def test_invalid_address_is_still_checked_for_noreply(client, marketer, incident):
    client.force_login(marketer)
    response = client.post(url("check", incident), form_data(from_email="noreply@"), **HTMX)
    assert "invalid" in codes(response) and "noreply" in codes(response)


def test_preview_renders_the_typed_draft_in_the_chosen_language(client, marketer,
                                                                incident, brand):
    client.force_login(marketer)
    check = client.post(url("check", incident), form_data(
        brand_template=str(brand.pk), body_pl="Przepraszamy, {{ first_name }} <b>!",
        preview_locale="pl"), **HTMX)
    src = re.search(r'<iframe[^>]* src="([^"]+)"', check.content.decode()).group(1)
    assert "locale=pl" in src and "draft=1" in src
    preview = client.get(src.replace("&amp;", "&"))
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "Przepraszamy, Anna &lt;b&gt;!" in html and 'lang="pl"' in html
    assert "Northwind Goods" in html and "Wypisz się" in html  # the footer in Polish too
    assert "frame-ancestors 'self'" in preview["Content-Security-Policy"]
    assert "script-src" not in preview["Content-Security-Policy"]
    assert preview["X-Frame-Options"] == "SAMEORIGIN"


def test_preview_without_draft_shows_the_saved_apology(client, marketer, incident):
    apology_save(incident=incident, actor=marketer, subject="We are sorry",
                 from_name="N", from_email="care@n.test", reply_to="", brand_template=None,
                 default_locale="en", bodies={"en": "Saved text for {{ first_name }}."})
    client.force_login(marketer)
    preview = client.get(url("preview", incident), {"locale": "he"})
    assert "Saved text for נועה." in preview.content.decode()  # Hebrew reader, English body


def test_preview_falls_back_note_in_the_checks(client, marketer, incident):
    client.force_login(marketer)
    response = client.post(url("check", incident), form_data(preview_locale="ar"), **HTMX)
    assert b"No Arabic body: these readers get the English one." in response.content


# --- Permissions ----------------------------------------------------------------------

@pytest.mark.parametrize("persona", ["marketer", "lawyer", "security_officer"])
def test_working_roles_may_edit(client, request, incident, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.post(url("compose", incident), form_data()).status_code == 302
    assert client.post(url("check", incident), form_data(), **HTMX).status_code == 200


def test_manager_reads_but_cannot_change(client, manager, incident):
    client.force_login(manager)
    page = client.get(url("compose", incident))
    assert page.status_code == 200 and b"You can read this apology but not change it." in \
        page.content
    assert b"hx-post" not in page.content and b"disabled" in page.content
    assert client.post(url("compose", incident), form_data()).status_code == 403
    assert client.post(url("check", incident), form_data()).status_code == 403
    assert client.get(url("preview", incident)).status_code == 200
    assert not Apology.objects.exists()


def test_outsider_gets_404_on_a_restricted_incident(client, outsider, breach):
    client.force_login(outsider)
    assert client.get(url("compose", breach)).status_code == 404
    assert client.post(url("compose", breach), form_data()).status_code == 404
    assert client.post(url("check", breach), form_data()).status_code == 404
    assert client.get(url("preview", breach)).status_code == 404


def test_anonymous_is_sent_to_login(client, incident):
    response = client.get(url("compose", incident))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_wrong_methods_get_405(client, marketer, incident):
    client.force_login(marketer)
    assert client.put(url("compose", incident)).status_code == 405
    assert client.delete(url("compose", incident)).status_code == 405
    assert client.get(url("check", incident)).status_code == 405
    assert client.post(url("preview", incident)).status_code == 405


def test_closed_incident_composer_is_read_only(client, marketer, incident):
    for step in incident.steps.all():
        step_set_status(step=step, actor=marketer, status=StepStatus.DONE,
                                 note="Handled by hand")
    incident_close(incident=incident, actor=marketer,
                   postmortem_skip_reason="A test incident.")
    client.force_login(marketer)
    page = client.get(url("compose", incident))
    assert b"The incident is closed; reopen it to change the apology." in page.content
    response = client.post(url("compose", incident), form_data())
    assert response.status_code == 422 and not Apology.objects.exists()


# --- The war room card ----------------------------------------------------------------

def test_step_five_card_links_to_the_composer_with_a_summary(client, marketer, incident):
    client.force_login(marketer)
    page = client.get(reverse("incidents:incident-detail", args=[incident.pk])).content.decode()
    step5 = page.split('id="step-5"')[1].split("</article>")[0]
    assert "No apology email written yet." in step5 and "Write the apology" in step5
    assert url("compose", incident) in step5
    apology_save(incident=incident, actor=marketer, subject="Hello", from_name="",
                 from_email="noreply@x.test", reply_to="", brand_template=None,
                 default_locale="en", bodies={"en": "Sorry."})
    page = client.get(reverse("incidents:incident-detail", args=[incident.pk])).content.decode()
    step5 = page.split('id="step-5"')[1].split("</article>")[0]
    assert "Apology email, version 1:" in step5
    assert "2 errors" in step5 and "2 warnings" in step5


def test_step_five_card_for_a_reader(client, manager, incident):
    client.force_login(manager)
    page = client.get(reverse("incidents:incident-detail", args=[incident.pk]))
    assert b"Read the apology" in page.content


def test_admin_lists_apologies_read_only(client, admin_user, marketer, incident):
    apology_save(incident=incident, actor=marketer, subject="We are sorry", from_name="",
                 from_email="care@x.test", reply_to="", brand_template=None,
                 default_locale="en", bodies={"en": "Sorry."})
    client.force_login(admin_user)
    listing = client.get(reverse("admin:incidents_apology_changelist"))
    assert listing.status_code == 200 and b"We are sorry" in listing.content
    apology = Apology.objects.get()
    response = client.post(reverse("admin:incidents_apology_change", args=[apology.pk]),
                           {"subject": "Changed"})
    assert response.status_code == 403 and Apology.objects.get().subject == "We are sorry"


def test_arabic_and_hebrew_bodies_are_typed_right_to_left_in_an_english_page(
        client, marketer, incident):
    client.force_login(marketer)
    html = client.get(url("compose", incident)).content.decode()
    assert '<html lang="en" dir="ltr"' in html

    def textarea(code: str) -> str:
        return re.search(rf'<textarea[^>]*name="body_{code}"[^>]*>', html).group(0)

    for code in ("ar", "he"):
        assert f'lang="{code}"' in textarea(code) and 'dir="rtl"' in textarea(code)
    assert 'dir="ltr"' in textarea("pl")
