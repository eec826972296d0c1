"""Exact loss accounting of restarts (RUN.md §6), from what the workers report in band.

Owns `LossLedger`. In a live run every channel toward a worker numbers its records per stream
(`SEQ`, runtime/transport.py): the router's toward each worker (`in`, records of event types) and
each upstream worker's (`p<index>`, records of its streams). A worker reports in band, with its
outputs, the last number it took on each channel (`CONSUMED`); a process reports the counts of the
first numbered message it gets on each channel (`RESUMED`). Records numbered between the last a
dead process reported and the first its replacement got were lost with the dead process (in flight
to it or inside it); records whose shape only the dead process knew reach the replacement and are
counted too (`LOST`). So for every channel, records sent = received + lost, exactly.

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
class _Restart:
    """A restart whose log line is not written yet."""

    where: str  # `context 'compute'`, `context 'compute-1'` for a pool's worker 1
    how: str  # `SIGKILL`, `exit status 70`
    attempt: int
    max_restarts: int
    expected: set[str]  # the channels the replacement reads, not reported yet
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
                  now: float) -> None:
        """Worker `worker`'s replacement is starting: report its restart once its losses are known."""
        self.flush(worker)
        n = self._pool_workers[worker]
        # A pool's worker is named as its process is (`compute-1`, RUN.md §6).
        where = f"context '{self._contexts[worker]}" + (f"-{n}'" if n is not None else "'")
        self._pending[worker] = _Restart(where, how, attempt, max_restarts, set(channels), now)

    def account(self, worker: int, frame: list[Any]) -> None:
        """A `CONSUMED`, `RESUMED` or `LOST` frame from worker `worker`."""
        kind = frame[0]
        known = self._known.setdefault(worker, {})
        if kind == wire.CONSUMED:
            known.setdefault(frame[1], {}).update(frame[2])
            if len(frame) > 3:
                self._received.setdefault(worker, {})[frame[1]] = frame[3]
        elif kind == wire.RESUMED:
            channel, counts = frame[1], frame[2]
            before = known.setdefault(channel, {})
            for stream, first in counts.items():
                gap = first - before.get(stream, 0)
                if gap > 0:
                    self._lose(worker, stream, gap)
            before.update(counts)
            pending = self._pending.get(worker)
            if pending is not None:
                pending.expected.discard(channel)
                if not pending.expected:
                    self.flush(worker)
        elif kind == wire.LOST:
            self._lose(worker, frame[2], frame[3])

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
