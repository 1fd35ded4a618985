"""The incident's append-only timeline: the one way to record what happened.

Every service that changes an incident calls `timeline_record` inside its own transaction.
"""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from incidents.models import EventKind, Incident, TimelineEvent

User = AbstractBaseUser

# Events worth an email to the incident's stakeholders.
NOTIFY_KINDS = frozenset({EventKind.DECLARED, EventKind.STATUS, EventKind.ALERT,
                          EventKind.CLOSED, EventKind.REOPENED})


def actor_name(user: User | None) -> str:
    """How a person (or Amends itself, for system events) is named on the timeline."""
    if user is None:
        return _("Amends")
    return user.get_full_name() or user.get_username()


def timeline_record(*, incident: Incident, actor: User | None, kind: str, message: str,
                    data: dict[str, Any] | None = None,
                    corrects: TimelineEvent | None = None) -> TimelineEvent:
    """Append one event. Callers hold the transaction of the change it describes."""
    event = TimelineEvent.objects.create(
        incident=incident, actor=actor, kind=kind, message=message, data=data or {},
        corrects=corrects,
    )
    if kind in NOTIFY_KINDS:
        from incidents.tasks import notify_timeline_event

        transaction.on_commit(lambda: notify_timeline_event.delay(event.pk))
    return event


def in_log_language():
    """The timeline is an audit record: one language for everyone who reads it later."""
    return translation.override(settings.LANGUAGE_CODE)
