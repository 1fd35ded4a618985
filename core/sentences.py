"""Sentences stored untranslated and rendered in the reader's language at read time.

The incident timeline (and an ESP's answer to a pause) is written once and read by a team
that may not share a language. Code says what happened with `said(...)` (or `said_n(...)`
for a number of things); what is stored is the English msgid and typed parameters, never a
translation:

- plain text (names, campaign names, what a person typed): shown as written;
- a label (a choice label, a field's verbose name, a playbook title): its English msgid
  is stored and translated when read; `labels([...])` joins several at read time;
- a number: localised when read; a date-time: formatted when read;
- another sentence (a change named inside a sentence), or `joined([...], sep)`.

Stored form (JSON, under TimelineEvent.data["said"]): a list of parts, each
{"s": msgid, "p": plural msgid, "c": count, "a": {name: param}} or {"t": text}; a param is
{"t": text} | {"l": msgid} | {"ls": [msgid, ...]} | {"n": number} | {"dt": ISO 8601} |
a sentence | {"j": [param, ...], "sep": msgid}. This module imports no models.

makemessages extracts the sentences through the `said` and `said_n:1,2` keywords
(core/management/commands/makemessages.py); wrapping them in gettext_noop works too.

A Sentence *is* its English rendering (a str), so code that logs, slices or searches it
keeps working; `encode()` gives what to store and `translated()` the active language.
Build sentences at run time, not at import (the English needs the translation machinery).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.utils import formats, timezone, translation
from django.utils.functional import Promise
from django.utils.translation import ngettext

from core.l10n import catalogued, grouped_number

SAID_KEY = "said"

Param = dict[str, Any]


class Sentence(str):
    """One sentence, not yet translated; its str value is the English rendering."""

    msgid: str
    params: dict[str, Param]
    plural: str | None
    count: int | None

    def __new__(cls, msgid: str, params: dict[str, Param] | None = None,
                plural: str | None = None, count: int | None = None) -> Sentence:
        part: Param = {"s": msgid}
        if plural is not None:
            part["p"], part["c"] = plural, count
        if params:
            part["a"] = params
        obj = super().__new__(cls, render_english([part]))
        obj.msgid, obj.params, obj.plural, obj.count = msgid, params or {}, plural, count
        obj._part = part
        return obj

    def __reduce__(self):  # pickles as what it was built from, not as its English
        return (Sentence, (self.msgid, self.params, self.plural, self.count))

    def encode(self) -> Param:
        return self._part

    def translated(self) -> str:
        """In the active language."""
        return render_part(self._part)


Part = Sentence | str


def msgid_of(value: Promise | str) -> str:
    """The English source of a lazy translation (a choice label, a verbose name)."""
    if isinstance(value, Promise):
        with translation.override(None):
            return str(value)
    return str(value)


def text(value: Any) -> Param:
    """Shown as written, never translated (names, what a person typed)."""
    return {"t": str(value)}


def label(value: Promise | str, *, lower: bool = False) -> Param:
    """A translatable label: its msgid is stored, translated (and lowered) when read."""
    return {"l": msgid_of(value), "lower": True} if lower else {"l": msgid_of(value)}


def labels(values: Iterable[Promise | str]) -> Param:
    """Several labels, joined (", ") when read."""
    return {"ls": [msgid_of(v) for v in values]}


def number(value: int | float | Decimal, decimals: int | None = None) -> Param:
    """Localised when read (decimal separator, grouping where the language uses it)."""
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    return {"n": value} if decimals is None else {"n": value, "d": decimals}


def moment(value: dt.datetime) -> Param:
    """A date-time, formatted when read (DATETIME_FORMAT of the reader's language)."""
    return {"dt": value.isoformat()}


def joined(items: Iterable[Any], sep: str = ", ") -> Param:
    """Params (sentences, labels, text) joined when read by `sep`, itself a msgid."""
    return {"j": [param(i) for i in items], "sep": sep}


def param(value: Any) -> Param:
    """A typed param from a raw value: lazy strings are labels, ints numbers, datetimes
    moments, sentences nested; any other str is plain text."""
    if isinstance(value, dict):
        return value
    if isinstance(value, Sentence):  # before str: a sentence inside a sentence
        return value.encode()
    if isinstance(value, Promise):
        return label(value)
    if isinstance(value, bool):
        return text(value)
    if isinstance(value, int | float | Decimal):
        return number(value)
    if isinstance(value, dt.datetime):
        return moment(value)
    return text(value)


def said(msgid: str, /, **params: Any) -> Sentence:
    """A sentence to render at read time: `said("%(who)s closed the incident.", who=...)`."""
    return Sentence(msgid=msgid_of(msgid), params={k: param(v) for k, v in params.items()})


def said_n(singular: str, plural: str, count: int, /, **params: Any) -> Sentence:
    """The same for a number of things, rendered with ngettext(singular, plural, count)."""
    return Sentence(msgid=msgid_of(singular), plural=msgid_of(plural), count=int(count),
                    params={k: param(v) for k, v in params.items()})


def encode(message: Part | Sequence[Part]) -> list[Param]:
    """Parts joined by a space when read; a plain str part is text as written."""
    parts = [message] if isinstance(message, str) else list(message)
    return [p.encode() if isinstance(p, Sentence) else text(p) for p in parts if p != ""]


# --- Reading ---------------------------------------------------------------------------------

# A placeholder with a number format (%(rate).2f, %(count)d): numbers are localised as text,
# so the placeholder becomes %(name)s and the precision goes to number_format.
_NUMBER_SPEC = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.(\d+))?([dif])")


def _moment(iso: str) -> str:
    value = dt.datetime.fromisoformat(iso)
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, "DATETIME_FORMAT")


def render_param(p: Param, decimals: int | None = None) -> str:
    if "t" in p:
        return p["t"]
    if "l" in p:
        out = catalogued(p["l"])
        return out.lower() if p.get("lower") else out
    if "ls" in p:
        return ", ".join(catalogued(m) for m in p["ls"])
    if "n" in p:
        return grouped_number(p["n"], p.get("d", decimals))
    if "dt" in p:
        return _moment(p["dt"])
    if "j" in p:
        return catalogued(p["sep"]).join(render_param(i) for i in p["j"])
    if "s" in p:
        return render_part(p)
    raise ValueError(f"unknown sentence param {p!r}")


def render_part(part: Param) -> str:
    if "t" in part:
        return part["t"]
    if part.get("p") is not None:
        template = ngettext(part["s"], part["p"], part["c"])
    else:
        template = catalogued(part["s"])
    if "a" not in part:  # nothing to fill in (a bare "%" in it stays as it is)
        return template
    args = part["a"]
    precision: dict[str, int | None] = {}

    def plain(m: re.Match) -> str:
        name, digits, conv = m.groups()
        if "n" not in args.get(name, {}):
            return m.group(0)
        precision[name] = 0 if conv in "di" else (int(digits) if digits else None)
        return f"%({name})s"

    template = _NUMBER_SPEC.sub(plain, template)
    return template % {k: render_param(v, precision.get(k)) for k, v in args.items()}


def render(parts: list[Param]) -> str:
    """The stored sentences in the active language."""
    return " ".join(render_part(p) for p in parts)


def render_english(parts: list[Param]) -> str:
    from django.conf import settings

    with translation.override(settings.LANGUAGE_CODE):
        return render(parts)
