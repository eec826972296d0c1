"""JSON events of `.evt` files (VPL.md §11.3): one JSON object per line, checked step by step.

Owns turning the `{...}` part of a line into an event type, an optional time and ordered fields,
with the exact reasons and positions of §11.3 and §11.5.
"""

from __future__ import annotations

import json
import math
import re

from varpulis_mp.io.evt_text import I64_MAX, I64_MIN, LineProblem

__all__ = ["JsonObject", "JsonValueError", "decode_json_value", "holds_object", "parse_json_event"]

_PREFIX = "invalid JSON event: "
_TIME_KEYS = ("ts", "timestamp")
_KNOWN_WITH_DATA = frozenset({"event_type", "type", "data", "ts", "timestamp"})
# Decoded strings can only hold surrogates that came from `\u` escapes of surrogates.
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_MAX_INT_DIGITS = 25
_JSON_WS = " \t\n\r"


class _Reason(Exception):
    """A step-1 problem found while decoding."""


class _Obj:
    """A decoded JSON object: its members in document order, duplicates already rejected."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        self.pairs = pairs


def _object(pairs: list[tuple[str, object]]) -> _Obj:
    if len(pairs) > 1:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Reason(f"duplicate member '{key}'")
            seen.add(key)
    return _Obj(pairs)


def _int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise _Reason("number out of range")
    value = int(text)
    if not I64_MIN <= value <= I64_MAX:
        raise _Reason("number out of range")
    return value


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Reason("number out of range")
    return value


def _constant(text: str) -> object:
    raise _Reason("non-finite numbers are not allowed")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant
)


def _has_surrogate(value: object) -> bool:
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, str):
            if _SURROGATE_RE.search(v):
                return True
        elif isinstance(v, list):
            todo.extend(v)
        elif isinstance(v, _Obj):
            for key, item in v.pairs:
                if _SURROGATE_RE.search(key):
                    return True
                todo.append(item)
    return False


def _has_object(value: object) -> bool:
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, _Obj):
            return True
        if isinstance(v, list):
            todo.extend(v)
    return False


def _decode_span(text: str, start: int, end: int) -> object:
    """The JSON value spanning text[start:end] by step 1's rules; a problem raises _Reason."""
    try:
        value, stop = _DECODER.raw_decode(text[:end], start)
    except RecursionError:
        raise _Reason("not valid JSON (nested too deeply)") from None
    except ValueError:
        raise _Reason("not valid JSON") from None
    # Only spaces and tabs may follow the object; the caller has trimmed those.
    if stop != end:
        raise _Reason("not valid JSON")
    if "\\u" in text and _SURROGATE_ESCAPE_RE.search(text, start, end) and _has_surrogate(value):
        raise _Reason("lone surrogate")
    return value


def _decode(text: str, start: int, end: int) -> object:
    try:
        return _decode_span(text, start, end)
    except _Reason as exc:
        raise LineProblem(start, _PREFIX + str(exc)) from None


class JsonValueError(ValueError):
    """JSON text that breaks §11.3 step 1; the message is the reason (`duplicate member 'x'`, ...)."""


JsonObject = _Obj


def decode_json_value(text: str) -> object:
    """One JSON value by §11.3 step 1's rules (no duplicate members, numbers that fit, no lone
    surrogates), objects as `JsonObject`s (members in document order); JSON whitespace may surround
    it. Raises JsonValueError."""
    start = len(text) - len(text.lstrip(_JSON_WS))
    end = len(text.rstrip(_JSON_WS))
    try:
        return _decode_span(text, start, end)
    except _Reason as exc:
        raise JsonValueError(str(exc)) from None


def holds_object(value: object) -> bool:
    """Whether a decoded value is, or holds at any depth of its lists, a JSON object."""
    return _has_object(value)


def parse_json_event(
    text: str, start: int, at_given: bool
) -> tuple[str, int | None, dict[str, object]]:
    """Parses the JSON event whose `{` is at `start`: its type, its own time (or None) and its fields."""
    end = len(text.rstrip(" \t"))
    value = _decode(text, start, end)

    def bad(reason: str) -> LineProblem:
        return LineProblem(start, _PREFIX + reason)

    if not isinstance(value, _Obj):
        raise bad("not an object")
    members = dict(value.pairs)
    # Step 3: the event type.
    if "event_type" in members and "type" in members:
        raise bad("both event_type and type")
    etype = members.get("event_type", members.get("type"))
    if not isinstance(etype, str):
        raise bad("missing event_type")
    # Step 4: the time.
    ts: int | None = None
    time_keys = [key for key, _ in value.pairs if key in _TIME_KEYS]
    for key in time_keys:
        t = members[key]
        if not isinstance(t, int) or isinstance(t, bool) or t < 0:
            raise bad(f"bad {key}")
        ts = t
    if len(time_keys) + (1 if at_given else 0) > 1:
        second = time_keys[0] if at_given else time_keys[1]
        raise LineProblem(_member_position(text, start, second), "the event time is given twice")
    # Step 5: data and the members beside it.
    fields: dict[str, object]
    if "data" in members:
        data = members["data"]
        if not isinstance(data, _Obj):
            raise bad("data must be an object")
        for key, _ in value.pairs:
            if key not in _KNOWN_WITH_DATA:
                raise bad(f"unknown member '{key}'")
        fields = dict(data.pairs)
    else:
        fields = {k: v for k, v in value.pairs if k not in ("event_type", "type", "ts", "timestamp")}
    # Step 6: objects inside field values.
    if any(_has_object(v) for v in fields.values() if isinstance(v, (_Obj, list))):
        raise bad("nested objects are not supported")
    return etype, ts, fields


def _member_position(text: str, start: int, wanted: str) -> int:
    """The index of the opening quote of top-level member `wanted` of the (valid) object at `start`."""
    i = start + 1
    depth = 0
    expect_key = True
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = _string_end(text, i)
            if depth == 0 and expect_key:
                if json.loads(text[i:j]) == wanted:
                    return i
                expect_key = False
            i = j
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            expect_key = True
        i += 1
    return start


def _string_end(text: str, i: int) -> int:
    """The index just past the JSON string whose opening quote is at `i`."""
    j = i + 1
    while True:
        q = text.find('"', j)
        k = q - 1
        while text[k] == "\\":
            k -= 1
        # An odd number of backslashes before the quote escapes it.
        if (q - 1 - k) % 2 == 0:
            return q + 1
        j = q + 1
