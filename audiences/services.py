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

from .imports import KINDS, ImportResult, import_csv

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
