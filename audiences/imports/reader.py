"""Streaming CSV reading: encoding detection, header mapping, one record at a time.

Nothing here holds more than one bounded record of the file in memory:
- bytes are read in chunks and decoded incrementally, so a file without line breaks is
  never one giant string: a physical line longer than MAX_LINE_CHARS is skipped (and
  reported) while it is read, at the cost of scanning it;
- a record may span lines only inside quotes; the lines of the record being read are kept
  (at most MAX_RECORD_CHARS) so that a quote which never closes can be reported on its own
  line and the lines it swallowed read again as the rows they are.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

CHUNK_BYTES = 64 * 1024
MAX_LINE_CHARS = 1024 * 1024
MAX_RECORD_CHARS = 1024 * 1024
MAX_HEADER_CHARS = 200
# The csv module's own per-field limit (131,072 characters unless someone changed it).
MAX_FIELD_CHARS = csv.field_size_limit()
ENCODINGS = ("auto", "utf-8", "latin-1")

# Detected or chosen encoding → (codec, label shown to people). "utf-8-sig" decodes files
# with and without a BOM; "utf-16" reads the BOM and picks the byte order from it.
CODECS = {
    "utf-8-sig": ("utf-8-sig", "UTF-8 (BOM)"),
    "utf-8": ("utf-8-sig", "UTF-8"),
    "utf-16-le": ("utf-16", "UTF-16 LE"),
    "utf-16-be": ("utf-16", "UTF-16 BE"),
    "latin-1": ("latin-1", "Latin-1"),
}


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
    """UTF-8 (with or without BOM) or UTF-16 announced by its BOM; nothing is guessed.
    Anything else is read as UTF-8 and refused at its first invalid byte."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be"
    return "utf-8"


def _looks_like_utf16(head: bytes) -> bool:
    sample = head[:1024]
    return len(sample) >= 4 and sample.count(0) >= len(sample) // 3


