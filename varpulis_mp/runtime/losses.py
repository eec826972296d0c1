"""Exact loss accounting of restarts (RUN.md §6), from what the workers report in band.

Owns `LossLedger`. In a live run every channel toward a worker numbers its records per stream
and sending process (`SEQ`, runtime/transport.py): the router's toward each worker (`in`, records
of event types) and each upstream worker's (`p<index>`, records of its streams). A worker reports
in band, with its outputs, the last number it took on each channel (`CONSUMED`); a process reports
the counts of the first numbered message it gets on each channel, and of the first from a new
sending process (`RESUMED`). Records numbered between the last a dead process reported and the
first its replacement got were lost with the dead process (in flight to it or inside it); records
whose shape only the dead process knew reach the replacement and are counted too (`LOST`).

A dead *sender* loses what it had sent toward a reader that the reader never got (in its outbox,
in its ZeroMQ queues): with each message toward the merger a worker says how many records its
channel toward each reader has taken (`SENT`, the outputs of that message included). Once the
reader has moved on to the sender's replacement, the records the dead process said it sent beyond
the last it took are lost; the reader drops anything of the dead process that still comes after
that, so the count stays exact. Either report may come first (they travel on different
channels): the loss grows as the `SENT` counts arrive. So for every channel, records sent =
received + lost, exactly.

A restart's log line (`context 'compute' restarted after SIGKILL (restart 2 of 5); 1,234 records
of ValidReadings lost`) is written once the replacement has reported every channel it reads, or
after `REPORT_WAIT_S` with what is known then (later losses still count in the totals).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from varpulis_mp.runtime import wire
from varpulis_mp.runtime.logs import runtime_log

__all__ = ["REPORT_WAIT_S", "LossLedger", "describe_loss"]

REPORT_WAIT_S = 1.0

# (context, worker in its pool, stream, records) for each loss, as it is found
OnLoss = Callable[[str, int, str, int], None]


@dataclass
class _Switch:
    """A reader that moved on from one process of a sender (`before`; None: none yet) to a later
    one (`after`), processes named by when they made the channel: each process in between lost
    what it said it sent toward the reader beyond what the reader took of it (`taken`, from
    `before` only)."""

    reader: int
    before: int | None
    after: int
    taken: dict[str, int]
    counted: dict[int, Counter[str]] = field(default_factory=dict)  # process -> stream -> counted lost

    def covers(self, process: int) -> bool:
        return (self.before is None or self.before <= process) and process < self.after


@dataclass
class _Restart:
    """A restart whose log line is not written yet."""

    where: str  # `context 'compute'`, `context 'compute-1'` for a pool's worker 1
    how: str  # `SIGKILL`, `exit status 70`
    attempt: int
    max_restarts: int
    expected: set[str]  # the channels the replacement reads, not reported yet
    readers: set[int]  # the workers it feeds, not yet moved on to the replacement
    since: float
    lost: Counter[str] = field(default_factory=Counter)


def describe_loss(lost: Counter[str]) -> str:
    if not any(lost.values()):
        return "0 records lost"
    parts = [f"{n:,} records of {stream}" for stream, n in sorted(lost.items()) if n]
    return ", ".join(parts) + " lost"


class LossLedger:
    """What each worker has taken of each input channel, and what restarts lost."""

    def __init__(self, contexts: list[str], on_loss: OnLoss | None = None,
                 pool_workers: list[int | None] | None = None) -> None:
        self._contexts = contexts
        # Each process's worker index in its pool (None outside pools): logs and metrics name it.
        self._pool_workers = pool_workers or [None] * len(contexts)
        self._on_loss = on_loss
        # worker -> channel -> stream -> the last record number a process of it took
        self._known: dict[int, dict[str, dict[str, int]]] = {}
        self._pending: dict[int, _Restart] = {}
        self.total = 0
        self.by_stream: Counter[tuple[str, str]] = Counter()  # (context, stream) -> records lost
        # worker -> channel -> stream -> records its present process read (CONSUMED's last member)
        self._received: dict[int, dict[str, dict[str, int]]] = {}
        # worker -> channel -> the sending process whose numbering `_known` follows
        self._sender: dict[int, dict[str, int | None]] = {}
        # sender -> its process -> reader -> stream -> records its channel toward the reader took (SENT)
        self._sent: dict[int, dict[int, dict[int, dict[str, int]]]] = {}
        self._switches: dict[int, list[_Switch]] = {}  # sender -> its readers' moves to a new process

    def received(self, worker: int) -> dict[str, dict[str, int]]:
        """What worker `worker`'s present process read, by channel and stream, as it last said."""
        return self._received.get(worker, {})

    def taken(self, worker: int, channel: str) -> int:
        """The records worker `worker` took on `channel`, all streams, as it last said (in the
        sender's numbering, so across restarts of the receiver too)."""
        return sum(self._known.get(worker, {}).get(channel, {}).values())

    def died(self, worker: int) -> None:
        """Worker `worker`'s process is gone: the next one reads from nothing."""
        self._received.pop(worker, None)

    def restarted(self, worker: int, how: str, attempt: int, max_restarts: int, channels: set[str],
                  now: float, readers: set[int] | None = None) -> None:
        """Worker `worker`'s replacement is starting: report its restart once its losses are known
        (what it reads on `channels`, what the workers `readers` it feeds did not get)."""
        self.flush(worker)
        n = self._pool_workers[worker]
        # A pool's worker is named as its process is (`compute-1`, RUN.md §6).
        where = f"context '{self._contexts[worker]}" + (f"-{n}'" if n is not None else "'")
        self._pending[worker] = _Restart(where, how, attempt, max_restarts, set(channels), set(readers or ()), now)

    def account(self, worker: int, frame: list[Any]) -> None:
        """A `CONSUMED`, `RESUMED`, `LOST` or `SENT` frame from worker `worker`."""
        kind = frame[0]
        known = self._known.setdefault(worker, {})
        if kind == wire.CONSUMED:
            known.setdefault(frame[1], {}).update(frame[2])
            if len(frame) > 3:
                self._received.setdefault(worker, {})[frame[1]] = frame[3]
        elif kind == wire.RESUMED:
            self._resumed(worker, frame[1], frame[2], frame[3] if len(frame) > 3 else None)
        elif kind == wire.LOST:
            self._lose(worker, frame[2], frame[3])
        elif kind == wire.SENT:
            _, reader, counts, process = frame
            self._sent.setdefault(worker, {}).setdefault(process, {})[reader] = counts
            for switch in self._switches.get(worker, ()):
                if switch.reader == reader and switch.covers(process):
                    self._settle(worker, switch, process, counts)

    def _resumed(self, worker: int, channel: str, counts: dict[str, int], sender: int | None) -> None:
        """Worker `worker` got its first message on `channel` (a new process), or the first of a
        new sending process `sender`: the gap since what it last took is lost."""
        known = self._known.setdefault(worker, {})
        before = known.get(channel, {})
        senders = self._sender.setdefault(worker, {})
        previous = senders.get(channel)
        src = int(channel[1:]) if channel.startswith("p") else None  # `in`: the router never restarts
        if sender is not None and previous != sender:
            if src is not None and (previous is None or previous < sender):
                self._switch(src, _Switch(worker, previous, sender, dict(before)))
            before = {}  # a new numbering, from 0
        for stream, first in counts.items():
            gap = first - before.get(stream, 0)
            if gap > 0:
                self._lose(worker, stream, gap)
        known[channel] = dict(counts)
        senders[channel] = sender
        pending = self._pending.get(worker)
        if pending is not None:
            pending.expected.discard(channel)
            self._flush_if_known(worker)

    def _switch(self, src: int, switch: _Switch) -> None:
        """A reader moved on to a later process of worker `src` (restarted since): what the
        processes it passed said they sent toward it and it did not take is lost, with `src`."""
        self._switches.setdefault(src, []).append(switch)
        for process, readers in self._sent.get(src, {}).items():
            if switch.covers(process) and switch.reader in readers:
                self._settle(src, switch, process, readers[switch.reader])
        pending = self._pending.get(src)
        if pending is not None:
            pending.readers.discard(switch.reader)
            self._flush_if_known(src)

    def _settle(self, src: int, switch: _Switch, process: int, sent: dict[str, int]) -> None:
        """Count what process `process` of worker `src` said it sent beyond what the reader took."""
        taken = switch.taken if process == switch.before else {}
        counted = switch.counted.setdefault(process, Counter())
        for stream, n in sent.items():
            extra = n - taken.get(stream, 0) - counted[stream]
            if extra > 0:
                counted[stream] += extra
                self._lose(src, stream, extra)

    def _flush_if_known(self, worker: int) -> None:
        pending = self._pending.get(worker)
        if pending is not None and not pending.expected and not pending.readers:
            self.flush(worker)

    def _lose(self, worker: int, stream: str, records: int) -> None:
        context = self._contexts[worker]
        self.total += records
        self.by_stream[(context, stream)] += records
        pending = self._pending.get(worker)
        if pending is not None:
            pending.lost[stream] += records
        if self._on_loss is not None:
            self._on_loss(context, self._pool_workers[worker] or 0, stream, records)

    def tick(self, now: float) -> None:
        """Write the restart lines that waited long enough for their replacement's reports."""
        for worker in [w for w, p in self._pending.items() if now - p.since >= REPORT_WAIT_S]:
            self.flush(worker)

    def flush(self, worker: int | None = None) -> None:
        """Write the pending restart line of `worker` (of every worker when None)."""
        for w in [worker] if worker is not None else list(self._pending):
            pending = self._pending.pop(w, None)
            if pending is not None:
                runtime_log.warning("%s restarted after %s (restart %d of %d); %s", pending.where,
                                    pending.how, pending.attempt, pending.max_restarts,
                                    describe_loss(pending.lost))
