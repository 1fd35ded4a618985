"""CSRF with htmx, login throttling (django-axes) and the Content-Security-Policy."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from incidents.models import EventKind
from tests.conftest import PASSWORD
from tests.factories import declare

pytestmark = pytest.mark.django_db

HX_HEADERS = re.compile(r"""hx-headers='\{"X-CSRFToken": "([^"]+)"\}'""")


def test_htmx_post_without_the_csrf_token_is_refused_and_with_it_passes(marketer):
    incident = declare(marketer)
    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)
    page = client.get(reverse("incidents:incident-detail", args=[incident.pk]))
    token = HX_HEADERS.search(page.content.decode()).group(1)  # what htmx sends
    url = reverse("incidents:note-add", args=[incident.pk])
    refused = client.post(url, {"message": "no token"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    accepted = client.post(url, {"message": "with token"}, HTTP_HX_REQUEST="true",
                           HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200
    assert list(incident.events.filter(kind=EventKind.NOTE).values_list("message", flat=True)
                ) == ["with token"]


def test_the_sixth_bad_password_is_locked_out(marketer):
    client = Client()
    url = reverse("accounts:login")
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    for _ in range(limit - 1):
        response = client.post(url, {"username": "maya", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    response = client.post(url, {"username": "maya", "password": "wrong"})
    assert response.status_code == 429  # the 5th failure reaches the limit
    locked = client.post(url, {"username": "maya", "password": "wrong"})
    assert locked.status_code == 429
    assert "Too many sign-in attempts" in locked.content.decode()
    # Even the right password waits for the cool-off now.
    assert client.post(url, {"username": "maya", "password": PASSWORD}).status_code == 429


def test_pages_carry_the_content_security_policy(client, marketer):
    anonymous = client.get(reverse("accounts:login"))
    client.force_login(marketer)
    page = client.get(reverse("incidents:incident-list"))
    for response in (anonymous, page):
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split(
            "script-src")[1].split(";")[0]


def test_no_template_has_an_inline_script():
    roots = [Path(d) for d in settings.TEMPLATES[0]["DIRS"]]
    roots += [p for p in Path(settings.BASE_DIR).glob("*/templates")]
    inline = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE)
    offenders = [f"{path}: {m.group(0)}" for root in roots for path in root.rglob("*.html")
                 for m in inline.finditer(path.read_text())]
    assert not offenders, offenders
    assert any(root.rglob("*.html") for root in roots)
