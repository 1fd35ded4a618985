"""Writes to audiences. Imports stream through audiences.imports; this layer queues them
as Celery work, reports their progress and keeps the error report a person can download."""

import logging
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _

from .imports import KINDS, ImportResult, import_csv
from .models import AudienceImport, ImportStatus, Subscriber, SuppressionEntry, SuppressionList

log = logging.getLogger(__name__)

REPORT_NAME = re.compile(r"^(?P<user>\d+)-[0-9a-f]{32}\.csv$")
PROGRESS_KEY = "audiences:import:{pk}:progress"
PROGRESS_EVERY = 0.5  # seconds between progress writes while a file is read
# A claimed import whose worker died (the import itself rolled back) is claimed again by
# the watchdog after this long; imports are idempotent, so a rare double run is harmless.
STALE_AFTER = timedelta(minutes=30)


def _report_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "import-reports"


@dataclass
class ImportOutcome:
    result: ImportResult
    report_name: str = ""


def audience_file_import(*, owner_id: int, kind: str, fileobj, encoding: str = "auto",
                         dry_run: bool = False, skip_bad_rows: bool = False,
                         options: dict[str, Any] | None = None,
                         progress=None) -> ImportOutcome:
    """Import one CSV (atomic inside import_csv) and keep its error report."""
    result = import_csv(kind=KINDS[kind](**(options or {})), fileobj=fileobj,
                        encoding=encoding, dry_run=dry_run, skip_bad_rows=skip_bad_rows,
                        progress=progress)
    name = ""
    if result.report is not None:
        directory = _report_dir()
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{owner_id}-{uuid.uuid4().hex}.csv"
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


# --- Imports as background work ------------------------------------------------------------

def import_upload_check(*, size: int) -> None:
    """Refuse a file above the configured limit, with both sizes in the message."""
    limit = settings.AMENDS_IMPORTS["MAX_BYTES"]
    if size > limit:
        raise ValidationError(
            _("The file is %(size)s; imports take files up to %(limit)s. Split it into "
              "smaller files (each with the header line), or ask an administrator to raise "
              "AMENDS_IMPORT_MAX_BYTES.") % {"size": filesizeformat(size),
                                             "limit": filesizeformat(limit)},
            code="too_large")


def _enqueue(audience_import: AudienceImport) -> None:
    from .tasks import audience_import_run

    pk = audience_import.pk
    transaction.on_commit(lambda: audience_import_run.delay(pk))


@transaction.atomic
def audience_import_queue(*, actor: AbstractBaseUser, kind: str, upload: UploadedFile,
                          encoding: str = "auto", dry_run: bool = False,
                          skip_bad_rows: bool = False,
                          options: dict[str, Any] | None = None) -> AudienceImport:
    """Store the uploaded file and queue its import; the request does nothing more."""
    if kind not in KINDS:
        raise ValidationError(_("Unknown kind of file: %(kind)s.") % {"kind": kind})
    import_upload_check(size=upload.size)
    audience_import = AudienceImport(
        created_by=actor, kind=kind, options=options or {}, encoding=encoding,
        dry_run=dry_run, skip_bad_rows=skip_bad_rows,
        original_name=(upload.name or "upload.csv")[-255:], size=upload.size)
    # Our own name on disk: the uploaded one is only shown, never used as a path.
    audience_import.file.save(f"{uuid.uuid4().hex}.csv", upload, save=False)
    audience_import.save()
    _enqueue(audience_import)
    return audience_import


@transaction.atomic
def audience_import_confirm(*, actor: AbstractBaseUser,
                            preview: AudienceImport) -> AudienceImport:
    """Import for real the file a finished preview read, without uploading it again."""
    from .selectors import audience_import_can_confirm, audience_import_result

    result = audience_import_result(audience_import=preview)
    if not audience_import_can_confirm(audience_import=preview, result=result):
        raise ValidationError(_("This preview cannot be imported any more; upload the file "
                                "again."), code="stale")
    audience_import = AudienceImport.objects.create(
        created_by=actor, kind=preview.kind, options=preview.options,
        encoding=preview.encoding, dry_run=False, skip_bad_rows=preview.skip_bad_rows,
        file=preview.file.name, original_name=preview.original_name, size=preview.size)
    _enqueue(audience_import)
    return audience_import


