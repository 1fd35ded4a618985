"""Writes to audiences. Imports stream through audiences.imports; this layer keeps the
error report a person can download afterwards."""

import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from .imports import KINDS, ImportResult, import_csv
from .models import Subscriber, SuppressionEntry, SuppressionList

REPORT_NAME = re.compile(r"^(?P<user>\d+)-[0-9a-f]{32}\.csv$")


def _report_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "import-reports"


@dataclass
class ImportOutcome:
    result: ImportResult
    report_name: str = ""


def audience_file_import(*, actor: AbstractBaseUser, kind: str, fileobj, encoding: str = "auto",
                         dry_run: bool = False, skip_bad_rows: bool = False,
                         options: dict[str, Any] | None = None) -> ImportOutcome:
    """Import one uploaded CSV (atomic inside import_csv) and keep its error report."""
    result = import_csv(kind=KINDS[kind](**(options or {})), fileobj=fileobj,
                        encoding=encoding, dry_run=dry_run, skip_bad_rows=skip_bad_rows)
    name = ""
    if result.report is not None:
        directory = _report_dir()
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{actor.pk}-{uuid.uuid4().hex}.csv"
        with open(directory / name, "w", encoding="utf-8", newline="") as out:
            shutil.copyfileobj(result.report, out)
        result.report.close()
    return ImportOutcome(result=result, report_name=name)


def import_report_path(*, actor: AbstractBaseUser, name: str) -> Path | None:
    """The report file, only for the person whose import wrote it."""
    match = REPORT_NAME.match(name)
    if not match or int(match["user"]) != actor.pk:
        return None
    path = _report_dir() / name
    return path if path.is_file() else None


# --- Feedback from delivery events (called by deliverability) --------------------------

# A stronger status is never downgraded: a complaint outranks a bounce, both outrank an
# unsubscribe, and nothing here ever makes a person active again.
_STATUS_RANK = {"active": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}


@transaction.atomic
def subscriber_status_raise(*, email: str, status: str) -> int:
    """Move the subscriber(s) with this address to `status` unless already at or beyond it.
    Returns how many rows changed; an unknown address changes nothing."""
    rank = _STATUS_RANK[status]
    weaker = [s for s, r in _STATUS_RANK.items() if r < rank]
    return (Subscriber.objects.filter(email__iexact=email.strip(), status__in=weaker)
            .update(status=status, updated_at=timezone.now()))


@transaction.atomic
def subscriber_unsubscribe(*, source: str, email: str = "",
                           subscriber_id: int | None = None) -> int:
    """The one unsubscribe path: the subscriber's own link (one click or the page) and an
    ESP's unsubscribe event both end here. Records when and through what (first time
    only), then raises the status (never lowering a bounce or a complaint). Idempotent;
    returns how many subscribers changed status."""
    if subscriber_id is not None:
        people = Subscriber.objects.filter(pk=subscriber_id)
    elif email.strip():
        people = Subscriber.objects.filter(email__iexact=email.strip())
    else:
        raise ValueError("subscriber_unsubscribe needs an email or a subscriber_id")
    people.filter(unsubscribed_at__isnull=True).update(
        unsubscribed_at=timezone.now(), unsubscribe_source=source[:40])
    weaker = [s for s, r in _STATUS_RANK.items() if r < _STATUS_RANK["unsubscribed"]]
    return people.filter(status__in=weaker).update(status="unsubscribed",
                                                   updated_at=timezone.now())


@transaction.atomic
def suppression_entry_add(*, list_name: str, email: str, reason: str,
                          source: str = "") -> bool:
    """Put an address on a named suppression list (created on first use); idempotent.
    Returns True when the entry is new."""
    suppression_list, _created = SuppressionList.objects.get_or_create(
        name=list_name, defaults={"source": source})
    _entry, created = SuppressionEntry.objects.get_or_create(
        suppression_list=suppression_list, email=email.strip().lower(),
        defaults={"reason": reason[:200]})
    return created
