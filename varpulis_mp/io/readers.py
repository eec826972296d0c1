"""Reading `.evt` event files (VPL.md §11): events, times, and their diagnostics.

Owns `EventParser`, the one parser of `.evt` lines every reader uses, and the public entry points
`read_events` and `check_events`. Lines come from `evt_lines`. The parser is put together from
collaborators, one module each: `LineParser` (evt_line_parser.py) parses one line at a time,
keeps the `BATCH` time and gives every diagnostic; `ShapeMemory` (evt_shape_memory.py) holds the
shapes it learned and their block alternation; `BlockScanner` (evt_block_scan.py) reads whole
blocks of lines through that alternation, and counts them by reading them with no type to build.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

from varpulis_mp.io.evt_block_scan import BlockScanner
from varpulis_mp.io.evt_line_parser import LineParser
from varpulis_mp.io.evt_lines import LINE_LIMIT, Source, iter_blocks, iter_lines
from varpulis_mp.io.evt_text import Event

__all__ = ["LINE_LIMIT", "Event", "EventParser", "check_events", "iter_blocks", "iter_lines", "read_events"]


class EventParser(LineParser):
    """Parses one line at a time (`LineParser`: `parse_line`, `line_type`, `batch_time`), or
    blocks of lines; keeps the BATCH time between lines."""

    def __init__(self, display_path: str, stream_names: Collection[str] = (),
                 default_time: Callable[[], int] | None = None) -> None:
        super().__init__(display_path, stream_names, default_time)
        self._scanner = BlockScanner(self)

    def parse_block(self, block: str, first: int) -> Iterator[Event]:
        """The events of LF-separated lines, the first being line `first` (as `parse_line` on each)."""
        return self._scanner.events(block, first)

    def parse_block_reading(self, block: str, first: int, read: frozenset[str]) -> Iterator[Event | str]:
        """As `parse_block`, but a line the fast path takes whose event type is not in `read` gives
        the type's name instead of an event: checked, never built. (Lines the precise parser takes
        still give events, whatever their type.)"""
        return self._scanner.reading(block, first, read)

    def count_block(self, block: str, first: int) -> int:
        """How many events `parse_block` would give, raising the same errors, without building the
        ones the alternation matches (each gives its type's name instead)."""
        return sum(1 for _ in self._scanner.reading(block, first, frozenset()))


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
