"""The layout of a fast-path shape's lines (VPL.md §11.2): its pattern with the spacing fixed.

A shape's pattern (`evt_fast`) accepts optional spaces and tabs around every part of a line, and
those `[ \\t]*` are most of what the regular-expression engine spends on a line. A file's lines
are nearly always written one way, so a `Layout` is the shape's pattern with every part between
the captured values fixed as one sample line has it (its spaces, its optional comma and semicolon,
its time's unit), the values matched by the same sub-patterns. It matches a subset of the shape's
lines, and a line it matches gets the same groups as from the shape's pattern (the parse of a line
is unique: each value ends where a delimiter the value cannot hold follows), so its rows are
interchangeable with the shape's; a line it misses is left to the shape's pattern.

`Layout.keys(k, text)` reads the same layout cut after the k-th value and the delimiter that ends
it: the text of one field of every line, without reading the rest of the line. A line it reads
has that field where the precise parser reads it, with the same text, whatever the rest of the
line holds (fields are read in order, and a field given twice is an error); a pool's worker sorts
its lines out by it before parsing them (runtime/pool_rows.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from varpulis_mp.io.evt_fast import _KIND_CODE, _KIND_VALUE, Shape, shape_set
from varpulis_mp.io.evt_text import _KEYWORDS

__all__ = ["Layout", "kind_value", "layout", "layout_alternation"]

# The `@` time's digits, captured and not, as evt_fast's `_FAST_AT` has them.
_DIGITS = ("([0-9]{1,12})", "[0-9]{1,12}")
_EMPTY = ("()", "")


@dataclass(frozen=True, slots=True)
class Layout:
    """A shape's pattern spaced as a sample line (see the module docstring).

    `parts` has one item per group of the shape's row (time, unit, type name, then the values):
    the literal text before the group (a pattern source), the group's source and the same without
    its capture; `tail` is the literal text after the last group. `pattern` (multi-line mode)
    matches whole lines and gives the rows the shape's pattern would.
    """

    parts: tuple[tuple[str, str, str], ...]
    tail: str

    @property
    def pattern(self) -> re.Pattern[str]:
        return _compiled(self.parts, self.tail, -1)

    def keys(self, k: int, text: str) -> list[str]:
        """The k-th value's text of each line of `text` whose start, up to that value and the
        delimiter after it, is as the layout has it (the rest of the line is not read)."""
        # Matched from the newline before each line: a literal first character lets the engine
        # skip to the next line start, where `^` would be tried at every position.
        found: list[str] = _compiled(self.parts, self.tail, 3 + k).findall("\n" + text)
        return found


def layout(shape: Shape, line: str) -> Layout | None:
    """The layout of `line`, a line of `shape` (None when the shape's pattern does not match it)."""
    m = shape_set((shape,)).pattern.match(line)
    if m is None:
        return None
    # The time's unit is fixed too (an alternative of four costs as much as the rest of the time).
    unit = m.group(2)
    sources = [_DIGITS if m.start(1) >= 0 else _EMPTY, _EMPTY if unit is None else (f"({unit})", unit),
               ("(" + re.escape(shape.etype) + ")", re.escape(shape.etype)),
               *((f"({_KIND_VALUE[kind]})", _KIND_VALUE[kind]) for kind in shape.kinds)]
    parts = []
    pos = 0
    for g, (captured, bare) in enumerate(sources, 1):
        start, end = m.span(g)
        if start < 0:  # no unit, or no time: the group is empty where it would be
            start = end = pos
        parts.append((re.escape(line[pos:start]), captured, bare))
        pos = end
    return Layout(tuple(parts), re.escape(line[pos:]))


@lru_cache(maxsize=256)
def _compiled(parts: tuple[tuple[str, str, str], ...], tail: str, key: int) -> re.Pattern[str]:
    if key < 0:
        source = "".join(lit + captured for lit, captured, _ in parts) + tail + "$"
    else:
        # The value's delimiter is in the literal text after it: the value ends where the
        # shape's pattern would end it.
        after = parts[key + 1][0] if key + 1 < len(parts) else tail
        source = "".join(lit + (captured if g == key else bare) for g, (lit, captured, bare)
                         in enumerate(parts[:key + 1])) + after
    pattern = re.compile("^" + source, re.MULTILINE) if key < 0 else re.compile("\n" + source)
    assert pattern.groups == (len(parts) if key < 0 else 1)
    return pattern


def layout_alternation(layouts: tuple[Layout, ...]) -> re.Pattern[str] | None:
    """The layouts of a `ShapeSet`'s shapes (in its order) as one alternation whose rows are the
    set's rows (the time and its unit first, then each branch's type name and values), or None when
    their lines do not begin alike up to the type name (the alternation shares that part)."""
    heads = {(*layout.parts[0], *layout.parts[1], layout.parts[2][0]) for layout in layouts}
    if len(heads) != 1:
        return None
    return _alternation(layouts)


@lru_cache(maxsize=64)
def _alternation(layouts: tuple[Layout, ...]) -> re.Pattern[str]:
    first = layouts[0].parts
    head = first[0][0] + first[0][1] + first[1][0] + first[1][1] + first[2][0]
    branches = [layout.parts[2][1] + "".join(lit + captured for lit, captured, _ in layout.parts[3:]) + layout.tail
                for layout in layouts]
    pattern = re.compile("^" + head + "(?:" + "|".join(branches) + ")$", re.MULTILINE)
    assert pattern.groups == 2 + sum(len(layout.parts) - 2 for layout in layouts)
    return pattern


@lru_cache(maxsize=16)
def kind_value(kind: str) -> Callable[[str], object]:
    """The value of a captured text of `kind`, built as the shape's rows build it."""
    namespace: dict[str, object] = {"KW": _KEYWORDS}
    exec("def value(t):\n    g = (t,)\n    return " + _KIND_CODE[kind].format(k=0) + "\n", namespace)
    made = namespace["value"]
    assert callable(made)
    return made
