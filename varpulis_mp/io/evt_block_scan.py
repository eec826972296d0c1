"""The events of blocks of `.evt` lines, matched against one alternation of the shapes seen so far.

Owns `BlockScanner`: a block is matched against the block alternation (`ShapeMemory.alternation`),
so files that mix event types line by line stay on the fast path; the lines it does not match
(BATCH lines, comments, new shapes, errors) go one by one to the `LineParser`, which may rebuild
the alternation on the way, and the scan goes on with the new one.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import cast

from varpulis_mp.io.evt_fast import ShapeSet
from varpulis_mp.io.evt_line_parser import LineParser
from varpulis_mp.io.evt_text import Event

__all__ = ["BlockScanner"]


class BlockScanner:
    """Parses blocks of LF-separated lines for one `LineParser`, giving what its `parse_line`
    would give on each line, in order, and raising the same errors."""

    def __init__(self, parser: LineParser) -> None:
        self._parser = parser
        self._learned = parser.learned
        # Whether the last block had lines the alternation did not match (BATCH, comments, ...).
        self._gaps = False

    def events(self, block: str, first: int) -> Iterator[Event]:
        """The events of `block`, its first line being line `first`."""
        return cast(Iterator[Event], self._scan(block, first, None))

    def reading(self, block: str, first: int, read: frozenset[str]) -> Iterator[Event | str]:
        """As `events`, but a line the alternation takes whose event type is not in `read` gives
        the type's name instead of an event: checked, never built. (Lines the line parser takes
        still give events, whatever their type.)"""
        return self._scan(block, first, read)

    def _scan(self, block: str, first: int, read: frozenset[str] | None) -> Iterator[Event | str]:
        pos = 0
        n = len(block)
        lineno = first
        now = self._parser.time_without_at
        learned = self._learned
        done: ShapeSet | None = None  # an alternation known to match no line from `pos` on
        while pos <= n:
            fast = learned.alternation()
            if fast is None or fast is done:
                pos, lineno = yield from self._lines(block, pos, n, lineno)
                continue
            run = fast.run if read is None else fast.reading(read)
            if pos == 0 and not self._gaps:
                # The common case: every line matches, and one C-level call finds them all; first
                # with the lines' own spacing (the layouts), which gives the same rows faster.
                lines = block.count("\n") + 1
                layouts = learned.layouts()
                if layouts is not None:
                    rows = layouts.findall(block)
                    if len(rows) == lines:
                        yield from run(rows, lineno, now)
                        return
                rows = fast.pattern.findall(block)
                if len(rows) == lines:
                    if layouts is not None:
                        learned.layouts_missed()  # the lines are not all spaced as the samples
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

    def _lines(self, block: str, pos: int, stop: int, lineno: int) -> Generator[Event, None, tuple[int, int]]:
        """The events of the lines from `pos` to `stop` (an LF or the end of `block`), one by one.

        Returns where it stopped: at `stop + 1`, or earlier once the alternation is due to be rebuilt.
        """
        now = self._parser.time_without_at
        parse = self._parser.parse_unmatched
        learned = self._learned
        while pos <= stop:
            shape = learned.last
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
            event = parse(block[pos:end], lineno)
            pos = end + 1
            lineno += 1
            if event is not None:
                yield event
            if learned.rebuild_due():
                break
        return pos, lineno