class DecodeProblem(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


_EOL = re.compile(r"\r\n|\r|\n")
TOO_LONG = None  # stands for a line that was skipped because it is too long


def text_lines(raw, *, head: bytes, encoding: str) -> Iterator[tuple[int, str | None]]:
    """(line number, text with its line ending) for each physical line; text is TOO_LONG
    for a line longer than MAX_LINE_CHARS, which is scanned but never held."""
    codec, label = CODECS[encoding]
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    number, offset = 1, 0  # offset: bytes handed to the decoder so far
    pending: list[str] = []
    pending_chars = 0
    too_long = False
    carry = ""  # a trailing "\r" waits for the next chunk: it may be half of "\r\n"
    chunk = head
    while True:
        final = not chunk
        state = decoder.getstate()
        try:
            text = carry + decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            held = state[0] if isinstance(state[0], bytes) else b""
            decoder.setstate(state)
            before = max(0, exc.start - len(held))
            try:
                seen = carry + decoder.decode(chunk[:before])
            except UnicodeDecodeError:
                seen = ""
            line = number + len(_EOL.findall(seen))
            data = held + chunk
            raise DecodeProblem(line, _(
                "Line %(line)s: byte 0x%(byte)02x (byte %(offset)s of the file) is not valid "
                "%(encoding)s. Save the file as UTF-8 (or UTF-16 with a byte-order mark), or "
                "choose Latin-1 if that is what it is.") % {
                "line": line, "byte": data[exc.start], "offset": offset - len(held)
                + exc.start + 1, "encoding": label}) from None
        offset += len(chunk)
        carry = ""
        if not final and text.endswith("\r"):
            text, carry = text[:-1], "\r"
        start = 0
        for match in _EOL.finditer(text):
            piece = text[start:match.end()]
            start = match.end()
            if too_long or pending_chars + len(piece) > MAX_LINE_CHARS:
                yield number, TOO_LONG
            else:
                pending.append(piece)
                yield number, "".join(pending)
            number += 1
            pending, pending_chars, too_long = [], 0, False
        rest = text[start:]
        if rest and not too_long:
            if pending_chars + len(rest) > MAX_LINE_CHARS:
                pending, pending_chars, too_long = [], 0, True
            else:
                pending.append(rest)
                pending_chars += len(rest)
        if final:
            if too_long:
                yield number, TOO_LONG
            elif pending:
                yield number, "".join(pending)
            return
        chunk = raw.read(CHUNK_BYTES)


class _LineTooLong(Exception):
    pass


class _RecordTooLong(Exception):
    pass


class _Feed:
    """What csv.reader reads: one line per call, remembering the lines of the current
    record (so they can be read again) and refusing to let one record grow unbounded."""

    def __init__(self, lines: Iterator[tuple[int, str | None]]) -> None:
        self._lines = lines
        self._replay: deque[tuple[int, str | None]] = deque()
        self.current: list[tuple[int, str | None]] = []
        self._chars = 0

    def start_record(self) -> None:
        self.current, self._chars = [], 0

    def replay(self, lines: list[tuple[int, str | None]]) -> None:
        self._replay.extendleft(reversed(lines))

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        number, text = self._replay.popleft() if self._replay else next(self._lines)
        self.current.append((number, text))
        if text is TOO_LONG:
            raise _LineTooLong
        self._chars += len(text)
        if len(self.current) > 1 and self._chars > MAX_RECORD_CHARS:
            raise _RecordTooLong
        return text


@dataclass
class Record:
    line: int
    values: list[str]
    problem: str = ""  # set when the line could not be read as CSV; values are then empty


def _unclosed_quote(line: int) -> str:
    return _("a quote opens a field on line %(line)s and is never closed; the lines after "
             "it were read on their own.") % {"line": line}


class CsvStream:
    """Header + records of a CSV file, decoded and parsed lazily."""

    def __init__(self, fileobj, *, encoding: str = "auto") -> None:
        if encoding not in ENCODINGS:
            raise FileProblem(_("Unknown encoding %(enc)s.") % {"enc": encoding})
        head = fileobj.read(CHUNK_BYTES)
        self.encoding = detect_encoding(head) if encoding == "auto" else encoding
        if encoding == "auto" and self.encoding == "utf-8" and _looks_like_utf16(head):
            raise FileProblem(_(
                "Line 1: every other byte is NUL, as in UTF-16 without a byte-order mark. "
                "Save the file as UTF-8 (or as UTF-16 with a byte-order mark)."))
        codec, self.encoding_label = CODECS[self.encoding]
        first_line = _EOL.split(head.decode(codec, errors="replace"), maxsplit=1)[0]
        try:
            dialect = csv.Sniffer().sniff(first_line[:4096], delimiters=",;\t|")
            delimiter = dialect.delimiter
        except csv.Error:
            delimiter = ","
        self.delimiter = delimiter
        self._feed = _Feed(text_lines(fileobj, head=head, encoding=self.encoding))
        # strict: a quote followed by text, or a file ending inside quotes, is an error we
        # report rather than a field silently glued to the next line.
        self._reader = csv.reader(self._feed, delimiter=delimiter, strict=True)
        self.headers = self._read_header()

    def _read_header(self) -> list[str]:
        while True:
            self._feed.start_record()
            try:
                values = next(self._reader)
            except StopIteration:
                raise FileProblem(_("The file is empty.")) from None
            except DecodeProblem as exc:
                raise FileProblem(str(exc)) from None
            except _LineTooLong:
                raise FileProblem(_("Line 1: the header line is longer than %(n)s "
                                    "characters; is this a CSV file?")
                                  % {"n": f"{MAX_LINE_CHARS:,}"}) from None
            except (_RecordTooLong, csv.Error):
                raise FileProblem(_("Line 1: the header line cannot be read as CSV (a quote "
                                    "that is never closed?).")) from None
            if not any(v.strip() for v in values):
                continue  # blank lines before the header
            line = self._feed.current[0][0]
            if len(self._feed.current) > 1:
                raise FileProblem(_("Line %(line)s: a quote in the header line is never "
                                    "closed.") % {"line": line})
            if any(len(v) > MAX_HEADER_CHARS for v in values):
                raise FileProblem(_("Line %(line)s: a column name is longer than %(n)s "
                                    "characters; is the first line really the header?")
                                  % {"line": line, "n": MAX_HEADER_CHARS})
            if any("\x00" in v for v in values):
                raise FileProblem(_(
                    "Line %(line)s: the header contains NUL bytes. Is the file UTF-16 without "
                    "a byte-order mark? Save it as UTF-8.") % {"line": line})
            self.header_line = line
            return values

    def records(self) -> Iterator[Record]:
        """Each non-blank record. A line that cannot be read is a Record with a problem
        (never an exception), except a decoding error, which stops the file."""
        feed, width = self._feed, len(self.headers)
        while True:
            feed.start_record()
            try:
                values = next(self._reader)
            except StopIteration:
                return
            except _LineTooLong:
                lines = feed.current
                if len(lines) > 1:  # a long line inside quotes: the quote is the problem
                    feed.replay(lines[1:])
                    yield Record(lines[0][0], [], _unclosed_quote(lines[0][0]))
                else:
                    yield Record(lines[0][0], [], _(
                        "the line is longer than %(n)s characters; it was skipped.")
                        % {"n": f"{MAX_LINE_CHARS:,}"})
                continue
            except _RecordTooLong:
                lines = feed.current
                feed.replay(lines[1:])
                yield Record(lines[0][0], [], _unclosed_quote(lines[0][0]))
                continue
            except csv.Error as exc:
                lines = feed.current
                if len(lines) > 1 or "unexpected end of data" in str(exc):
                    feed.replay(lines[1:])
                    yield Record(lines[0][0], [], _unclosed_quote(lines[0][0]))
                elif "field larger than field limit" in str(exc):
                    yield Record(lines[0][0], [], _(
                        "a field is longer than %(n)s characters; the row was skipped.")
                        % {"n": f"{MAX_FIELD_CHARS:,}"})
                else:
                    yield Record(lines[0][0], [], _(
                        "a quote closes a field and more text follows it; write a quote "
                        "inside a quoted field as two quotes (\"\")."))
                continue
            lines = feed.current
            if len(lines) > 1 and len(values) != width:
                # A record that spans lines only does so inside quotes; with the wrong
                # number of fields, the quote on its first line swallowed what followed.
                feed.replay(lines[1:])
                yield Record(lines[0][0], [], _unclosed_quote(lines[0][0]))
                continue
            if values and any(v.strip() for v in values):
                yield Record(line=lines[0][0], values=values)
