from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404

from accounts.roles import oversees_everything
from incidents.models import Incident, Stakeholder


def can_declare(user: AbstractBaseUser) -> bool:
    return user.has_perm("incidents.add_incident")


def can_work(user: AbstractBaseUser) -> bool:
    return user.has_perm("incidents.change_incident")


def incidents_visible_to(user: AbstractBaseUser) -> QuerySet[Incident]:
    """Restricted incidents (breaches) show only to stakeholders, managers and admins."""
    if not user.is_authenticated or not user.has_perm("incidents.view_incident"):
        return Incident.objects.none()
    if oversees_everything(user) or user.has_perm("incidents.view_all_incidents"):
        return Incident.objects.all()
    is_stakeholder = Exists(Stakeholder.objects.filter(incident=OuterRef("pk"), user=user))
    return Incident.objects.filter(Q(restricted=False) | is_stakeholder)


def get_incident_for_user(user: AbstractBaseUser, pk: int, *, write: bool = False) -> Incident:
    """404 for those who may not see it, 403 for those who may only read it."""
    incident = get_object_or_404(incidents_visible_to(user).select_related("lead"), pk=pk)
    if write and not can_work(user):
        raise PermissionDenied
    return incident
