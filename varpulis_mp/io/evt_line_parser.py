"""Reading one `.evt` line at a time (VPL.md §11): the `BATCH` time between lines, and every diagnostic.

Owns `LineParser`: a line goes to the shape of the line before it, then to the shapes learned for
its type (`ShapeMemory`), then to the precise parser, which alone reports problems and teaches the
memory the shapes of the text events it accepts. Text events are parsed precisely by `evt_text`,
JSON events by `evt_json`. Also owns `line_type`, which tells a line's event type without building
its event where it can.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from varpulis_mp.errors import EventFileError
from varpulis_mp.io.evt_json import parse_json_event
from varpulis_mp.io.evt_lines import line_error
from varpulis_mp.io.evt_shape_memory import ShapeMemory
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

__all__ = ["LineParser"]

# The common head of a text event: an optional valid `@T` (12 digits cannot overflow) and the type.
_HEAD_RE = re.compile(r"[ \t]*(?:@([0-9]{1,12})(ms|s|m|h)?[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)(?=[ \t]*\{)")


class LineParser:
    """Parses one line at a time and keeps the BATCH time between lines. Event types in
    `stream_names` are rejected; `default_time()` is the time of an event without `@T` before
    any `BATCH` (without it, 0)."""

    def __init__(self, display_path: str, stream_names: Collection[str] = (),
                 default_time: Callable[[], int] | None = None) -> None:
        self._path = display_path
        self._streams = frozenset(stream_names)
        self._default_time = default_time
        self._batch = 0
        self._batch_seen = False
        self._now = self.time_without_at  # bound once: every event made passes it on
        self.learned = ShapeMemory()

    @property
    def batch_time(self) -> int:
        """The current `BATCH` time (0 before any `BATCH`)."""
        return self._batch

    def time_without_at(self) -> int:
        """The time of an event without `@T`: the BATCH time, or `default_time()` before any."""
        if self._batch_seen or self._default_time is None:
            return self._batch
        return self._default_time()

    def parse_line(self, text: str, lineno: int) -> Event | None:
        """The event on a line; None for comments, empty and BATCH lines. Raises EventFileError."""
        shape = self.learned.last
        if shape is not None:
            m = shape.pattern.match(text)
            # The end check keeps a caller's stray LF from hiding the rest of its text.
            if m is not None and m.end() == len(text):
                return shape.make(m.groups(), lineno, self._now)
        return self.parse_unmatched(text, lineno)

    def parse_unmatched(self, text: str, lineno: int) -> Event | None:
        """As `parse_line`, for a line the last line's shape did not take (counted in `learned.slow`)."""
        learned = self.learned
        learned.slow += 1
        event = learned.make_known(text, lineno, self._now)
        if event is not None:
            return event
        try:
            return self._parse_precise(text, skip_ws(text, 0), lineno)
        except LineProblem as p:
            raise self._error(lineno, p, text) from None

    def _error(self, lineno: int, p: LineProblem, text: str) -> EventFileError:
        return line_error(self._path, lineno, p.index + 1, p.message, text, p.width, p.hint)

    def _holds_no_event(self, text: str, i: int) -> bool:
        """Whether the line from `text[i]` (past the leading blanks) is empty, a comment or a BATCH
        line, whose time it keeps (raising LineProblem for a bad one)."""
        if i >= len(text) or text[i] == "#" or text.startswith("//", i):
            return True
        if is_batch_line(text, i):
            self._batch = parse_batch(text, i)
            self._batch_seen = True
            return True
        return False

    def _parse_precise(self, text: str, i: int, lineno: int) -> Event | None:
        """The precise parser, from `text[i]` (past the leading blanks): every diagnostic comes from here."""
        if self._holds_no_event(text, i):
            return None
        n = len(text)
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
            self.learned.learn(etype, tuple(fields), text)
        return Event(etype, ts if ts is not None else self.time_without_at(), fields, lineno)

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
            if self._holds_no_event(text, i):
                return None
            n = len(text)
            j = i
            if text[j] == "@":
                j = parse_at(text, j)[1]
            if j < n and text[j] != "{":
                end = read_name(text, j)
                if end > j and text[j:end] not in self._streams:
                    return text[j:end]
        except LineProblem as p:
            raise self._error(lineno, p, text) from None
        event = self.parse_line(text, lineno)
        return None if event is None else event.type
