"""The two seams every input and output goes through: Source and Sink.

A *Source* is a description (plain data, safe to build in any process); `build(index, count)`
makes the *partition* that actually reads, in the process that runs it, given the worker index and
the number of workers sharing it (bytewax's `inputs.py` is the model). A partition hands out
batches with `next_batch()`, says with `next_awake()` when it next wants to be asked (replay
pacing and live ticks live here, not in a sleeping file object), and is closed with `close()`.
When it has ended, `next_batch()` raises `StopIteration`.

A batch holds either raw `.evt` lines (`LineBatch`: the default input and `file` subscriptions,
parsed by whoever receives them, which keeps the block encodings fast) or built events
(`EventBatch`: broker payloads, decoded in the connector). Payloads that cannot be read travel in
the same batch as `Rejection`s, so that they are counted by reason where every other count is.

A *Sink* is likewise a description whose `build(index, count)` makes a partition; the partition
takes output records with `write_batch(records, flush)` (`flush` is true for the records of the
end-of-input flush) and is closed with `close()`, which delivers what it still holds.

Live partitions may also offer `wake_fd()`: a file descriptor that becomes readable when a batch
is waiting, so a loop can sleep in `poll` instead of asking on a timer; and `commit()`, called once
everything they handed out has been fully processed (its records delivered), which is when a
broker's acknowledgement is due and when an embedding host may call the runtime idle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from varpulis_mp.engine.output import Output

__all__ = [
    "CommittingSource",
    "EventBatch",
    "InEvent",
    "LineBatch",
    "Rejection",
    "Sink",
    "SinkPartition",
    "Source",
    "SourceBatch",
    "SourcePartition",
    "WakeableSource",
]


@dataclass(frozen=True, slots=True)
class InEvent:
    """One event as a connector decoded it: its type, its time in ms (None: arrival time), its fields."""

    type: str
    ts: int | None
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Input that could not be read: where from, why (a short reason label), and the detail for logs."""

    source: str  # "input", or the connector's name
    reason: str  # e.g. "invalid json", "type mismatch", "unsupported value", "too large"
    detail: str
    payload: bytes = b""


@dataclass(slots=True)
class LineBatch:
    """Raw `.evt` lines (bytes, without their newline), in input order; the first is line
    `first_line` of its source (0 where the source does not number its lines)."""

    lines: list[bytes]
    rejected: list[Rejection] = field(default_factory=list)
    first_line: int = 0


@dataclass(slots=True)
class EventBatch:
    """Built events, in arrival order."""

    events: list[InEvent]
    rejected: list[Rejection] = field(default_factory=list)


SourceBatch = LineBatch | EventBatch


class SourcePartition(Protocol):
    def next_batch(self) -> SourceBatch:
        """The next batch (possibly empty); raises StopIteration once the source has ended."""
        ...

    def next_awake(self) -> float | None:
        """When to call `next_batch` next, as a `time.monotonic()` value; None: as soon as convenient."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class WakeableSource(Protocol):
    def wake_fd(self) -> int:
        """A descriptor that is readable while a batch waits (the caller never reads it)."""
        ...


@runtime_checkable
class CommittingSource(Protocol):
    def commit(self, batches: int) -> None:
        """The first `batches` batches this partition handed out (counting every `next_batch`
        that returned) have been fully processed: their records were delivered. Where an
        acknowledgement is due, this is when it is given."""
        ...


class Source(Protocol):
    @property
    def name(self) -> str:
        """What rejections and metrics call this source: "input" or the connector's name."""
        ...

    def build(self, worker_index: int, worker_count: int) -> SourcePartition: ...


class SinkPartition(Protocol):
    def write_batch(self, records: list[Output], flush: bool) -> None: ...

    def close(self) -> None: ...


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    def build(self, worker_index: int, worker_count: int) -> SinkPartition: ...
