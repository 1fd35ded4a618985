"""The import engine: stream a CSV into a staging table, check it set-based, apply it
with INSERT … SELECT / UPDATE … FROM, all in one transaction.

- PostgreSQL: a temporary table filled with COPY (rows stream through psycopg).
- SQLite (the embedded demo): a temporary table filled with executemany in batches.

All-or-nothing by default: any bad row rolls everything back and nothing changes. With
`skip_bad_rows`, bad rows are left out and listed in a downloadable report. A dry run
does all of it and rolls back, so its counts are exactly what a real run would do.
Memory stays flat: one batch of rows, and only the first errors, are held at a time.
"""

from __future__ import annotations

import csv
import heapq
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import IO, Any

from django.db import connection, transaction
from django.utils.translation import gettext as _

from .reader import Column, CsvStream, DecodeProblem, FileProblem, HeaderMap, map_headers

BATCH = 2000
SHOWN_ERRORS = 50
SAMPLE_ROWS = 5
STAGING = "amends_import_staging"
# No value we store is longer (kinds check their own, shorter limits on top); this keeps
# one hostile cell from travelling into staging, attributes or error messages.
MAX_VALUE_CHARS = 1000
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

Progress = Callable[[str, int], None]  # (phase, rows read so far)


def neutralise_cell(value: object) -> object:
    """A report cell a spreadsheet shows as text: a leading quote defuses formulas."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def shown_value(value: str, limit: int = 60) -> str:
    """A value quoted back in a message, cut short so a long cell stays readable."""
    return value if len(value) <= limit else value[:limit] + "…"


@dataclass(order=True)
class RowError:
    line: int
    column: str
    problem: str

    def __str__(self) -> str:
        if self.column:
            return _("Line %(line)s, column “%(column)s”: %(problem)s") % {
                "line": self.line, "column": self.column, "problem": self.problem}
        return _("Line %(line)s: %(problem)s") % {"line": self.line, "problem": self.problem}


class RowInvalid(Exception):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors  # (column header, problem)


@dataclass
class ImportResult:
    kind: str
    dry_run: bool
    skip_bad_rows: bool
    encoding: str = ""
    mapping: list[tuple[str, str]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    attribute_columns: list[str] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    bad_rows: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first SHOWN_ERRORS
    counts: dict[str, int] = field(default_factory=dict)
    file_problem: str = ""
    report: IO[str] | None = None  # CSV of every error (line, column, problem)

    @property
    def applied(self) -> bool:
        return not self.dry_run and not self.rejected

    @property
    def rejected(self) -> bool:
        return bool(self.file_problem) or (self.error_count > 0 and not self.skip_bad_rows)

    def counts_display(self) -> list[tuple[str, int]]:
        labels = {"created": _("created"), "updated": _("updated"),
                  "unchanged": _("unchanged (already there)"),
                  "segments created": _("segments created")}
        return [(labels.get(key, key), n) for key, n in self.counts.items()]

    def messages(self) -> list[str]:
        if self.file_problem:
            return [self.file_problem]
        return [str(e) for e in self.errors]

    def as_json(self) -> dict[str, Any]:
        """Everything but the report file, for storing with the import."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "report"}
        data["errors"] = [[e.line, e.column, e.problem] for e in self.errors]
        data["mapping"] = [list(pair) for pair in self.mapping]
        # jsonb does not keep key order: dicts travel as lists of pairs.
        data["counts"] = list(self.counts.items())
        data["sample"] = [list(row.items()) for row in self.sample]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportResult:
        known = {f.name for f in fields(cls)} - {"report"}
        values = {k: v for k, v in data.items() if k in known}
        values["errors"] = [RowError(*e) for e in data.get("errors", [])]
        values["mapping"] = [tuple(pair) for pair in data.get("mapping", [])]
        values["counts"] = dict(data.get("counts", []))
        values["sample"] = [dict(row) for row in data.get("sample", [])]
        return cls(**values)


