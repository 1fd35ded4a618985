"""Roles are Django groups; what each may do is this table, synced on every migrate."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    MARKETING = "marketing", _("Marketing")
    LEGAL = "legal", _("Legal")
    SECURITY = "security", _("Security")
    DELIVERABILITY = "deliverability", _("Deliverability")
    MANAGER = "manager", _("Manager")
    ADMIN = "admin", _("Administrator")


_WORK = ["incidents.view_incident", "incidents.change_incident"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.MARKETING: [*_WORK, "incidents.add_incident"],
    Role.LEGAL: [*_WORK, "incidents.sign_plan"],
    Role.SECURITY: [*_WORK, "incidents.add_incident", "incidents.sign_plan"],
    Role.DELIVERABILITY: [*_WORK],
    Role.MANAGER: ["incidents.view_incident", "incidents.view_all_incidents"],
    # Admins get every permission of the project apps (see services.roles_sync).
    Role.ADMIN: [],
}

# Audience imports (issue 3): marketing and deliverability load their ESP's exports.
for _role in (Role.MARKETING, Role.DELIVERABILITY):
    ROLE_PERMISSIONS[_role] = [*ROLE_PERMISSIONS[_role], "audiences.add_subscriber"]
# Brand templates (messaging): marketing keeps the organisation's usual email look.
ROLE_PERMISSIONS[Role.MARKETING] = [
    *ROLE_PERMISSIONS[Role.MARKETING], "messaging.view_brandtemplate",
    "messaging.add_brandtemplate", "messaging.change_brandtemplate"]

# Roles that see restricted (breach) incidents without being stakeholders.
OVERSEEING_ROLES = frozenset({Role.MANAGER, Role.ADMIN})


def roles_of(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_amends_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached |= {Role.ADMIN}
        user._amends_roles = cached
    return cached


def oversees_everything(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(roles_of(user) & OVERSEEING_ROLES)
