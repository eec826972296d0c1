"""Counting the events of blocks of `.evt` lines without building the ones a pattern matches.

Owns `BlockCounter`, the checking twin of `BlockScanner` (evt_block_scan.py): the same walk over
the block alternation and the same lines to the `LineParser`, so the same errors and the same
shapes learned, but a line a pattern matched is only counted: a fast-path match proves the line
valid, so its values need no conversion. Kept apart from the scanner because its loops count
where the scanner's yield, which is what makes checking cheaper than reading.
"""

from __future__ import annotations

from varpulis_mp.io.evt_fast import ShapeSet
from varpulis_mp.io.evt_line_parser import LineParser

__all__ = ["BlockCounter"]


class BlockCounter:
    """Counts the events of blocks of LF-separated lines for one `LineParser`."""

    def __init__(self, parser: LineParser) -> None:
        self._parser = parser
        self._learned = parser.learned

    def count(self, block: str, first: int) -> int:
        """How many events `BlockScanner.events` would give, raising the same errors."""
        count = 0
        pos = 0
        n = len(block)
        lineno = first
        learned = self._learned
        done: ShapeSet | None = None
        while pos <= n:
            fast = learned.alternation()
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

    def _count_lines(self, block: str, pos: int, stop: int, lineno: int) -> tuple[int, int, int]:
        """As `BlockScanner._lines`, without building what a pattern matched: how many events, and
        where it stopped."""
        count = 0
        parse = self._parser.parse_unmatched
        learned = self._learned
        while pos <= stop:
            shape = learned.last
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
            if parse(block[pos:end], lineno) is not None:
                count += 1
            pos = end + 1
            lineno += 1
            if learned.rebuild_due():
                break
        return count, pos, lineno
