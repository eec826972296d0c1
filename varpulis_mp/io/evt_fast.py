"""The fast path of text events (VPL.md §11.2): compiled shapes and their alternation.

A shape is one (event type, field-name sequence, value kinds) combination, compiled to a regular
expression that accepts the common simple layout of such a line and to code that builds exactly
the event the precise parser (`evt_text`) would. A `ShapeSet` joins several shapes into one
alternation matched across a whole block of lines, so that a file mixing event types costs one
C-level scan per block instead of one lookup and one match per line. Nothing here reports
problems: whatever the fast path does not match is handed to the precise parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from varpulis_mp.io.evt_text import _KEYWORDS, _NAME_RE, _UNITS, Event

__all__ = ["ReadRunner", "Shape", "ShapeSet", "compile_shape", "fast_kinds", "shape_set"]

_FWS = r"[ \t]*"
_FAST_AT = r"[ \t]*(?:@([0-9]{1,12})(ms|s|m|h)?[ \t]+)?"
# Bounded digit counts keep every number the fast path accepts in range, so it needs no range check.
_FAST_INT = r"[+-]?[0-9]{1,18}"
_FAST_FLOAT = r"[+-]?(?:(?:[0-9]{1,15}\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?|[0-9]{1,15}[eE][+-]?[0-9]{1,2})"
# The text of a value of each kind, as captured (a string's without its quotes).
_KIND_VALUE = {"S": r'[^"\\\n]*', "I": _FAST_INT, "F": _FAST_FLOAT,
               "W": r"(?!(?i:inf|infinity|nan)[ \t,}])[A-Za-z_][A-Za-z0-9_.-]*"}
_FAST_STRING = f'"({_KIND_VALUE["S"]})"'
_FAST_WORD = f"({_KIND_VALUE['W']})"
# The kinds of fast value: S a plain double-quoted string, I an int, F a float, W a word (a keyword
# or a bare-word string). One kind per field keeps the pattern free of alternatives to backtrack.
# The kinds are disjoint (quote, digit or sign without `.`/exponent, with one, letter), so at most
# one shape of a given type and field names can match a line.
_KIND_PATTERN = {"S": _FAST_STRING, "I": f"({_FAST_INT})", "F": f"({_FAST_FLOAT})", "W": _FAST_WORD}
_KIND_CODE = {"S": "g[{k}]", "I": "int(g[{k}])", "F": "float(g[{k}])", "W": "KW.get(g[{k}], g[{k}])"}
# The learning pattern: any kind in any field, telling which one each field has.
_ANY_VALUE = f"(?:{_FAST_STRING}|({_FAST_INT})|({_FAST_FLOAT})|{_FAST_WORD})"
# The end of a line: an optional `;` and spaces. Every value pattern excludes LF, so a match
# never runs into the next line.
_FAST_END = _FWS + ";?" + _FWS
# Time units by the text of the unit group: `findall` gives "" and `groups` None for no unit.
_UNIT_OF: dict[str | None, int] = {**_UNITS, "": 1}

EventMaker = Callable[[tuple[str | None, ...], int, Callable[[], int]], Event]
Rows = Iterable[tuple[str | None, ...]]
RowRunner = Callable[[Rows, int, Callable[[], int]], Iterator[Event]]
# As a RowRunner, but a row of a type nobody reads gives its type's name instead of an event.
ReadRunner = Callable[[Rows, int, Callable[[], int]], Iterator[Event | str]]
# feed(rows, idx, first, time_without_at, push): push(first + idx[k], ts, fields) for the k-th row.
RowFeeder = Callable[[Rows, list[int], int, Callable[[], int], Callable[[int, int, dict[str, object]], None]], None]


@dataclass(frozen=True, slots=True)
class Shape:
    """The compiled fast path of one (event type, field names, value kinds) shape.

    `pattern.match(text, pos)` accepts one whole line starting at `pos` (ended by an LF or the end
    of `text`); `make(groups, lineno, time_without_at)` builds its event.
    """

    etype: str
    names: tuple[str, ...]
    kinds: str
    pattern: re.Pattern[str]
    make: EventMaker

    @property
    def key(self) -> tuple[str, tuple[str, ...], str]:
        return (self.etype, self.names, self.kinds)


def _branch(etype: str, names: tuple[str, ...], values: list[str]) -> str:
    """The pattern source of `Type { fields }`, without the `@` time and the line end."""
    for name in (etype, *names):
        if _NAME_RE.fullmatch(name) is None:
            raise ValueError(f"not a name: {name!r}")
    sep = _FWS + "," + _FWS
    body = sep.join(re.escape(n) + _FWS + ":" + _FWS + v for n, v in zip(names, values, strict=True))
    if names:
        body += _FWS + ",?"
    return re.escape(etype) + _FWS + r"\{" + _FWS + body + _FWS + r"\}"


def _line_pattern(etype: str, names: tuple[str, ...], values: list[str]) -> re.Pattern[str]:
    return re.compile(_FAST_AT + _branch(etype, names, values) + _FAST_END + r"(?=\n|\Z)")


@lru_cache(maxsize=256)
def _learning_pattern(etype: str, names: tuple[str, ...]) -> re.Pattern[str]:
    return _line_pattern(etype, names, [_ANY_VALUE] * len(names))


def fast_kinds(etype: str, names: tuple[str, ...], text: str) -> str | None:
    """The value kinds of a line the precise parser accepted, or None when it is not fast-path material."""
    m = _learning_pattern(etype, names).match(text)
    if m is None:
        return None
    g = m.groups()
    kinds = []
    for k in range(len(names)):
        first = 2 + 4 * k
        kinds.append(next(kind for d, kind in enumerate("SIFW") if g[first + d] is not None))
    return "".join(kinds)


def _fields_source(names: tuple[str, ...], kinds: str, first: int) -> str:
    """The source of the fields dict of a shape whose first value group is `g[first]`."""
    # Only validated ASCII names and integers reach generated source.
    items = [f"{name!r}: " + _KIND_CODE[kind].format(k=first + k)
             for k, (name, kind) in enumerate(zip(names, kinds, strict=True))]
    return "{" + ", ".join(items) + "}"


def _generated(source: str, name: str) -> object:
    namespace: dict[str, object] = {"KW": _KEYWORDS, "U": _UNIT_OF, "Event": Event}
    exec(source, namespace)
    return namespace[name]


@lru_cache(maxsize=1024)
def compile_shape(etype: str, names: tuple[str, ...], kinds: str) -> Shape:
    """The pattern and the event maker of a shape; names must be valid VPL names."""
    pattern = _line_pattern(etype, names, [_KIND_PATTERN[k] for k in kinds])
    # The maker is generated as one expression, so a line costs one call and no loop.
    source = (
        "def make(g, line, now):\n"
        f"    return Event({etype!r}, int(g[0]) * U[g[1]] if g[0] is not None else now(), "
        f"{_fields_source(names, kinds, 2)}, line)\n"
    )
    make = _generated(source, "make")
    assert callable(make)
    return Shape(etype, names, kinds, pattern, make)


@dataclass(frozen=True, slots=True)
class ShapeSet:
    """Several shapes as one alternation over whole lines, for scanning blocks of lines.

    `pattern` (multi-line mode) matches exactly the lines that one of the shapes' own patterns
    matches, each match being one whole line; `pattern.findall(block)` or the `groups()` of its
    matches give rows, and `run(rows, first_line, time_without_at)` yields their events. A set of
    one shape also has `feed`, which hands each row's time and fields straight to a consumer,
    building no Event.
    """

    shapes: tuple[Shape, ...]
    pattern: re.Pattern[str]
    run: RowRunner
    feed: RowFeeder | None = None

    @property
    def groups(self) -> int:
        return self.pattern.groups

    def reading(self, read: frozenset[str]) -> ReadRunner:
        """A runner that builds the events of the types in `read` only; every other row gives its
        type's name: counted, never built (a live run's input thread, whose streams may read few
        of the types that arrive)."""
        return _read_runner(tuple(s.key for s in self.shapes), read)


def shape_set(shapes: tuple[Shape, ...]) -> ShapeSet:
    """The alternation of `shapes` (at least one)."""
    return _shape_set(tuple(s.key for s in shapes))


@lru_cache(maxsize=64)
def _shape_set(keys: tuple[tuple[str, tuple[str, ...], str], ...]) -> ShapeSet:
    shapes = tuple(compile_shape(*key) for key in keys)
    # Groups 1-2 are the shared `@` time; each branch captures its type name (never empty), which
    # tells the branch that matched, then its values.
    branches = []
    lines = ["def run(rows, line, now):", "    for g in rows:",
             "        t = int(g[0]) * U[g[1]] if g[0] else now()"]
    group = 2
    for k, s in enumerate(shapes):
        values = [_KIND_PATTERN[kind] for kind in s.kinds]
        branch = _branch(s.etype, s.names, values)
        branches.append("(" + branch[: len(re.escape(s.etype))] + ")" + branch[len(re.escape(s.etype)):])
        event = f"Event({s.etype!r}, t, {_fields_source(s.names, s.kinds, group + 1)}, line)"
        if k == len(shapes) - 1:
            lines.append("        else:" if k else "        if True:")
        else:
            lines.append(f"        {'elif' if k else 'if'} g[{group}]:")
        lines.append(f"            yield {event}")
        group += 1 + len(s.names)
    lines.append("        line += 1")
    pattern = re.compile("^" + _FAST_AT + "(?:" + "|".join(branches) + ")" + _FAST_END + "$", re.MULTILINE)
    assert pattern.groups == group
    run = _generated("\n".join(lines) + "\n", "run")
    assert callable(run)
    feed: RowFeeder | None = None
    if len(shapes) == 1:
        s = shapes[0]
        source = (
            "def feed(rows, idx, first, now, push):\n"
            "    for g, i in zip(rows, idx):\n"
            f"        push(first + i, int(g[0]) * U[g[1]] if g[0] else now(), {_fields_source(s.names, s.kinds, 3)})\n"
        )
        made = _generated(source, "feed")
        assert callable(made)
        feed = made
    return ShapeSet(shapes, pattern, run, feed)


@lru_cache(maxsize=64)
def _read_runner(keys: tuple[tuple[str, tuple[str, ...], str], ...], read: frozenset[str]) -> ReadRunner:
    # The branches of `_shape_set`'s run, each building its event only when its type is read.
    lines = ["def run(rows, line, now):", "    for g in rows:"]
    group = 2
    for k, (etype, names, kinds) in enumerate(keys):
        if k == len(keys) - 1:
            lines.append("        else:" if k else "        if True:")
        else:
            lines.append(f"        {'elif' if k else 'if'} g[{group}]:")
        if etype in read:
            lines.append(f"            yield Event({etype!r}, int(g[0]) * U[g[1]] if g[0] else now(), "
                         f"{_fields_source(names, kinds, group + 1)}, line)")
        else:
            lines.append(f"            yield {etype!r}")
        group += 1 + len(names)
    lines.append("        line += 1")
    run = _generated("\n".join(lines) + "\n", "run")
    assert callable(run)
    return run
