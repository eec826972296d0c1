"""Reading `.evt` event files (VPL.md §11): lines, events, times, and their diagnostics.

Owns the streaming line splitter (UTF-8, byte-order mark, CRLF, the 1 MiB line limit, all checked
without holding more than a bounded amount of the input), the line parser that keeps the `BATCH`
time between lines, and the public entry points `read_events` and `check_events`. Text events and
JSON events are parsed by `evt_text` and `evt_json`.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Callable, Collection, Iterator
from typing import BinaryIO

from varpulis_mp.errors import Diagnostic, EventFileError, SourcePos
from varpulis_mp.io.evt_json import parse_json_event
from varpulis_mp.io.evt_text import (
    Event,
    LineProblem,
    Shape,
    compile_shape,
    fast_kinds,
    is_batch_line,
    parse_at,
    parse_batch,
    parse_text_event,
    read_name,
    skip_ws,
)

__all__ = ["LINE_LIMIT", "Event", "EventParser", "check_events", "iter_blocks", "iter_lines", "read_events"]

LINE_LIMIT = 1 << 20
_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"
# Shapes kept per event type and in all: bounded so that odd files cannot grow memory without end.
_SHAPES_PER_TYPE = 8
_SHAPES_TOTAL = 512

Source = str | os.PathLike[str] | BinaryIO
# The common head of a text event: an optional valid `@T` (12 digits cannot overflow) and the type.
_HEAD_RE = re.compile(r"[ \t]*(?:@([0-9]{1,12})(ms|s|m|h)?[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)(?=[ \t]*\{)")


def _error(path: str, lineno: int, col: int, message: str, source_line: str, width: int = 1,
           hint: str | None = None) -> EventFileError:
    return EventFileError([Diagnostic(path=path, pos=SourcePos(lineno, col), severity="error",
                                      message=message, source_line=source_line, width=width, hint=hint)])


class EventParser:
    """Parses one line at a time; keeps the BATCH time between lines."""

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

    def parse_block(self, block: str, first: int) -> Iterator[Event]:
        """The events of LF-separated lines, the first being line `first` (as `parse_line` on each)."""
        # Matching in place saves splitting the block and one call per line on the common path.
        now = self._now
        pos = 0
        n = len(block)
        lineno = first
        shape = self._last
        while pos <= n:
            if shape is not None:
                match = shape.pattern.match
                make = shape.make
                m = match(block, pos)
                while m is not None:
                    yield make(m.groups(), lineno, now)
                    pos = m.end() + 1
                    lineno += 1
                    m = match(block, pos)
                if pos > n:
                    break
            end = block.find("\n", pos)
            if end < 0:
                end = n
            event = self._parse_other(block[pos:end], lineno)
            shape = self._last
            if event is not None:
                yield event
            pos = end + 1
            lineno += 1

    def count_block(self, block: str, first: int) -> int:
        """How many events `parse_block` would give, raising the same errors, without building them."""
        # A fast-path match proves the line valid, so its values need no conversion here.
        count = 0
        pos = 0
        n = len(block)
        lineno = first
        shape = self._last
        while pos <= n:
            if shape is not None:
                match = shape.pattern.match
                m = match(block, pos)
                while m is not None:
                    count += 1
                    pos = m.end() + 1
                    lineno += 1
                    m = match(block, pos)
                if pos > n:
                    break
            end = block.find("\n", pos)
            if end < 0:
                end = n
            if self._parse_other(block[pos:end], lineno) is not None:
                count += 1
            shape = self._last
            pos = end + 1
            lineno += 1
        return count

    def _parse_other(self, text: str, lineno: int) -> Event | None:
        i = skip_ws(text, 0)
        head = i
        if i < len(text) and text[i] == "@":
            try:
                i = parse_at(text, i)[1]
            except LineProblem:
                i = len(text)
        shapes = self._by_type.get(text[i:read_name(text, i)])
        if shapes:
            for shape in shapes:
                m = shape.pattern.match(text)
                if m is not None and m.end() == len(text):
                    self._last = shape
                    return shape.make(m.groups(), lineno, self._now)
        try:
            return self._parse_precise(text, head, lineno)
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
# Lines


def _opener(source: Source) -> tuple[Callable[[int], bytes], Callable[[], None]]:
    if isinstance(source, (str, os.PathLike)):
        # Unbuffered: one system call per chunk, no second copy through a buffer.
        f = open(source, "rb", buffering=0)  # closed by the closer returned with it
        return f.read, f.close
    read1 = getattr(source, "read1", None)
    # read1 returns what is available, so live input (a pipe) is not held back until a chunk fills.
    return (read1 if callable(read1) else source.read), (lambda: None)


def iter_lines(source: Source, display_path: str) -> Iterator[tuple[int, str]]:
    """Splits an event file into (1-based line number, text) pairs, checking UTF-8 and the line limit."""
    for first, block in iter_blocks(source, display_path):
        lines = block.split("\n")
        yield from zip(range(first, first + len(lines)), lines, strict=True)


def iter_blocks(source: Source, display_path: str) -> Iterator[tuple[int, str]]:
    """The file as (number of the first line, LF-separated checked lines) pairs, read in large chunks.

    Every CR that came right before an LF is already dropped; a block never ends with the LF of its
    last line. A bad line raises EventFileError after the blocks holding every line before it.
    """
    read, close = _opener(source)
    try:
        data = read(_CHUNK)
        while data and len(data) < 3 and _BOM.startswith(data):
            more = read(_CHUNK)
            if not more:
                break
            data += more
        if data.startswith(_BOM):
            # An empty rest is not the end of the input: the BOM may have come in a read of its own.
            data = data[3:] or read(_CHUNK)
        pending = b""
        lineno = 1
        while data:
            if pending:
                # A line already too long before its LF: keep only what the diagnostic needs.
                lf = data.find(b"\n")
                if len(pending) + (len(data) if lf < 0 else lf) > LINE_LIMIT + 1:
                    keep = max(0, LINE_LIMIT + 8 - len(pending))
                    pending += data[:keep]
                    raise _raw_line_error(pending, lineno, display_path)
                data = pending + data
            cut = data.rfind(b"\n")
            if cut < 0:
                pending = data
                # Longer than the limit even if a CR and an LF follow: reject it before reading on.
                if len(pending) > LINE_LIMIT + 1:
                    raise _raw_line_error(pending, lineno, display_path)
            else:
                block = data[:cut]
                pending = data[cut + 1:]
                yield from _checked_block(block, lineno, display_path)
                lineno += block.count(b"\n") + 1
                del block
            del data  # not alive while the next chunk is read: memory stays at a few chunks
            data = read(_CHUNK)
        if pending:
            # The last line has no LF, so a CR at its end is an ordinary character.
            if len(pending) > LINE_LIMIT:
                raise _raw_line_error(pending, lineno, display_path)
            try:
                text = pending.decode("utf-8")
            except UnicodeDecodeError:
                raise _raw_line_error(pending, lineno, display_path) from None
            yield lineno, text
    finally:
        close()


def _checked_block(block: bytes, first: int, path: str) -> Iterator[tuple[int, str]]:
    """`block` (lines each of which was followed by an LF) decoded and checked, as blocks."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = block.rfind(b"\n", 0, exc.start) + 1
        if start:
            yield from _checked_block(block[: start - 1], first, path)
        end = block.find(b"\n", exc.start)
        raw = block[start:] if end < 0 else block[start:end]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        raise _raw_line_error(raw, first + block.count(b"\n", 0, start), path) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text.endswith("\r"):
            text = text[:-1]
    # A line over the limit has more than LINE_LIMIT / 4 characters: only those need a closer look.
    if len(block) > LINE_LIMIT:
        lines = text.split("\n")
        if max(map(len, lines)) > LINE_LIMIT // 4:
            for k, line in enumerate(lines):
                if len(line) > LINE_LIMIT // 4 and len(line.encode("utf-8")) > LINE_LIMIT:
                    if k:
                        yield first, "\n".join(lines[:k])
                    raise _raw_line_error(line.encode("utf-8"), first + k, path)
    yield first, text


