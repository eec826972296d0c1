"""The inputs of a live run, multiplexed: the default input and every subscription, as events.

Owns `LiveFeed`, which both live drivers (one process, runtime/live.py; worker processes,
runtime/ingress_live.py) read from. It waits in one `select` on the wake-up descriptors of every
source partition (io/ports.py), so it sleeps while nothing arrives and wakes as soon as anything
does; raw `.evt` lines are parsed here (an event without `@T` takes the wall-clock time of its
arrival, once for every context), connectors' events take the arrival time when they carry none,
and everything that cannot be read is counted and reported through the `RejectionLog`, never
fatal. A source that ends is closed and dropped; the feed ends when every source has ended.
"""

from __future__ import annotations

import functools
import re
import select
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

from varpulis_mp.errors import EventFileError
from varpulis_mp.io.line_source import LineSource
from varpulis_mp.io.ports import (
    CommittingSource,
    EventBatch,
    LineBatch,
    Source,
    SourcePartition,
    WakeableSource,
)
from varpulis_mp.io.readers import Event, EventParser
from varpulis_mp.runtime.rejections import RejectionLog

__all__ = ["FeedSource", "LiveFeed", "wall_clock_ms"]

POLL_S = 0.2
_NAME_RE = re.compile(r"'[A-Za-z_][A-Za-z0-9_]*'")


@functools.cache
def _wakes(kind: type) -> bool:
    """Whether partitions of this class have a wake-up descriptor. A protocol `isinstance` costs
    microseconds, and the feed asks at every wake-up: so once per class (the protocols have
    methods only, which a class either has or not)."""
    return issubclass(kind, WakeableSource)


@functools.cache
def _commits(kind: type) -> bool:
    """Whether partitions of this class take commits (once per class, as `_wakes`)."""
    return issubclass(kind, CommittingSource)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def reason_of(message: str) -> str:
    """A diagnostic's message as a rejection reason: grouped by the kind of problem, not by the
    field, member or type it names."""
    return _NAME_RE.sub("'X'", message)


@dataclass(eq=False)
class FeedSource:
    """A source partition with the names its rejections and diagnostics go by. A connector's
    partition is built by `LiveFeed.start` from `source` (its description): in the process and
    at the moment it runs, never before a fork."""

    name: str  # "input" or a connector's name
    display: str  # the path diagnostics name its lines by ("<stdin>", a file's path)
    partition: SourcePartition | None = None
    source: Source | None = field(default=None, repr=False)
    parser: EventParser | None = field(default=None, repr=False)
    lines_seen: int = 0  # for sources that do not number their lines

    def built(self) -> SourcePartition:
        if self.partition is None:
            raise RuntimeError(f"source {self.name} was not started")
        return self.partition

    batches: int = 0  # batches taken from the partition so far (what commits count)
    types: frozenset[str] | None = None  # the event types its lines may hold (None: any)
    ends_feed: bool = False  # its end ends the whole feed (an embedding host's posts: shutdown)


