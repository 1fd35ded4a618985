"""The incident's append-only timeline: the one way to record what happened.

Every service that changes an incident calls `timeline_record` inside its own transaction.
It says what happened with `said(...)` / `said_n(...)` (core.sentences): the sentence
is stored untranslated and read in each reader's language (`TimelineEvent.text`); the
English rendering goes to `message`, the fallback and what search and exports match on.
"""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.sentences import (  # noqa: F401  (the vocabulary of call sites)
    SAID_KEY,
    Part,
    Sentence,
    encode,
    joined,
    label,
    labels,
    moment,
    number,
    render_english,
    said,
    said_n,
    text,
)
from incidents.models import EventKind, Incident, TimelineEvent

User = AbstractBaseUser

# Events worth an email to the incident's stakeholders.
NOTIFY_KINDS = frozenset({EventKind.DECLARED, EventKind.STATUS, EventKind.ALERT,
                          EventKind.CLOSED, EventKind.REOPENED})

AMENDS = gettext_lazy("Amends")


def actor_name(user: User | None) -> str:
    """How a person (or Amends itself, for system events) is named, in the active language."""
    if user is None:
        return _("Amends")
    return user.get_full_name() or user.get_username()


def who(user: User | None) -> dict[str, Any]:
    """The same as a sentence param: a name as written, or "Amends" translated when read."""
    if user is None:
        return label(AMENDS)
    return text(user.get_full_name() or user.get_username())


def timeline_record(*, incident: Incident, actor: User | None, kind: str,
                    message: str | Part | Sequence[Part],
                    data: dict[str, Any] | None = None,
                    corrects: TimelineEvent | None = None) -> TimelineEvent:
    """Append one event. Callers hold the transaction of the change it describes.

    `message` is a sentence (or a list of them, read joined by spaces; a str in the list
    is text as written). A plain str is what a person wrote (a note, a correction)."""
    data = dict(data or {})
    if isinstance(message, Sentence) or not isinstance(message, str):
        parts = encode(message)
        data[SAID_KEY] = parts
        message = render_english(parts)
    event = TimelineEvent.objects.create(
        incident=incident, actor=actor, kind=kind, message=message, data=data,
        corrects=corrects,
    )
    if kind in NOTIFY_KINDS:
        from incidents.tasks import notify_timeline_event

        transaction.on_commit(lambda: notify_timeline_event.delay(event.pk))
    return event


def in_log_language():
    """Text stored once for everyone (step and duty titles copied from the playbook) is
    written in the site's language; the timeline itself is translated when read."""
    from django.conf import settings
    from django.utils import translation

    return translation.override(settings.LANGUAGE_CODE)
