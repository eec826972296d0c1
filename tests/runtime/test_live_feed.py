"""The live feed's reading of `.evt` lines (RUN.md §2): lines that arrive together are parsed as a
block, on the reader's fast path, and give exactly what the same lines give one at a time: the
same events, and the same rejections reported the same way."""

from __future__ import annotations

import io
import os
import select
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from varpulis_mp.io.line_source import MAX_LINE_BYTES, LineSource
from varpulis_mp.io.readers import Event
from varpulis_mp.runtime.live_feed import FeedSource, LiveFeed
from varpulis_mp.runtime.rejections import RejectionLog

STREAMS = ["Echo"]


def _text() -> bytes:
    """Lines of every kind: enough of two shapes for the parser to build its block alternation,
    then bad lines inside runs of good ones, comments, BATCH lines, JSON events, CRLF endings, a
    CR inside a line, invalid UTF-8, an empty line, and an event type the source does not carry."""
    good = [f"@{i} R {{ v: {i}, s: \"x{i}\" }}" if i % 2 else f"@{i} T {{ t: {i}.5 }}" for i in range(1, 200)]
    odd = [
        "# a comment",
        "@300 R { v: 1, s: \"a\" }",
        "@301 R { v: , s: \"b\" }",  # bad: missing value
        "@302 T { t: 2.5 }",
        "BATCH 400",
        "R { v: 3, s: \"no time: the BATCH time\" }",
        "@303 R { v: 4, s: \"crlf\" }\r",
        "@304 R { v: 5, s: \"cr\rinside\" }",
        "",
        '{"event_type": "T", "ts": 305, "t": 6.5}',
        "@306 Q { q: 1 }",  # a type this source does not carry
        "@307 R { v: 7, v: 8 }",  # bad: duplicate field
    ]
    lines = good + odd + good[:50] + ["@308 R { v: 9, s: \"last\" }"]
    text = "\n".join(lines).encode() + b"\n\xff\xfe bad bytes\n@309 T { t: 10.5 }\n"
    return b"\xef\xbb\xbf" + text  # a byte order mark first


def _feed(fd: int, out: io.StringIO) -> LiveFeed:
    source = FeedSource("input", "<stdin>", LineSource(fd), types=frozenset({"R", "T"}))
    return LiveFeed([source], STREAMS, RejectionLog(out, clock=lambda: 0.0))


def _events(chunks: Iterator[list[Event]]) -> list[tuple[str, int, dict[str, object], int]]:
    return [(e.type, e.ts, e.fields, e.line) for chunk in chunks for e in chunk]


def test_lines_read_together_give_what_they_give_one_at_a_time(tmp_path: Path) -> None:
    text = _text()
    path = tmp_path / "e.evt"
    path.write_bytes(text)

    together_log = io.StringIO()
    fd = os.open(path, os.O_RDONLY)
    try:
        together = _feed(fd, together_log)
        together_events = _events(together.chunks(lambda: False))
    finally:
        os.close(fd)

    # One line per batch: each line is written to a pipe only once the previous one was read.
    one_log = io.StringIO()
    read_end, write_end = os.pipe()
    one = _feed(read_end, one_log)
    chunks = one.chunks(lambda: False, tick_s=5.0)
    one_events: list[tuple[str, int, dict[str, object], int]] = []
    try:
        for line in text.splitlines(keepends=True):
            os.write(write_end, line)
            assert select.select([read_end], [], [], 5.0)[0], "the line never became readable"
            one_events += _events(iter([next(chunks)]))
        os.close(write_end)
        write_end = -1
        one_events += _events(chunks)
    finally:
        if write_end >= 0:
            os.close(write_end)
        os.close(read_end)

    assert together_events == one_events
    assert len(together_events) == 199 + 50 + 8
    assert together.log.counts == one.log.counts
    assert together.log.total == 4  # a missing value, a duplicate field, a type, the bytes
    assert together_log.getvalue() == one_log.getvalue()
    assert "<stdin>:202:13: error: invalid value" in together_log.getvalue()  # at its own line


def test_line_source_cuts_lines_as_they_were_written(tmp_path: Path) -> None:
    long_line = b"@1 R { s: \"" + b"x" * (2 * MAX_LINE_BYTES) + b"\" }"
    text = b"\xef\xbb\xbfa\r\nb\r\r\nc\rd\n" + long_line + b"\n\ne\nlast without LF"
    path = tmp_path / "e.evt"
    path.write_bytes(text)
    source = LineSource.open(str(path))
    lines: list[bytes] = []
    rejected = []
    firsts = []
    try:
        while True:
            try:
                batch = source.next_batch()
            except StopIteration:
                break
            if batch.lines:
                firsts.append((batch.first_line, len(lines) + 1))
            lines += batch.lines
            rejected += batch.rejected
    finally:
        source.close()
    # One CR is taken off a line's end, as a CRLF ending; the overlong line keeps its number, empty.
    assert lines == [b"a", b"b\r", b"c\rd", b"", b"", b"e", b"last without LF"]
    assert all(first == expected for first, expected in firsts)
    assert [(r.reason, r.detail) for r in rejected] == [("event line is longer than 1 MiB",
                                                         "line 4: event line is longer than 1 MiB")]


def test_lines_of_types_nobody_reads_are_counted_not_built(tmp_path: Path) -> None:
    """With `build_only`, a line of another type gives no event but a count in `unbuilt` (the fast
    path's lines; a line the precise parser takes is built as before): the same events of the read
    type, the same number of every type, and the same rejections reported the same way."""
    path = tmp_path / "e.evt"
    # Without its CR and its bytes that are not UTF-8, the text goes through the block parser (either
    # sends a whole batch line by line).
    path.write_bytes(b"\n".join(line for line in _text().split(b"\n") if b"\r" not in line and b"\xff" not in line))

    def read(only: frozenset[str] | None) -> tuple[list[Event], Counter[str], LiveFeed, str]:
        out = io.StringIO()
        fd = os.open(path, os.O_RDONLY)
        try:
            feed = LiveFeed([FeedSource("input", "<stdin>", LineSource(fd))], STREAMS,
                            RejectionLog(out, clock=lambda: 0.0))
            if only is not None:
                feed.build_only(only)
            events: list[Event] = []
            unbuilt: Counter[str] = Counter()
            for chunk in feed.chunks(lambda: False):
                events += chunk
                unbuilt.update(feed.unbuilt)
        finally:
            os.close(fd)
        return events, unbuilt, feed, out.getvalue()

    every, none_unbuilt, plain, plain_log = read(None)
    some, unbuilt, skipping, skipping_log = read(frozenset({"R"}))
    assert not none_unbuilt
    assert [e for e in some if e.type == "R"] == [e for e in every if e.type == "R"]
    assert unbuilt["T"] > 50  # the T lines of the fast path (once the shapes are learned): never built
    assert Counter(e.type for e in some) + unbuilt == Counter(e.type for e in every)
    assert skipping.log.counts == plain.log.counts and skipping.log.total == 2  # Q is an event here
    assert skipping_log == plain_log
