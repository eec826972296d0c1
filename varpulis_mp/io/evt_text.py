"""Text events, times and `BATCH` lines of `.evt` files (VPL.md §11.1, §11.2).

Owns the precise, position-reporting parser of a text event line. It is the only one that
reports problems; the fast path beside it (`evt_fast`) hands it every line it does not match.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)

_UNITS: dict[str | None, int] = {None: 1, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_TIME_RE = re.compile(r"([0-9]+)(ms|s|m|h)?")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)")
_BARE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_NONFINITE_RE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
# A value token ends at whitespace, `,`, `}` or `]` (§11.2).
_TOKEN_END_RE = re.compile(r"[ \t,}\]]")
_WS = " \t"
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_KEYWORDS: dict[str, object] = {"true": True, "false": False, "null": None, "nil": None}
# int() refuses digit strings beyond a few thousand digits; anything this long is out of range anyway.
_MAX_INT_DIGITS = 25


@dataclass(slots=True)
class Event:
    """One input event: its type, its time in ms, its fields in file order, and its 1-based line."""

    type: str
    ts: int
    fields: dict[str, object]
    line: int


class LineProblem(Exception):
    """A bad line, located by a 0-based index into the line as read; the caller adds path and line."""

    def __init__(self, index: int, message: str, width: int = 1, hint: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.message = message
        self.width = width
        self.hint = hint


def skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


def parse_time(token: str) -> int | None:
    """The value in ms of a time `T` (digits, optional unit), or None when it is not one."""
    m = _TIME_RE.fullmatch(token)
    if m is None or len(m[1]) > _MAX_INT_DIGITS:
        return None
    value = int(m[1]) * _UNITS[m[2]]
    return value if value <= I64_MAX else None


_TIME_HINT = "write digits with an optional unit ms, s, m or h, e.g. 1500, 1500ms, 2s, 1m"


def parse_at(text: str, i: int) -> tuple[int, int]:
    """`text[i]` is `@`: returns the time and the index where the event part starts."""
    j = i + 1
    k = j
    n = len(text)
    while k < n and text[k] not in _WS:
        k += 1
    value = parse_time(text[j:k])
    if value is None:
        raise LineProblem(j, "invalid event time", max(1, k - j), _TIME_HINT)
    return value, skip_ws(text, k)


def is_batch_line(text: str, i: int) -> bool:
    if not text.startswith("BATCH", i):
        return False
    nxt = i + 5
    return nxt >= len(text) or not (text[nxt].isascii() and (text[nxt].isalnum() or text[nxt] == "_"))


def parse_batch(text: str, i: int) -> int:
    """`text[i:]` starts with the word `BATCH`: returns its time."""
    j = skip_ws(text, i + 5)
    token = text[j:].rstrip(_WS)
    value = parse_time(token) if j > i + 5 else None
    if value is None:
        raise LineProblem(j, "invalid BATCH time", max(1, len(token)), _TIME_HINT)
    return value


def read_name(text: str, i: int) -> int:
    """The end of the name starting at `i`, or `i` when none starts there."""
    m = _NAME_RE.match(text, i)
    return i if m is None else m.end()


def parse_text_event(text: str, i: int) -> tuple[str, dict[str, object], int]:
    """Parses the text event starting at index `i`: its type, its fields and the index of the type."""
    type_end = read_name(text, i)
    if type_end == i:
        raise LineProblem(i, "expected an event type")
    etype = text[i:type_end]
    j = skip_ws(text, type_end)
    if j >= len(text) or text[j] != "{":
        raise LineProblem(j, "expected '{'")
    fields: dict[str, object] = {}
    j = skip_ws(text, j + 1)
    n = len(text)
    while True:
        if j < n and text[j] == "}":
            break
        name_end = read_name(text, j)
        if name_end == j:
            raise LineProblem(j, "expected a field name or '}'")
        name = text[j:name_end]
        if name in fields:
            raise LineProblem(j, f"duplicate field '{name}'", name_end - j)
        k = skip_ws(text, name_end)
        if k >= n or text[k] != ":":
            raise LineProblem(k, "expected ':' after field name")
        value, j = parse_value(text, skip_ws(text, k + 1))
        fields[name] = value
        j = skip_ws(text, j)
        if j < n and text[j] == ",":
            j = skip_ws(text, j + 1)
            continue
        if j < n and text[j] == "}":
            break
        raise LineProblem(j, "expected ',' or '}' after a field value")
    j = skip_ws(text, j + 1)
    if j < n and text[j] == ";":
        j = skip_ws(text, j + 1)
    if j < n:
        raise LineProblem(j, "unexpected text after '}'")
    return etype, fields, i


def parse_value(text: str, i: int) -> tuple[object, int]:
    """One field value at `i` (lists without recursion, so any depth is safe): (value, end index)."""
    stack: list[tuple[list[object], int]] = []  # open lists with the index of their `[`
    n = len(text)
    while True:
        if i < n and text[i] == "[":
            stack.append(([], i))
            i = skip_ws(text, i + 1)
            if i < n and text[i] == "]":
                value: object = stack.pop()[0]
                i += 1
            else:
                continue
        else:
            value, i = _scalar(text, i)
        # Close every list this value completes, then go on to the next element.
        while stack:
            items, _ = stack[-1]
            items.append(value)
            i = skip_ws(text, i)
            if i < n and text[i] == ",":
                i = skip_ws(text, i + 1)
                if i < n and text[i] == "]":
                    value = stack.pop()[0]
                    i += 1
                    continue
                break
            if i < n and text[i] == "]":
                value = stack.pop()[0]
                i += 1
                continue
            raise LineProblem(i, "invalid value: expected ',' or ']' in a list")
        else:
            return value, i


def _scalar(text: str, i: int) -> tuple[object, int]:
    n = len(text)
    if i >= n or text[i] in ",}]":
        raise LineProblem(i, "invalid value")
    c = text[i]
    if c == '"' or c == "'":
        return _string(text, i)
    if c == "{":
        raise LineProblem(i, "invalid value: nested objects are not supported")
    m = _TOKEN_END_RE.search(text, i)
    end = n if m is None else m.start()
    token = text[i:end]
    width = end - i
    if _INT_RE.fullmatch(token):
        digits = token.lstrip("+-")
        if len(digits) > _MAX_INT_DIGITS:
            raise LineProblem(i, "number out of range", width)
        value = int(token)
        if not I64_MIN <= value <= I64_MAX:
            raise LineProblem(i, "number out of range", width)
        return value, end
    if _FLOAT_RE.fullmatch(token):
        f = float(token)
        if math.isinf(f):
            raise LineProblem(i, "number out of range", width)
        return f, end
    if token in _KEYWORDS:
        return _KEYWORDS[token], end
    if _NONFINITE_RE.fullmatch(token):
        raise LineProblem(i, "non-finite numbers are not allowed", width)
    if _BARE_RE.fullmatch(token):
        return token, end
    raise LineProblem(i, "invalid value", max(1, width))


def _string(text: str, i: int) -> tuple[str, int]:
    quote = text[i]
    n = len(text)
    j = i + 1
    parts: list[str] = []
    start = j
    while True:
        # Jump to the next quote or backslash in one C-level search.
        q = text.find(quote, j)
        b = text.find("\\", j, q if q >= 0 else n)
        if b >= 0:
            parts.append(text[start:b])
            if b + 1 >= n:
                raise LineProblem(i, "unterminated string")
            esc = _ESCAPES.get(text[b + 1])
            if esc is None:
                raise LineProblem(b, "invalid escape sequence", 2)
            parts.append(esc)
            j = start = b + 2
            continue
        if q < 0:
            raise LineProblem(i, "unterminated string")
        parts.append(text[start:q])
        end = q + 1
        if end < n and text[end] not in " \t,}]":
            raise LineProblem(i, "invalid value", end + 1 - i)
        return "".join(parts), end
