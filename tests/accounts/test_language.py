"""The reader's language: Accept-Language until they choose; the choice stays with them."""

import pytest
from django.urls import reverse

from accounts.models import UserPreference
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _page(client, **headers):
    response = client.get(reverse("accounts:login"), **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_the_browsers_language_is_used_until_someone_chooses(client):
    html = _page(client, HTTP_ACCEPT_LANGUAGE="ar,en;q=0.5")
    assert '<html lang="ar" dir="rtl"' in html
    html = _page(client, HTTP_ACCEPT_LANGUAGE="nl-NL,nl;q=0.9")
    assert '<html lang="nl" dir="ltr"' in html


def test_a_choice_is_stored_on_the_person_and_beats_the_browser(client, marketer):
    client.force_login(marketer)
    response = client.post(reverse("accounts:language"),
                           {"language": "pl", "next": reverse("incidents:incident-list")})
    assert response.status_code == 302
    assert response["Location"] == reverse("incidents:incident-list")
    assert UserPreference.objects.get(user=marketer).language == "pl"

    html = client.get(reverse("incidents:incident-list"),
                      HTTP_ACCEPT_LANGUAGE="nl").content.decode()
    assert '<html lang="pl"' in html


def test_the_choice_comes_back_at_the_next_sign_in(client, marketer):
    UserPreference.objects.create(user=marketer, language="he")
    client.post(reverse("accounts:login"), {"username": marketer.username,
                                            "password": PASSWORD})
    html = client.get(reverse("incidents:incident-list"),
                      HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="he" dir="rtl"' in html


def test_an_unknown_language_is_refused_by_name(client, marketer):
    client.force_login(marketer)
    response = client.post(reverse("accounts:language"), {"language": "xx"})
    assert response.status_code == 400
    assert "'xx'" in response.content.decode()
    assert not UserPreference.objects.filter(user=marketer).exists()


def test_the_switcher_never_redirects_off_site(client, marketer):
    client.force_login(marketer)
    response = client.post(reverse("accounts:language"),
                           {"language": "id", "next": "https://evil.example/"})
    assert response["Location"] == "/"
