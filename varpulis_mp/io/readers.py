"""Reading `.evt` event files (VPL.md §11): events, times, and their diagnostics.

Owns the line parser that keeps the `BATCH` time between lines and the public entry points
`read_events` and `check_events`. Lines come from `evt_lines`; text events are parsed by
`evt_text` (precisely, with every diagnostic) and `evt_fast` (the common layouts, fast), JSON
events by `evt_json`.

Blocks of lines are matched against one alternation of the shapes seen so far (`ShapeSet`), so
files that mix event types line by line stay on the fast path. The alternation is rebuilt when
new shapes appear, but only after enough lines went through the precise parser to pay for the
compilation, so that files whose shapes keep changing cost at most a small factor more than
parsing them precisely.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Generator, Iterator
from typing import cast

from varpulis_mp.io.evt_fast import Shape, ShapeSet, compile_shape, fast_kinds, shape_set
from varpulis_mp.io.evt_json import parse_json_event
from varpulis_mp.io.evt_lines import LINE_LIMIT, Source, iter_blocks, iter_lines, line_error
from varpulis_mp.io.evt_text import (
    Event,
    LineProblem,
    is_batch_line,
    parse_at,
    parse_batch,
    parse_text_event,
    read_name,
    skip_ws,
)

__all__ = ["LINE_LIMIT", "Event", "EventParser", "check_events", "iter_blocks", "iter_lines", "read_events"]

# Shapes kept per event type and in all: bounded so that odd files cannot grow memory without end.
_SHAPES_PER_TYPE = 8
_SHAPES_TOTAL = 512
# Shapes in the block alternation: every match's row holds the groups of all of them.
_SET_SHAPES = 16
# Lines through the precise parser, per group of the alternation to build, that pay for building
# it: compiling costs about as much per group as precisely parsing this many lines.
REBUILD_LINES_PER_GROUP = 10
# The common head of a text event: an optional valid `@T` (12 digits cannot overflow) and the type.
_HEAD_RE = re.compile(r"[ \t]*(?:@([0-9]{1,12})(ms|s|m|h)?[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)(?=[ \t]*\{)")
# Only narrows the shapes to try on a line: each shape's pattern checks the whole line itself.
_TYPE_RE = re.compile(r"[ \t]*(?:@[^ \t]*[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)")
_error = line_error


class EventParser:
    """Parses one line at a time, or blocks of lines; keeps the BATCH time between lines."""

    def __init__(self, display_path: str, stream_names: Collection[str] = (),
                 default_time: Callable[[], int] | None = None) -> None:
        self._path = display_path
        self._streams = frozenset(stream_names)
        self._default_time = default_time
        self._batch = 0
        self._batch_seen = False
        self._last: Shape | None = None
        self._now = self._time_without_at
        self._by_type: dict[str, list[Shape]] = {}
        self._known: set[tuple[str, tuple[str, ...], str]] = set()
        # The block alternation: the shapes learned last (oldest first), whether some of them are
        # not in it yet, and the lines parsed precisely since it was built.
        self._recent: list[Shape] = []
        self._set: ShapeSet | None = None
        self._stale = False
        self._slow = 0
        self._rebuild_at = 0
        # Whether the last block had lines the alternation did not match (BATCH, comments, ...).
        self._gaps = False

    @property
    def batch_time(self) -> int:
        """The current `BATCH` time (0 before any `BATCH`)."""
        return self._batch

    def _time_without_at(self) -> int:
        if self._batch_seen or self._default_time is None:
            return self._batch
        return self._default_time()

    def parse_line(self, text: str, lineno: int) -> Event | None:
        """The event on a line; None for comments, empty and BATCH lines. Raises EventFileError."""
        shape = self._last
        if shape is not None:
            m = shape.pattern.match(text)
            # The end check keeps a caller's stray LF from hiding the rest of its text.
            if m is not None and m.end() == len(text):
                return shape.make(m.groups(), lineno, self._now)
        return self._parse_other(text, lineno)

    def _alternation(self) -> ShapeSet | None:
        """The block alternation, rebuilt first when new shapes have paid for it."""
        if self._stale and self._slow >= self._rebuild_at:
            self._set = shape_set(tuple(self._recent))
            self._stale = False
            self._slow = 0
        return self._set

    def parse_block(self, block: str, first: int) -> Iterator[Event]:
        """The events of LF-separated lines, the first being line `first` (as `parse_line` on each)."""
        return cast(Iterator[Event], self._scan(block, first, None))

    def parse_block_reading(self, block: str, first: int, read: frozenset[str]) -> Iterator[Event | str]:
        """As `parse_block`, but a line the fast path takes whose event type is not in `read` gives
        the type's name instead of an event: checked, never built. (Lines the precise parser takes
        still give events, whatever their type.)"""
        return self._scan(block, first, read)

    def _scan(self, block: str, first: int, read: frozenset[str] | None) -> Iterator[Event | str]:
        pos = 0
        n = len(block)
        lineno = first
        now = self._now
        done: ShapeSet | None = None  # an alternation known to match no line from `pos` on
        while pos <= n:
            fast = self._alternation()
            if fast is None or fast is done:
                pos, lineno = yield from self._lines(block, pos, n, lineno)
                continue
            run = fast.run if read is None else fast.reading(read)
            if pos == 0 and not self._gaps:
                # The common case: every line matches, and one C-level call finds them all.
                rows = fast.pattern.findall(block)
                if len(rows) == block.count("\n") + 1:
                    yield from run(rows, lineno, now)
                    return
                self._gaps = True
            gaps = False
            rows = []
            for m in fast.pattern.finditer(block, pos):
                start = m.start()
                if start != pos:
                    gaps = True
                    if rows:
                        yield from run(rows, lineno - len(rows), now)
                        rows = []
                    pos, lineno = yield from self._lines(block, pos, start - 1, lineno)
                    if pos != start:
                        break  # a rebuilt alternation goes on from `pos`
                rows.append(m.groups())
                pos = m.end() + 1
                lineno += 1
            else:
                done = fast
            if rows:
                yield from run(rows, lineno - len(rows), now)
            self._gaps = gaps or pos <= n

    def count_block(self, block: str, first: int) -> int:
        """How many events `parse_block` would give, raising the same errors, without building them."""
        # A fast-path match proves the line valid, so its values need no conversion here.
        count = 0
        pos = 0
        n = len(block)
        lineno = first
        done: ShapeSet | None = None
        while pos <= n:
            fast = self._alternation()
            if fast is None or fast is done:
                k, pos, lineno = self._count_lines(block, pos, n, lineno)
                count += k
                continue
            for m in fast.pattern.finditer(block, pos):
                start = m.start()
                if start != pos:
                    k, pos, lineno = self._count_lines(block, pos, start - 1, lineno)
                    count += k
                    if pos != start:
                        break
                count += 1
                pos = m.end() + 1
                lineno += 1
            else:
                done = fast
        return count

    def _lines(self, block: str, pos: int, stop: int, lineno: int) -> Generator[Event, None, tuple[int, int]]:
        """The events of the lines from `pos` to `stop` (an LF or the end of `block`), one by one.

        Returns where it stopped: at `stop + 1`, or earlier once the alternation is due to be rebuilt.
        """
        now = self._now
        while pos <= stop:
            shape = self._last
            if shape is not None:
                # A run of one shape (which the alternation may not hold) stays on its pattern.
                match = shape.pattern.match
                make = shape.make
                m = match(block, pos, stop)
                while m is not None:
                    yield make(m.groups(), lineno, now)
                    pos = m.end() + 1
                    lineno += 1
                    m = match(block, pos, stop) if pos <= stop else None
                if pos > stop:
                    break
            end = block.find("\n", pos, stop)
            if end < 0:
                end = stop
            event = self._parse_other(block[pos:end], lineno)
            pos = end + 1
            lineno += 1
            if event is not None:
                yield event
            if self._stale and self._slow >= self._rebuild_at:
                break
        return pos, lineno

    def _count_lines(self, block: str, pos: int, stop: int, lineno: int) -> tuple[int, int, int]:
        """As `_lines`, without building what a pattern matched: how many events, and where it stopped."""
        count = 0
        while pos <= stop:
            shape = self._last
            if shape is not None:
                match = shape.pattern.match
                m = match(block, pos, stop)
                while m is not None:
                    count += 1
                    pos = m.end() + 1
                    lineno += 1
                    m = match(block, pos, stop) if pos <= stop else None
                if pos > stop:
                    break
            end = block.find("\n", pos, stop)
            if end < 0:
                end = stop
            if self._parse_other(block[pos:end], lineno) is not None:
                count += 1
            pos = end + 1
            lineno += 1
            if self._stale and self._slow >= self._rebuild_at:
                break
        return count, pos, lineno

    def _parse_other(self, text: str, lineno: int) -> Event | None:
        self._slow += 1
        head = _TYPE_RE.match(text)
        shapes = self._by_type.get(head[1]) if head is not None else None
        if shapes:
            for shape in shapes:
                m = shape.pattern.match(text)
                if m is not None and m.end() == len(text):
                    self._last = shape
                    return shape.make(m.groups(), lineno, self._now)
        try:
            return self._parse_precise(text, skip_ws(text, 0), lineno)
        except LineProblem as p:
            raise _error(self._path, lineno, p.index + 1, p.message, text, p.width, p.hint) from None

    def _parse_precise(self, text: str, i: int, lineno: int) -> Event | None:
        """The precise parser: every diagnostic comes from here."""
        n = len(text)
        if i >= n or text[i] == "#" or text.startswith("//", i):
            return None
        if is_batch_line(text, i):
            self._batch = parse_batch(text, i)
            self._batch_seen = True
            return None
        at: int | None = None
        if text[i] == "@":
            at, i = parse_at(text, i)
        if i < n and text[i] == "{":
            etype, own_ts, fields = parse_json_event(text, i, at is not None)
            if etype in self._streams:
                raise LineProblem(i, f"event type '{etype}' is a stream of the program")
            ts = own_ts if own_ts is not None else at
        else:
            etype, fields, type_at = parse_text_event(text, i)
            if etype in self._streams:
                raise LineProblem(type_at, f"event type '{etype}' is a stream of the program", len(etype))
            ts = at
            self._learn(etype, tuple(fields), text)
        return Event(etype, ts if ts is not None else self._time_without_at(), fields, lineno)

    def _learn(self, etype: str, names: tuple[str, ...], text: str) -> None:
        kinds = fast_kinds(etype, names, text)
        if kinds is None:
            return
        key = (etype, names, kinds)
        if key in self._known:
            return
        if len(self._known) >= _SHAPES_TOTAL:
            self._known.clear()
            self._by_type.clear()
            self._last = None
        self._known.add(key)
        shapes = self._by_type.setdefault(etype, [])
        shapes.insert(0, compile_shape(etype, names, kinds))
        if len(shapes) > _SHAPES_PER_TYPE:
            dropped = shapes.pop()
            self._known.discard((dropped.etype, dropped.names, dropped.kinds))
        self._last = shapes[0]
        recent = self._recent
        if all(s.key != key for s in recent):
            recent.append(shapes[0])
            if len(recent) > _SET_SHAPES:
                del recent[0]
        self._stale = True
        self._rebuild_at = REBUILD_LINES_PER_GROUP * (2 + sum(1 + len(s.names) for s in recent))

    def line_type(self, text: str) -> str | None:
        """The event type of a line, or None for comment, empty and BATCH lines (whose time it keeps).

        Cheap for text events: only the `@` time and the type are checked there, so the receiver of
        the line must still parse it. JSON events are parsed whole. Raises EventFileError (line 0
        is reported as the position when the caller does not know better) for a line it rejects.
        """
        return self.line_type_at(text, 0)

    def line_type_at(self, text: str, lineno: int) -> str | None:
        """As `line_type`, with the line number to put in a diagnostic."""
        m = _HEAD_RE.match(text)
        if m is not None:
            name = m[3]
            if name not in self._streams and (m[1] is not None or name != "BATCH"):
                return name
        try:
            i = skip_ws(text, 0)
            n = len(text)
            if i >= n or text[i] == "#" or text.startswith("//", i):
                return None
            if is_batch_line(text, i):
                self._batch = parse_batch(text, i)
                self._batch_seen = True
                return None
            j = i
            if text[j] == "@":
                j = parse_at(text, j)[1]
            if j < n and text[j] != "{":
                end = read_name(text, j)
                if end > j and text[j:end] not in self._streams:
                    return text[j:end]
        except LineProblem as p:
            raise _error(self._path, lineno, p.index + 1, p.message, text, p.width, p.hint) from None
        event = self.parse_line(text, lineno)
        return None if event is None else event.type


# ---------------------------------------------------------------------------------------------------
# Entry points


def read_events(source: Source, display_path: str, stream_names: Collection[str] = (),
                default_time: Callable[[], int] | None = None,
                stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """The events of an event file in file order, streamed; raises EventFileError at the first bad line.

    Once `stop()` is true the events end at the last whole line read (see `iter_blocks`)."""
    parser = EventParser(display_path, stream_names, default_time)
    for first, block in iter_blocks(source, display_path, stop):
        yield from parser.parse_block(block, first)


def check_events(source: Source, display_path: str, stream_names: Collection[str] = ()) -> int:
    """Reads an event file to its end and returns how many events it holds; raises EventFileError."""
    parser = EventParser(display_path, stream_names)
    count = 0
    for first, block in iter_blocks(source, display_path):
        count += parser.count_block(block, first)
    return count
