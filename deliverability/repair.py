"""Make hostile or broken webhook content storable, and count every repair.

An ESP retries a refused batch whole (up to 1,000 events) and then gives up, so one bad
value must not cost the bounces and complaints beside it. What PostgreSQL cannot hold is
repaired on the way in, and each repair is counted on the raw row (`repairs`), summed on
the batch and logged once per request:

- ``nul``: NUL characters, which neither text nor jsonb columns accept, are removed;
- ``unicode``: lone surrogates (``"\\ud800"`` parses, but is not UTF-8) become U+FFFD;
- ``depth``: nesting deeper than MAX_DEPTH is cut and replaced by a marker string (a
  10,000-deep document would exhaust Python's recursion limit while parsing);
- ``timestamp``: a time that is infinite, out of any calendar's range, or far from now is
  dropped; the event then counts at the moment we received it, and the original value is
  kept in ``repairs["original_timestamp"]`` (the ESP payload keeps it too where jsonb can).

The fast path costs one substring search per encoded payload; the walks below run only
for content that needs them. Counts are plain dicts ({kind: n}): a Counter per event was
a quarter of a 1,000-event request (its isinstance(Mapping) check).
"""

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import orjson

MAX_DEPTH = 200  # below orjson's encoder limit (254) and far below Python's recursion limit
DEPTH_MARKER = f"[removed by Amends: nested deeper than {MAX_DEPTH} levels]"
# Plausible event times: nothing an ESP reports predates this, or lies beyond a day ahead.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_EARLIEST_TS = EARLIEST.timestamp()
_FUTURE_SLACK_S = timedelta(days=1).total_seconds()

Repairs = dict[str, Any]  # {"nul": 2, "timestamp": 1, "original_timestamp": "inf"}

_request_repairs: ContextVar[Counter | None] = ContextVar("webhook_repairs", default=None)


@contextmanager
def counting() -> Iterator[Counter]:
    """Count request-level repairs (nesting cut while parsing the body)."""
    counter: Counter = Counter()
    token = _request_repairs.set(counter)
    try:
        yield counter
    finally:
        _request_repairs.reset(token)


def _note_request(kind: str, n: int = 1) -> None:
    counter = _request_repairs.get()
    if counter is not None:
        counter[kind] += n


# --- Text --------------------------------------------------------------------------------

def count(repairs: Repairs, kind: str, n: int = 1) -> None:
    repairs[kind] = repairs.get(kind, 0) + n


def clean_text(value: str, repairs: Repairs) -> str:
    if "\x00" in value:
        count(repairs, "nul", value.count("\x00"))
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            surrogates = [c for c in value if "\ud800" <= c <= "\udfff"]
            count(repairs, "unicode", len(surrogates))
            value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


# --- JSON values ------------------------------------------------------------------------

def clean_json(value: Any, repairs: Repairs, depth: int = 0) -> Any:
    """A copy of `value` that jsonb can hold: no NUL, no lone surrogate, bounded depth.

    Non-finite floats become null (jsonb has no Infinity); integers of any size stay.
    """
    if isinstance(value, str):
        return clean_text(value, repairs)
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict | list | tuple):
        if depth >= MAX_DEPTH:
            count(repairs, "depth")
            return DEPTH_MARKER
        if isinstance(value, dict):
            return {clean_text(str(k), repairs): clean_json(v, repairs, depth + 1)
                    for k, v in value.items()}
        return [clean_json(v, repairs, depth + 1) for v in value]
    return value


_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))
_EMPTY_JSON = {0: "[]", 1: "{}"}


def jsonb_text(value: Any, repairs: Repairs) -> str | None:
    """Encode for a jsonb column; repaired (and counted) only when jsonb would refuse it.

    orjson is ten times faster than the standard encoder and writes NaN as null; it
    refuses lone surrogates, integers over 64 bits and nesting past 254 levels, which the
    slow path handles. "\\u0000" in its output means a NUL, which jsonb refuses.
    """
    if value is None:
        return None
    if not value and isinstance(value, list | dict):
        return _EMPTY_JSON[isinstance(value, dict)]
    try:
        text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        pass
    else:
        if "\\u0000" not in text:
            return text
    return _ENCODER.encode(clean_json(value, repairs))


# --- Parsing: a json.loads that survives absurd nesting ---------------------------------

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def cut_deep_nesting(text: str, max_depth: int = MAX_DEPTH) -> tuple[str, int]:
    """Replace every array/object opened deeper than max_depth by DEPTH_MARKER (a string).

    A linear scan that skips string literals; used only after the standard parser ran out
    of recursion. Returns the new text and how many subtrees were cut.
    """
    out: list[str] = []
    depth = cut = 0
    position = 0
    skip_until_depth: int | None = None
    marker = json.dumps(DEPTH_MARKER)
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token[0] == '"':
            continue
        if token in "[{":
            depth += 1
            if skip_until_depth is None and depth > max_depth:
                out.append(text[position:match.start()])
                out.append(marker)
                skip_until_depth = depth - 1
                cut += 1
        else:
            depth -= 1
            if skip_until_depth is not None and depth == skip_until_depth:
                position = match.end()
                skip_until_depth = None
    if skip_until_depth is not None:  # unbalanced: leave it for the parser to refuse
        return text, 0
    out.append(text[position:])
    return "".join(out), cut


def loads(text: str | bytes, **kwargs: Any) -> Any:
    try:
        return json.loads(text, **kwargs)
    except RecursionError:
        if isinstance(text, bytes | bytearray):
            text = text.decode("utf-8")
        repaired, cut = cut_deep_nesting(text)
        if not cut:
            raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
        _note_request("depth", cut)
        return json.loads(repaired, **kwargs)


def tolerant_json_module() -> ModuleType:
    """The `json` module with `loads` replaced by ours, for anymail's webhook modules."""
    module = ModuleType("deliverability.repair.json")
    module.__dict__.update({k: v for k, v in vars(json).items() if not k.startswith("__")})
    module.loads = loads
    return module


# --- Timestamps --------------------------------------------------------------------------

def implausible(when: datetime | None, now: float | None = None) -> bool:
    """Outside [1990, now + a day], against the real clock (`time.time()`: called once
    per event, django.utils.timezone.now cost a seventh of a 1,000-event request)."""
    if when is None:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return not _EARLIEST_TS <= when.timestamp() <= (now or time.time()) + _FUTURE_SLACK_S


def original_repr(value: Any) -> str:
    return str(value)[:100]
