import pytest
from django.urls import reverse

from messaging.models import BrandTemplate
from messaging.services import brand_template_ensure_demo, brand_template_save

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def brand_data(**overrides) -> dict:
    data = {"name": "Autumn look", "brand_name": "Northwind", "logo_url": "",
            "primary_color": "#aa3300", "text_color": "#111111",
            "footer_text": "Thanks for being with us.",
            "unsubscribe_url": "{{ unsubscribe_url }}", "postal_address": "1 Road, Town"}
    data.update(overrides)
    return data


@pytest.fixture
def demo_brand(db):
    return brand_template_ensure_demo()


def test_marketer_lists_creates_and_edits(client, marketer, demo_brand):
    client.force_login(marketer)
    page = client.get(reverse("messaging:brand-list"))
    assert page.status_code == 200 and b"Northwind house style" in page.content
    response = client.post(reverse("messaging:brand-create"), brand_data())
    created = BrandTemplate.objects.get(name="Autumn look")
    assert response.status_code == 302
    assert response["Location"] == reverse("messaging:brand-edit", args=[created.pk])
    assert created.primary_color == "#AA3300" and not created.is_default
    edit = client.get(response["Location"])
    assert edit.status_code == 200
    assert reverse("messaging:brand-preview", args=[created.pk]).encode() in edit.content
    response = client.post(response["Location"], brand_data(brand_name="Northwind Goods"))
    created.refresh_from_db()
    assert response.status_code == 302 and created.brand_name == "Northwind Goods"


def test_bad_colour_is_shown_on_its_field(client, marketer):
    client.force_login(marketer)
    response = client.post(reverse("messaging:brand-create"), brand_data(primary_color="red"))
    assert response.status_code == 422
    assert b'id="id_primary_color_error"' in response.content
    assert not BrandTemplate.objects.exists()


def test_set_default_page_and_fragment(client, marketer, demo_brand):
    other = brand_template_save(**brand_data())
    client.force_login(marketer)
    response = client.post(reverse("messaging:brand-set-default", args=[other.pk]), **HTMX)
    assert response.status_code == 200 and b"<html" not in response.content
    assert b'id="brand-table"' in response.content
    assert BrandTemplate.objects.get(is_default=True) == other
    response = client.post(reverse("messaging:brand-set-default", args=[demo_brand.pk]))
    assert response.status_code == 302
    assert BrandTemplate.objects.get(is_default=True) == demo_brand


def test_brand_preview_is_a_framable_script_free_page(client, marketer, demo_brand):
    client.force_login(marketer)
    response = client.get(reverse("messaging:brand-preview", args=[demo_brand.pk]))
    assert response.status_code == 200 and b"Northwind Goods" in response.content
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("persona", ["manager", "lawyer"])
def test_roles_without_brand_rights_get_403(client, request, persona, demo_brand):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("messaging:brand-list")).status_code == 403
    assert client.post(reverse("messaging:brand-create"), brand_data()).status_code == 403
    assert client.post(reverse("messaging:brand-edit", args=[demo_brand.pk]),
                       brand_data()).status_code == 403
    assert client.post(reverse("messaging:brand-set-default",
                               args=[demo_brand.pk])).status_code == 403
    assert BrandTemplate.objects.count() == 1


def test_admin_may_manage_brands(client, admin_user, demo_brand):
    client.force_login(admin_user)
    assert client.get(reverse("messaging:brand-list")).status_code == 200
    assert client.get(reverse("admin:messaging_brandtemplate_changelist")).status_code == 200


def test_unknown_template_is_404_and_wrong_methods_405(client, marketer):
    client.force_login(marketer)
    assert client.get(reverse("messaging:brand-edit", args=[999])).status_code == 404
    assert client.get(reverse("messaging:brand-set-default", args=[1])).status_code == 405
    assert client.post(reverse("messaging:brand-list")).status_code == 405
    assert client.delete(reverse("messaging:brand-edit", args=[1])).status_code == 405


def test_anonymous_goes_to_login(client):
    response = client.get(reverse("messaging:brand-list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