class _ProgressReporter:
    """Publishes how far an import is to the cache (not the database: the import's own
    transaction is open while it reads, and nobody else would see a row update)."""

    def __init__(self, audience_import: AudienceImport, fileobj) -> None:
        self.key = PROGRESS_KEY.format(pk=audience_import.pk)
        self._file = fileobj
        self.bytes = self.rows = 0
        self.phase = "reading"
        self._last = 0.0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.bytes += len(data)
        self._publish()
        return data

    def __call__(self, phase: str, rows: int) -> None:
        changed = phase != self.phase
        self.phase, self.rows = phase, rows
        self._publish(force=changed)

    def _publish(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_EVERY:
            self._last = now
            cache.set(self.key, {"phase": self.phase, "bytes": self.bytes,
                                 "rows": self.rows}, timeout=24 * 3600)


def audience_import_execute(*, import_id: int) -> AudienceImport | None:
    """Run one queued import (called by the task). Claims it first, so a duplicate
    delivery of the task does nothing; returns None when there was nothing to claim.

    Deliberately not one transaction: the import is atomic on its own (all of it or none
    of it), and its outcome is recorded afterwards whatever happened inside."""
    now = timezone.now()
    claimed = (AudienceImport.objects.filter(pk=import_id)
               .filter(Q(status=ImportStatus.QUEUED)
                       | Q(status=ImportStatus.RUNNING, started_at__lt=now - STALE_AFTER))
               .update(status=ImportStatus.RUNNING, started_at=now))
    if not claimed:
        return None
    audience_import = AudienceImport.objects.get(pk=import_id)
    fields = ["status", "finished_at", "result", "report_name", "failure"]
    try:
        with audience_import.file.open("rb") as fileobj:
            reporter = _ProgressReporter(audience_import, fileobj)
            outcome = audience_file_import(
                owner_id=audience_import.created_by_id or 0, kind=audience_import.kind,
                fileobj=reporter, encoding=audience_import.encoding,
                dry_run=audience_import.dry_run, skip_bad_rows=audience_import.skip_bad_rows,
                options=audience_import.options, progress=reporter)
    except FileNotFoundError:
        audience_import.status = ImportStatus.FAILED
        audience_import.failure = _("The uploaded file is no longer stored; nothing was "
                                    "imported. Upload it again.")
    except Exception:
        # The import rolled back; say so instead of leaving the page spinning.
        log.exception("audience import %s failed", import_id)
        audience_import.status = ImportStatus.FAILED
        audience_import.failure = _("The import stopped on an unexpected error; nothing was "
                                    "changed. The error is in the worker's log.")
    else:
        audience_import.status = ImportStatus.DONE
        audience_import.result = outcome.result.as_json()
        audience_import.report_name = outcome.report_name
    if not audience_import.dry_run and _delete_upload(audience_import):
        audience_import.file = ""
        fields.append("file")
    # Last: once the row says finished, everything it promises has happened.
    audience_import.finished_at = timezone.now()
    audience_import.save(update_fields=fields)
    cache.delete(PROGRESS_KEY.format(pk=import_id))
    return audience_import


def _delete_upload(audience_import: AudienceImport) -> bool:
    """Remove the stored upload unless an import still waits to read it; the rows that
    named it forget the name."""
    name = audience_import.file.name
    sharing = AudienceImport.objects.filter(file=name)
    if not name or sharing.exclude(pk=audience_import.pk).filter(
            status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]).exists():
        return False
    audience_import.file.storage.delete(name)
    sharing.update(file="")
    return True


def audience_import_watchdog(*, now=None) -> dict[str, int]:
    """Periodic care (beat): re-queue imports whose worker died (claimed, not finished,
    older than STALE_AFTER: their import rolled back), and delete the stored files of
    finished imports older than KEEP_HOURS (previews nobody imported)."""
    now = now or timezone.now()
    stale = list(AudienceImport.objects.filter(status=ImportStatus.RUNNING,
                                               started_at__lt=now - STALE_AFTER)
                 .values_list("pk", flat=True))
    for pk in stale:
        _enqueue(AudienceImport(pk=pk))
    cutoff = now - timedelta(hours=settings.AMENDS_IMPORTS["KEEP_HOURS"])
    old = (AudienceImport.objects.filter(created_at__lt=cutoff, status__in=[
        ImportStatus.DONE, ImportStatus.FAILED]).exclude(file=""))
    deleted = sum(_delete_upload(audience_import) for audience_import in old.iterator())
    return {"requeued": len(stale), "files_deleted": deleted}


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
    return (Subscriber.objects.with_email(email).filter(status__in=weaker)
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
        people = Subscriber.objects.with_email(email)
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
