"""Splitting `.evt` event files into checked lines (VPL.md §11): UTF-8, byte-order mark, CRLF, limit.

Owns the streaming line splitter: the input is read in large chunks and handed on as blocks of
LF-separated lines, with every check of §11 that concerns raw lines (valid UTF-8, the 1 MiB line
limit, the byte-order mark, CRLF) done without holding more than a bounded amount of the input.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable, Iterator
from typing import BinaryIO

from varpulis_mp.errors import Diagnostic, EventFileError, SourcePos

__all__ = ["LINE_LIMIT", "Source", "iter_blocks", "iter_lines", "line_error"]

LINE_LIMIT = 1 << 20
# Half the line limit: a block then passes the limit only when a long line is in it, so the
# search for such a line is skipped for ordinary blocks.
_CHUNK = 1 << 19
_BOM = b"\xef\xbb\xbf"

Source = str | os.PathLike[str] | BinaryIO


def line_error(path: str, lineno: int, col: int, message: str, source_line: str, width: int = 1,
               hint: str | None = None) -> EventFileError:
    """The error of one event-file line, at a 1-based column."""
    return EventFileError([Diagnostic(path=path, pos=SourcePos(lineno, col), severity="error",
                                      message=message, source_line=source_line, width=width, hint=hint)])



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


def iter_blocks(source: Source, display_path: str, stop: Callable[[], bool] | None = None
                ) -> Iterator[tuple[int, str]]:
    """The file as (number of the first line, LF-separated checked lines) pairs, read in large chunks.

    Every CR that came right before an LF is already dropped; a block never ends with the LF of its
    last line. A bad line raises EventFileError after the blocks holding every line before it.
    Once `stop()` is true (checked before each read) the blocks end at the last whole line read:
    an interrupted run ends as if the file ended there, never with a torn line.
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
            if stop is not None and stop():
                return
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
            return line_error(path, lineno, len(valid) + 1, "event line is longer than 1 MiB", shown,
                              hint="an event line holds at most 1,048,576 bytes")
        return line_error(path, lineno, len(valid) + 1, "invalid UTF-8", shown)
    if len(raw) > LINE_LIMIT:
        return line_error(path, lineno, len(prefix) + 1, "event line is longer than 1 MiB", prefix,
                          hint="an event line holds at most 1,048,576 bytes")
    raise AssertionError("the line has no problem")


def _char_ok(piece: bytes) -> bool:
    """Whether `piece` starts with one complete, valid UTF-8 character (or a valid beginning of one)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(piece, final=False)
    except UnicodeDecodeError as exc:
        return exc.start > 0
    return True
