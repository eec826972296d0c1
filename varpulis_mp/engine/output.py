"""What the engine hands out: output items in a stream's own order, and the run's counters.

An `Output` is one line of a run's result: an output record of a stream (`kind="record"`) or the
result of a window as `.aggregate` made it (`kind="window"` / `"session"`, shown by the human
output before whatever it turns into). Items are ordered canonically (VPL.md §10.3) by
`(origin, stream_index, seq)`, where `seq` counts every item of that stream, records and window
lines together, so a window line sorts before the record it becomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

OutputKind = Literal["record", "window", "session"]


class _NoKey:
    """Marks a window line of a stream without `.partition_by` (no `(key)` is shown)."""

    _instance: _NoKey | None = None

    def __new__(cls) -> _NoKey:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_KEY"

    def __reduce__(self) -> str:
        return "NO_KEY"


NO_KEY: Final = _NoKey()


@dataclass(slots=True)
class Output:
    origin: int  # 1-based input position of the event that caused it; N+1 for the end-of-input flush
    stream_index: int  # declaration position of the stream, 0-based
    seq: int  # position among this stream's items (records and window lines), from 0
    stream: str
    kind: OutputKind
    ts: int
    fields: dict[str, Any]
    key: Any = NO_KEY  # for window/session lines: the partition key value, or NO_KEY

    def order(self) -> tuple[int, int, int]:
        return (self.origin, self.stream_index, self.seq)


@dataclass(slots=True)
class Counters:
    """Per-run counters the engine moves (OUTPUT.md §2.4); added up across processes."""

    expression_errors: int = 0
    late_events: int = 0
    sessions_closed: int = 0

    def add(self, other: Counters) -> None:
        self.expression_errors += other.expression_errors
        self.late_events += other.late_events
        self.sessions_closed += other.sessions_closed


@dataclass(slots=True)
class Summary:
    """Everything the summary of OUTPUT.md §2.4 prints."""

    events_processed: int = 0
    unread_events: int = 0
    rejected_events: int = 0
    contexts_used: int = 0
    cross_context_events: int = 0
    counters: Counters = field(default_factory=Counters)
    interrupted_by: int | None = None  # the signal that ended the input early, if one did
    dead_letters: int = 0  # `run`: records and payloads dead-lettered (RUN.md §6)
    lost_in_restarts: int = 0  # `run`: records lost with workers that died and were restarted (RUN.md §6)

    def counts(self) -> dict[str, int]:
        """The counters of the summary block (OUTPUT.md §2.4) by snake_case name, zeros included."""
        c = self.counters
        return {
            "events_processed": self.events_processed,
            "unread_events": self.unread_events,
            "rejected_events": self.rejected_events,
            "contexts_used": self.contexts_used,
            "cross_context_events": self.cross_context_events,
            "sessions_closed": c.sessions_closed,
            "late_events": c.late_events,
            "expression_errors": c.expression_errors,
        }
