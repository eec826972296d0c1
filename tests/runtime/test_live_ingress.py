"""The live ingress read by the supervisor's loop (runtime/ingress_live.py): the loop waits on the
feed's own descriptors, an event that comes after a quiet spell leaves at the first look, a
trickle is gathered for `GATHER_S`, and the end of the feed is the end of the input; a regular
file is read ahead by a thread instead. And the
transport's wait keeps to a timeout shorter than its millisecond clock instead of turning busy."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from varpulis_mp.io.line_source import LineSource
from varpulis_mp.runtime import ingress_live
from varpulis_mp.runtime.ingress import Block, InputEnd
from varpulis_mp.runtime.ingress_live import LiveReadAhead, LiveReader, live_reader
from varpulis_mp.runtime.live_feed import FeedSource, LiveFeed
from varpulis_mp.runtime.rejections import RejectionLog
from varpulis_mp.runtime.transport import Transport, wait

TIMEOUT_S = 10.0


def _reader(fd: int) -> LiveReader:
    feed = LiveFeed([FeedSource("input", "<stdin>", LineSource(fd))], ["Echo"],
                    RejectionLog(io.StringIO(), clock=lambda: 0.0))
    feed.start()
    reader = LiveReader(feed, [["R"], []], batch=512, tick_s=None)
    reader.start()
    return reader


def _next_item(reader: LiveReader) -> Block | InputEnd:
    """What the loop takes once the feed is ready: it waits as the loop does, then takes."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        fds, timeout = reader.waits(0.05)
        if fds:
            wait([], [], fds, timeout)
        else:
            time.sleep(timeout)
        item = reader.take()  # as the loop's router takes
        if item is None:
            continue
        assert isinstance(item, Block | InputEnd)
        return item
    raise AssertionError("nothing came from the feed")


def test_the_loop_reads_the_feed_and_gathers_a_trickle(monkeypatch: pytest.MonkeyPatch) -> None:
    # A gathering long enough to be seen on a crowded machine.
    monkeypatch.setattr(ingress_live, "GATHER_S", 0.5)
    r, w = os.pipe()
    reader = _reader(r)
    try:
        fds, _ = reader.waits(0.05)
        assert fds == [r]  # the loop waits on the input itself: no thread, no pipe between
        assert not reader.is_alive()

        os.write(w, b"@1 R { v: 1 }\n")
        first = _next_item(reader)
        assert isinstance(first, Block) and (first.events, first.last) == (1, 1)
        assert first.messages[0] and not first.messages[1]  # only the reader of R gets a message

        # A small look: the feed is left alone for the gathering, and what comes meanwhile waits.
        os.write(w, b"@2 R { v: 2 }\n@3 R { v: 3 }\n")
        assert reader.take() is None  # one look per turn of the loop
        fds, timeout = reader.waits(0.05)
        assert fds == [] and 0 < timeout <= 0.05
        assert reader.take() is None  # still gathering
        second = _next_item(reader)
        assert isinstance(second, Block) and (second.events, second.last) == (2, 3)

        os.close(w)
        w = -1
        items = [_next_item(reader)]
        while not isinstance(items[-1], InputEnd):
            items.append(_next_item(reader))
        assert items[-1] == InputEnd(3)
        assert reader.waits(0.05)[0] == []
    finally:
        if w >= 0:
            os.close(w)
        reader.close()
        os.close(r)


def test_a_wait_shorter_than_a_millisecond_sleeps_instead_of_turning() -> None:
    transport = Transport(100)
    try:
        rcv = transport.receiver("inproc://idle", bind=True)
        start = time.monotonic()
        turns = 0
        while time.monotonic() - start < 0.05:
            assert wait([rcv], [], [], 0.0004) == (set(), set(), set())
            turns += 1
        # A busy wait would turn thousands of times in 50 ms; each wait here takes a millisecond.
        assert turns <= 60
    finally:
        transport.close(0)


def test_a_regular_file_is_read_ahead_by_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "e.evt"
    path.write_bytes(b"".join(b"@%d R { v: %d }\n" % (i, i) for i in range(1, 2001)))
    fd = os.open(path, os.O_RDONLY)
    r, w = os.pipe()
    try:
        assert isinstance(_chosen(fd), LiveReadAhead)
        assert type(_chosen(r)) is LiveReader  # a pipe: the loop waits on it itself
        reader = _chosen(fd)
        reader.start()
        try:
            events = 0
            item = _next_item(reader)
            while isinstance(item, Block):
                events += item.events
                item = _next_item(reader)
            assert item == InputEnd(2000) and events == 2000
        finally:
            reader.stop()
            reader.join(TIMEOUT_S)
            assert not reader.is_alive()
            reader.close()
    finally:
        for x in (fd, r, w):
            os.close(x)


def _chosen(fd: int) -> LiveReader:
    feed = LiveFeed([FeedSource("input", "<stdin>", LineSource(fd))], ["Echo"],
                    RejectionLog(io.StringIO(), clock=lambda: 0.0))
    return live_reader(feed, [["R"]], batch=512, tick_s=None)
