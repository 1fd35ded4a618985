"""Streaming CSV reading: encoding detection, header mapping, one row at a time.

Nothing here holds more than one record of the file in memory.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

SNIFF_BYTES = 64 * 1024
ENCODINGS = ("auto", "utf-8", "latin-1")


@dataclass(frozen=True)
class Column:
    """A field the import understands, and the header names ESP exports use for it."""

    name: str
    label: str
    aliases: tuple[str, ...]
    required: bool = False


def normalise_header(text: str) -> str:
    """'E-mail Address ' and 'email_address' both become 'emailaddress'."""
    return re.sub(r"[^0-9a-z]", "", text.strip().lower())


class FileProblem(Exception):
    """The file as a whole cannot be imported (no header, no email column...)."""


@dataclass
class HeaderMap:
    headers: list[str]
    index: dict[str, int]  # column name → position
    extra: dict[int, str] = field(default_factory=dict)  # position → header, unmapped

    def describe(self, columns: list[Column]) -> list[tuple[str, str]]:
        by_name = {c.name: c for c in columns}
        return [(self.headers[i], str(by_name[name].label))
                for name, i in sorted(self.index.items(), key=lambda kv: kv[1])]


def map_headers(headers: list[str], columns: list[Column]) -> HeaderMap:
    alias_to_column = {}
    for column in columns:
        for alias in (column.name, *column.aliases):
            alias_to_column[normalise_header(alias)] = column
    index: dict[str, int] = {}
    extra: dict[int, str] = {}
    for i, header in enumerate(headers):
        column = alias_to_column.get(normalise_header(header))
        if column is None:
            if header.strip():
                extra[i] = header.strip()
            continue
        if column.name in index:
            raise FileProblem(_(
                "Line 1: columns “%(a)s” and “%(b)s” both look like %(label)s; keep one.")
                % {"a": headers[index[column.name]], "b": header, "label": column.label})
        index[column.name] = i
    missing = [c for c in columns if c.required and c.name not in index]
    if missing:
        raise FileProblem(_("Line 1: no column for %(label)s (looked for a header such as "
                            "%(examples)s).") % {
            "label": missing[0].label,
            "examples": ", ".join(f"“{a}”" for a in missing[0].aliases[:4])})
    return HeaderMap(headers=headers, index=index, extra=extra)


def detect_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniff window is still UTF-8.
        if exc.start < len(head) - 3:
            return "latin-1"
    return "utf-8"


class DecodeProblem(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def decoded_lines(raw_lines: Iterable[bytes], encoding: str) -> Iterator[str]:
    """Decode line by line so that one bad byte names its line instead of failing all."""
    first = True
    for number, raw in enumerate(raw_lines, start=1):
        if first and encoding == "utf-8-sig":
            raw = raw.removeprefix(codecs.BOM_UTF8)
        first = False
        try:
            yield raw.decode("utf-8" if encoding == "utf-8-sig" else encoding)
        except UnicodeDecodeError as exc:
            raise DecodeProblem(number, _(
                "Line %(line)s: byte 0x%(byte)02x at position %(pos)s is not valid "
                "%(encoding)s; save the file as UTF-8, or choose Latin-1.") % {
                "line": number, "byte": raw[exc.start], "pos": exc.start + 1,
                "encoding": "UTF-8"}) from None


class _Peekable:
    """A binary line iterator that first replays the sniffed bytes."""

    def __init__(self, fileobj) -> None:
        # One iterator for both passes: Django's File restarts from 0 on each iter().
        self._file = iter(fileobj)
        self.head = b""
        lines = []
        for line in self._file:
            lines.append(line)
            self.head += line
            if len(self.head) >= SNIFF_BYTES:
                break
        self._buffer = lines

    def __iter__(self) -> Iterator[bytes]:
        yield from self._buffer
        self._buffer = []
        yield from self._file


@dataclass
class Record:
    line: int
    values: list[str]


class CsvStream:
    """Header + records of a CSV file, decoded and parsed lazily."""

    def __init__(self, fileobj, *, encoding: str = "auto") -> None:
        if encoding not in ENCODINGS:
            raise FileProblem(_("Unknown encoding %(enc)s.") % {"enc": encoding})
        source = _Peekable(fileobj)
        self.encoding = detect_encoding(source.head) if encoding == "auto" else encoding
        sample = source.head.decode(self.encoding, errors="replace")
        try:
            dialect = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t|")
            delimiter = dialect.delimiter
        except csv.Error:
            delimiter = ","
        self.delimiter = delimiter
        self._reader = csv.reader(decoded_lines(source, self.encoding), delimiter=delimiter)
        try:
            self.headers = next(self._reader)
        except StopIteration:
            raise FileProblem(_("The file is empty.")) from None
        except DecodeProblem as exc:
            raise FileProblem(str(exc)) from None

    def records(self) -> Iterator[Record]:
        start = self._reader.line_num + 1
        for values in self._reader:
            if values and any(v.strip() for v in values):
                yield Record(line=start, values=values)
            start = self._reader.line_num + 1
