from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from .roles import ROLE_PERMISSIONS, Role

ADMIN_APPS = ("incidents", "audiences", "messaging", "deliverability", "auth")


def _permissions(names: list[str]) -> list[Permission]:
    found = []
    for name in names:
        app_label, codename = name.split(".")
        perm = Permission.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if perm is not None:
            found.append(perm)
    return found


@transaction.atomic
def roles_sync() -> None:
    """Make every role group exist with exactly the permissions ROLE_PERMISSIONS gives."""
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        if role == Role.ADMIN:
            perms = list(Permission.objects.filter(content_type__app_label__in=ADMIN_APPS))
        else:
            perms = _permissions(ROLE_PERMISSIONS[role])
        group.permissions.set(perms)


def roles_sync_after_migrate(sender, **kwargs) -> None:
    # Permissions are created per app by auth's own post_migrate handler; incidents is the
    # last of our apps in INSTALLED_APPS, so by its turn every permission we grant exists.
    if sender.label == "incidents":
        roles_sync()


@transaction.atomic
def user_create_with_role(*, username: str, password: str, role: Role, email: str = "",
                          first_name: str = "", last_name: str = ""):
    """Create (or update) a user in one role group; admins also reach the Django admin."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username)
    user.email = email or f"{username}@example.com"
    user.first_name = first_name
    user.last_name = last_name
    user.is_staff = role == Role.ADMIN
    user.is_superuser = role == Role.ADMIN
    user.set_password(password)
    user.save()
    user.groups.set([Group.objects.get(name=role.value)])
    return user
