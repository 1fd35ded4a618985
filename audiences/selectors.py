"""Reads of audiences, scoped to the person asking."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.http import Http404

from .imports import ImportResult
from .models import AudienceImport, ImportStatus
from .services import PROGRESS_KEY


def audience_import_get_for_user(*, user: AbstractBaseUser, pk: int) -> AudienceImport:
    """An import, for the person who uploaded it (or a superuser); 404 for anyone else:
    its results quote the file."""
    imports = AudienceImport.objects.all()
    if not user.is_superuser:
        imports = imports.filter(created_by=user)
    try:
        return imports.get(pk=pk)
    except AudienceImport.DoesNotExist:
        raise Http404 from None


@dataclass
class ImportProgress:
    phase: str  # queued, reading, checking, applying
    bytes_read: int
    size: int
    rows: int

    @property
    def percent(self) -> int | None:
        """How much of the file has been read; None once reading is over (the SQL part
        has no measurable progress) or before it starts."""
        if self.phase != "reading" or not self.size:
            return None
        return min(100, round(100 * self.bytes_read / self.size))


def audience_import_progress(*, audience_import: AudienceImport) -> ImportProgress:
    if audience_import.status == ImportStatus.QUEUED:
        return ImportProgress("queued", 0, audience_import.size, 0)
    seen = cache.get(PROGRESS_KEY.format(pk=audience_import.pk)) or {}
    return ImportProgress(seen.get("phase", "reading"), seen.get("bytes", 0),
                          audience_import.size, seen.get("rows", 0))


def audience_import_result(*, audience_import: AudienceImport) -> ImportResult | None:
    if audience_import.status != ImportStatus.DONE or not audience_import.result:
        return None
    return ImportResult.from_json(audience_import.result)


def audience_import_can_confirm(*, audience_import: AudienceImport,
                                result: ImportResult | None) -> bool:
    """A finished, clean preview whose file is still stored can be imported for real."""
    return bool(result and result.dry_run and not result.rejected and audience_import.file
                and audience_import.file.storage.exists(audience_import.file.name))