class ImportKind:
    """One kind of file. Subclasses say which columns, how to clean a row, how to check
    the staged rows as a set and how to apply them."""

    key: str = ""
    label: str = ""
    columns: list[Column] = []
    # (name, PostgreSQL type, SQLite type); `line` is added first.
    staging: list[tuple[str, str, str]] = []
    keeps_extra_columns = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def check_options(self) -> None:
        """Raise FileProblem when an option the kind needs is missing or wrong."""

    def clean(self, values: dict[str, str], extra: dict[str, str]) -> tuple:
        """Row values (by column name) → staging tuple, or RowInvalid."""
        raise NotImplementedError

    def set_checks(self, cursor) -> Iterator[tuple[str, str, str]]:
        """(SQL returning line + problem ordered by line, column label, params…) checks
        run on the staged rows as a whole."""
        return iter(())

    def apply(self, cursor, now) -> dict[str, int]:
        raise NotImplementedError

    # helpers for subclasses
    def header_of(self, column: str) -> str:
        return self._headers.get(column, column)


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _create_staging(cursor, kind: ImportKind) -> None:
    pg = _is_postgres()
    cols = ", ".join(f"{name} {pg_type if pg else lite_type}"
                     for name, pg_type, lite_type in kind.staging)
    cursor.execute(f"DROP TABLE IF EXISTS {STAGING}")
    if pg:
        cursor.execute(f"CREATE TEMPORARY TABLE {STAGING} (line integer PRIMARY KEY, {cols}) "
                       f"ON COMMIT DROP")
    else:
        cursor.execute(f"CREATE TEMPORARY TABLE {STAGING} (line integer PRIMARY KEY, {cols})")


class _Loader:
    """Streams staging tuples into the table: COPY on PostgreSQL, batches elsewhere."""

    def __init__(self, cursor, kind: ImportKind) -> None:
        self.cursor = cursor
        self.names = ["line", *(name for name, _pg, _lite in kind.staging)]
        self.batch: list[tuple] = []

    def __enter__(self):
        if _is_postgres():
            self._copy_cm = self.cursor.cursor.copy(
                f"COPY {STAGING} ({', '.join(self.names)}) FROM STDIN")
            self._copy = self._copy_cm.__enter__()
        return self

    def write(self, row: tuple) -> None:
        if _is_postgres():
            self._copy.write_row(row)
            return
        self.batch.append(row)
        if len(self.batch) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        marks = ", ".join(["%s"] * len(self.names))
        self.cursor.executemany(
            f"INSERT INTO {STAGING} ({', '.join(self.names)}) VALUES ({marks})", self.batch)
        self.batch = []

    def __exit__(self, *exc) -> None:
        if _is_postgres():
            self._copy_cm.__exit__(*exc)
        elif exc[0] is None and self.batch:
            self._flush()


class _ErrorSink:
    """Keeps the first errors for display; spools every one to temporary files, one
    per run of line-ordered errors (the row checks, then each whole-file check)."""

    def __init__(self) -> None:
        self.shown: list[RowError] = []
        self.count = 0
        self.spools: list[IO[str]] = []
        self.begin_run()

    def begin_run(self) -> None:
        self.spools.append(tempfile.TemporaryFile("w+", encoding="utf-8", newline=""))
        self._writer = csv.writer(self.spools[-1])

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.shown) < SHOWN_ERRORS:
            self.shown.append(error)
        self._writer.writerow([error.line, error.column, error.problem])

    def runs(self) -> list[Iterator[RowError]]:
        def read(spool: IO[str]) -> Iterator[RowError]:
            spool.seek(0)
            for line, column, problem in csv.reader(spool):
                yield RowError(int(line), column, problem)

        return [read(spool) for spool in self.spools]

    def close(self) -> None:
        for spool in self.spools:
            spool.close()


def import_csv(*, kind: ImportKind, fileobj, encoding: str = "auto", dry_run: bool = False,
               skip_bad_rows: bool = False, progress: Progress | None = None) -> ImportResult:
    """Import one CSV file (a binary file object, read in chunks). `progress`, when given,
    hears ("reading", rows) every few thousand rows, then ("checking", rows) and
    ("applying", rows); it runs inside the import's transaction, so it must not write to
    the database."""
    progress = progress or (lambda phase, rows: None)
    result = ImportResult(kind=kind.key, dry_run=dry_run, skip_bad_rows=skip_bad_rows)
    try:
        kind.check_options()
        stream = CsvStream(fileobj, encoding=encoding)
        header_map = map_headers(stream.headers, kind.columns)
    except FileProblem as exc:
        result.file_problem = str(exc)
        return result
    result.encoding = stream.encoding_label
    result.mapping = header_map.describe(kind.columns)
    extra_headers = list(header_map.extra.values())
    if kind.keeps_extra_columns:
        result.attribute_columns = extra_headers
    else:
        result.ignored_columns = extra_headers
    kind._headers = {name: stream.headers[i] for name, i in header_map.index.items()}

    sink = _ErrorSink()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                _create_staging(cursor, kind)
                try:
                    _stage(stream, kind, header_map, cursor, sink, result, progress)
                except DecodeProblem as exc:
                    result.file_problem = str(exc)
                    transaction.set_rollback(True)
                    return result
                if not result.rows:
                    result.file_problem = _("Line %(line)s is the header and no rows follow "
                                            "it: there is nothing to import.") % {
                        "line": stream.header_line}
                    transaction.set_rollback(True)
                    return result
                # Checks that need the whole file (duplicates, unknown references).
                progress("checking", result.rows)
                set_errors = _set_checks(cursor, kind, sink, skip_bad_rows)
                result.error_count = sink.count
                result.errors = sorted(sink.shown)[:SHOWN_ERRORS]
                result.bad_rows = result.bad_rows + set_errors
                if sink.count and not skip_bad_rows:
                    transaction.set_rollback(True)
                else:
                    from django.utils import timezone

                    progress("applying", result.rows)
                    result.counts = kind.apply(cursor, timezone.now())
                    if dry_run:
                        transaction.set_rollback(True)
                if not _is_postgres() and not transaction.get_rollback():
                    # PostgreSQL drops it on commit; a rollback undoes its creation.
                    cursor.execute(f"DROP TABLE IF EXISTS {STAGING}")
    finally:
        if sink.count:
            result.report = _merged_report(sink)
        else:
            sink.close()
    return result


