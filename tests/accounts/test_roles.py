import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.roles import ROLE_PERMISSIONS, Role, roles_of

pytestmark = pytest.mark.django_db


def test_every_role_is_a_group_with_its_permissions():
    for role in Role:
        group = Group.objects.get(name=role.value)
        names = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        if role == Role.ADMIN:
            assert "incidents.add_incident" in names and "incidents.view_all_incidents" in names
        else:
            assert names == set(ROLE_PERMISSIONS[role])


def test_manager_is_read_only(manager):
    assert manager.has_perm("incidents.view_incident")
    assert not manager.has_perm("incidents.change_incident")
    assert roles_of(manager) == {Role.MANAGER}


def test_admin_reaches_the_django_admin(client, admin_user):
    client.force_login(admin_user)
    assert client.get(reverse("admin:incidents_incident_changelist")).status_code == 200


def test_login_and_logout(client, marketer):
    from tests.conftest import PASSWORD

    response = client.post(reverse("accounts:login"), {"username": "maya", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse(
        "incidents:incident-list")
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert client.get(reverse("incidents:incident-list")).status_code == 302


def test_wrong_password_says_so(client, marketer):
    response = client.post(reverse("accounts:login"), {"username": "maya", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