def _raw_line_error(raw: bytes, lineno: int, path: str) -> EventFileError:
    """The error of a line (without its line end) that is not UTF-8 or is over the limit."""
    head = raw[:LINE_LIMIT]
    try:
        prefix = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = head.decode("utf-8", "replace")
        valid = head[: exc.start].decode("utf-8")
        straddles = exc.end == len(head) and exc.reason == "unexpected end of data" and len(raw) > len(head)
        if straddles and _char_ok(raw[exc.start: exc.start + 4]):
            return _error(path, lineno, len(valid) + 1, "event line is longer than 1 MiB", shown,
                          hint="an event line holds at most 1,048,576 bytes")
        return _error(path, lineno, len(valid) + 1, "invalid UTF-8", shown)
    if len(raw) > LINE_LIMIT:
        return _error(path, lineno, len(prefix) + 1, "event line is longer than 1 MiB", prefix,
                      hint="an event line holds at most 1,048,576 bytes")
    raise AssertionError("the line has no problem")


def _char_ok(piece: bytes) -> bool:
    """Whether `piece` starts with one complete, valid UTF-8 character (or a valid beginning of one)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(piece, final=False)
    except UnicodeDecodeError as exc:
        return exc.start > 0
    return True


# ---------------------------------------------------------------------------------------------------
# Entry points


def read_events(source: Source, display_path: str, stream_names: Collection[str] = (),
                default_time: Callable[[], int] | None = None) -> Iterator[Event]:
    """The events of an event file in file order, streamed; raises EventFileError at the first bad line."""
    parser = EventParser(display_path, stream_names, default_time)
    for first, block in iter_blocks(source, display_path):
        yield from parser.parse_block(block, first)


def check_events(source: Source, display_path: str, stream_names: Collection[str] = ()) -> int:
    """Reads an event file to its end and returns how many events it holds; raises EventFileError."""
    parser = EventParser(display_path, stream_names)
    count = 0
    for first, block in iter_blocks(source, display_path):
        count += parser.count_block(block, first)
    return count