def _cell_problems(record_values: list[str], headers: list[str],
                   stored: list[int]) -> list[tuple[str, str]]:
    """What no kind could store: NUL characters anywhere, over-long values we keep."""
    problems = [(headers[i], _("contains a NUL character (byte 0x00), which cannot be "
                               "stored; remove it."))
                for i, value in enumerate(record_values) if "\x00" in value]
    problems += [(headers[i], _("%(n)s characters long; at most %(max)s are accepted.") % {
                     "n": f"{len(record_values[i].strip()):,}", "max": f"{MAX_VALUE_CHARS:,}"})
                 for i in stored if len(record_values[i].strip()) > MAX_VALUE_CHARS]
    return problems


def _stage(stream: CsvStream, kind: ImportKind, header_map: HeaderMap, cursor,
           sink: _ErrorSink, result: ImportResult, progress: Progress) -> None:
    width = len(stream.headers)
    stored = sorted([*header_map.index.values(),
                     *(header_map.extra if kind.keeps_extra_columns else ())])
    with _Loader(cursor, kind) as loader:
        for record in stream.records():
            result.rows += 1
            if result.rows % BATCH == 0:
                progress("reading", result.rows)
            if record.problem:
                sink.add(RowError(record.line, "", record.problem))
                result.bad_rows += 1
                continue
            if len(record.values) != width:
                sink.add(RowError(record.line, "", _(
                    "expected %(want)s fields like the header, found %(got)s (a stray "
                    "delimiter or quote?).") % {"want": width, "got": len(record.values)}))
                result.bad_rows += 1
                continue
            if problems := _cell_problems(record.values, stream.headers, stored):
                result.bad_rows += 1
                for column, problem in problems:
                    sink.add(RowError(record.line, column, problem))
                continue
            values = {name: record.values[i].strip() for name, i in header_map.index.items()}
            extra = ({header: record.values[i].strip() for i, header in
                      header_map.extra.items() if record.values[i].strip()}
                     if kind.keeps_extra_columns else {})
            try:
                row = kind.clean(values, extra)
            except RowInvalid as exc:
                result.bad_rows += 1
                for column, problem in exc.errors:
                    sink.add(RowError(record.line, column, problem))
                continue
            if len(result.sample) < SAMPLE_ROWS:
                result.sample.append({kind.header_of(n): v for n, v in values.items()})
            loader.write((record.line, *row))


def _set_checks(cursor, kind: ImportKind, sink: _ErrorSink, skip_bad_rows: bool) -> int:
    bad_lines = 0
    for sql, column, *params in kind.set_checks(cursor):
        sink.begin_run()
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(BATCH):
            for line, problem in chunk:
                sink.add(RowError(line, column, problem))
            bad_lines += len(chunk)
        if skip_bad_rows:
            cursor.execute(f"DELETE FROM {STAGING} WHERE line IN "
                           f"(SELECT line FROM ({sql}) AS bad)", params)
    return bad_lines


def _merged_report(sink: _ErrorSink) -> IO[str]:
    """Every error in line order, as CSV, merged from the spooled runs (streaming).
    Column names and problems quote the uploaded file, so no cell may start a formula."""
    out = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
    writer = csv.writer(out)
    writer.writerow([_("line"), _("column"), _("problem")])
    for error in heapq.merge(*sink.runs()):
        writer.writerow([neutralise_cell(cell)
                         for cell in (error.line, error.column, error.problem)])
    sink.close()
    out.seek(0)
    return out