class LiveFeed:
    """`chunks()` gives the events of each wake-up, in arrival order per source; see above."""

    def __init__(self, sources: Sequence[FeedSource], stream_names: Collection[str], log: RejectionLog) -> None:
        self._sources = list(sources)
        self._stream_names = list(stream_names)
        for source in self._sources:
            # Events without `@T` take the arrival time, read once per line.
            source.parser = EventParser(source.display, stream_names, default_time=wall_clock_ms)
        self.log = log
        self._contributed: set[int] = set()  # indexes into _all of sources that gave events since the last mark
        self._all = list(self._sources)
        # (origin, (partition, batches)) of chunks whose records are not all out yet (worker processes).
        self._marks: deque[tuple[int, list[tuple[CommittingSource, int]]]] = deque()
        self._lock = threading.Lock()
        self._read: frozenset[str] | None = None  # see build_only
        # Events of the last chunk that were counted, not built: how many of each type.
        self.unbuilt: Counter[str] = Counter()

    def build_only(self, read: Collection[str]) -> None:
        """From now on the default input's lines of other event types than `read` (what the
        program's streams read) are checked and counted in `unbuilt`, chunk by chunk, instead of
        being built into events nobody takes: every reader of the feed counts them as events."""
        self._read = frozenset(read)

    def add(self, source: FeedSource) -> None:
        """One more source, before the feed starts."""
        if source.parser is None:
            source.parser = EventParser(source.display, self._stream_names, default_time=wall_clock_ms)
        self._sources.append(source)
        self._all.append(source)

    def start(self) -> None:
        """Build the partitions still to be built (connectors' clients start here)."""
        for source in self._sources:
            if source.partition is None:
                assert source.source is not None
                source.partition = source.source.build(0, 1)

    def processed(self) -> None:
        """Everything the feed gave so far has been processed and delivered (one-process driver)."""
        for part, batches in self._take_contributors():
            part.commit(batches)

    def numbered(self, origin: int) -> None:
        """The events given so far took origins up to `origin`, as the one-process driver numbered
        them (the events counted, not built, included). The plain feed needs nothing of it; a feed
        that times the run's origins (runtime/metrics_latency.py) marks them with it."""

    def mark(self, origin: int) -> None:
        """The events given so far take origins up to `origin` (multiprocess ingress thread)."""
        contributors = self._take_contributors()
        if contributors:
            with self._lock:
                self._marks.append((origin, contributors))

    def released(self, origin: int) -> None:
        """Every origin up to `origin` has been processed and its records delivered (supervisor loop)."""
        while True:
            with self._lock:
                if not self._marks or self._marks[0][0] > origin:
                    return
                _, contributors = self._marks.popleft()
            for part, batches in contributors:
                part.commit(batches)

    def _take_contributors(self) -> list[tuple[CommittingSource, int]]:
        if not self._contributed:
            return []
        found: list[tuple[CommittingSource, int]] = []
        for i in sorted(self._contributed):
            source = self._all[i]
            part = source.partition
            if part is not None and _commits(type(part)):
                found.append((cast(CommittingSource, part), source.batches))
        self._contributed.clear()
        return found

    @property
    def open_sources(self) -> int:
        return len(self._sources)

    def chunks(self, stopped: Callable[[], bool], tick_s: float = POLL_S) -> Iterator[list[Event]]:
        """The events that arrived at each wake-up; an empty list when `tick_s` passed without any
        (a tick: the caller may look at the clock). Ends when every source has ended or `stopped()`."""
        self.start()
        ended = False
        while self._sources and not stopped() and not ended:
            ready = self._wait(tick_s)
            events: list[Event] = []
            if self.unbuilt:
                self.unbuilt = Counter()
            for source in ready:
                part = source.built()
                try:
                    batch = part.next_batch()
                except StopIteration:
                    part.close()
                    self._sources.remove(source)
                    if source.ends_feed:
                        ended = True
                    continue
                source.batches += 1
                self._contributed.add(self._all.index(source))
                for r in batch.rejected:
                    self.log.reject(r.source, r.reason, lambda r=r: r.detail, r.payload)  # type: ignore[misc]
                if isinstance(batch, LineBatch):
                    self._parse_lines(source, batch, events)
                else:
                    self._take_events(batch, events)
            self.log.tick()
            yield events

    def all_regular_files(self) -> bool:
        """Whether every source is the default input read from a regular file (all its lines
        already there: nothing arrives, only the reading takes time)."""
        return bool(self._sources) and all(
            isinstance(s.partition, LineSource) and s.partition.is_regular_file() for s in self._sources)

    def wake_fds(self) -> list[int]:
        """The wake-up descriptors of the open sources that have one: what a loop that reads the
        feed itself (`chunks` with no wait) waits on."""
        return [cast(WakeableSource, s.built()).wake_fd() for s in self._sources if _wakes(type(s.built()))]

    def due_in(self, longest: float) -> float:
        """How long (at most `longest`) until an open source without a wake-up descriptor is due."""
        now = time.monotonic()
        for source in self._sources:
            part = source.built()
            if not _wakes(type(part)):
                awake = part.next_awake()
                longest = min(longest, 0.0 if awake is None else max(0.0, awake - now))
        return longest

    def close(self) -> None:
        for source in self._sources:
            if source.partition is not None:
                source.partition.close()
        self._sources.clear()

    def _wait(self, tick_s: float) -> list[FeedSource]:
        """The sources that have something (or whose awake time came), after at most `tick_s`."""
        now = time.monotonic()
        timeout = tick_s
        due: list[FeedSource] = []
        by_fd: dict[int, FeedSource] = {}
        for source in self._sources:
            part = source.built()
            if _wakes(type(part)):
                by_fd[cast(WakeableSource, part).wake_fd()] = source
                continue
            awake = part.next_awake()
            if awake is None or awake <= now:
                due.append(source)
            else:
                timeout = min(timeout, awake - now)
        if due:
            timeout = 0.0
        if by_fd:
            readable, _, _ = select.select(list(by_fd), [], [], timeout)
            due.extend(by_fd[fd] for fd in readable)
        elif timeout > 0:
            time.sleep(timeout)
        return due

    def _parse_lines(self, source: FeedSource, batch: LineBatch, into: list[Event]) -> None:
        lineno = batch.first_line - 1 if batch.first_line else source.lines_seen
        lines = batch.lines
        done = self._parse_block(source, lines, lineno + 1, into) if len(lines) > 1 else 0
        self._parse_one_by_one(source, lines[done:], lineno + done, into)
        source.lines_seen = lineno + len(lines)

    def _parse_block(self, source: FeedSource, lines: list[bytes], first: int, into: list[Event]) -> int:
        """Parse `lines` as one block, through the parser's fast path (one match over many lines of
        the shapes it learned); returns how many lines were handled. It stops before the first line
        it cannot take, and everything from there goes line by line, as the lines of a batch that is
        not UTF-8 or holds a CR do: so what is rejected, and how it is reported, is the same."""
        joined = b"\n".join(lines)
        if b"\r" in joined:
            return 0
        try:
            text = joined.decode("utf-8")
        except UnicodeDecodeError:
            return 0
        parser = source.parser
        assert parser is not None
        events: list[Event] = []
        append = events.append
        done = len(lines)
        read = self._read if source.types is None else None
        try:
            if read is None:
                for event in parser.parse_block(text, first):
                    append(event)
            else:
                unbuilt: list[str] = []
                skip = unbuilt.append
                try:
                    for item in parser.parse_block_reading(text, first, read):
                        if isinstance(item, str):
                            skip(item)
                        else:
                            append(item)
                finally:
                    self.unbuilt.update(unbuilt)
        except EventFileError as exc:
            # Every line before the bad one was taken; from the bad one on, line by line.
            done = exc.diagnostics[0].pos.line - first
        if source.types is None:
            into += events
        else:
            for event in events:
                self._admit(source, event, event.line, into, lines[event.line - first])
        return done

    def _parse_one_by_one(self, source: FeedSource, lines: list[bytes], lineno: int, into: list[Event]) -> None:
        parser = source.parser
        assert parser is not None
        name = source.name
        for raw in lines:
            lineno += 1
            try:
                text = raw.decode("utf-8")
                if text.endswith("\r"):
                    text = text[:-1]
                event = parser.parse_line(text, lineno)
            except UnicodeDecodeError:
                where = f"{source.display}:{lineno}: error: invalid UTF-8"
                self.log.reject(name, "invalid UTF-8", lambda where=where: where, raw)  # type: ignore[misc]
                continue
            except EventFileError as exc:
                diagnostic = exc.diagnostics[0]
                self.log.reject(name, reason_of(diagnostic.message), diagnostic.render, raw)
                continue
            if event is not None:
                self._admit(source, event, lineno, into, raw)
        source.lines_seen = lineno

    def _admit(self, source: FeedSource, event: Event, lineno: int, into: list[Event], raw: bytes) -> None:
        if source.types is not None and event.type not in source.types:
            name = source.name
            where = f"{source.display}:{lineno}: error: event type '{event.type}' is not read from {name}"
            self.log.reject(name, "type mismatch", lambda where=where: where, raw)  # type: ignore[misc]
            return
        into.append(event)

    @staticmethod
    def _take_events(batch: EventBatch, into: list[Event]) -> None:
        now: int | None = None
        for ev in batch.events:
            ts = ev.ts
            if ts is None:
                if now is None:
                    now = wall_clock_ms()
                ts = now
            into.append(Event(ev.type, ts, ev.fields, 0))
