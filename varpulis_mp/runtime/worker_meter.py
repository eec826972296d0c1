"""What a worker counts for the metrics (RUN.md §4), sent with each heartbeat.

Owns `WorkerMeter`, in the worker process: it counts each hosted stream's output records and
closed windows as the worker routes them (one C-level count per batch, not per record), takes each
stream's late events and expression errors from the engine's counters of that stream, takes the
records each stream was delivered from what the worker took on its numbered input channels (or
from the stream it reads, when that one is hosted here too), and reads its connectors' health and
counters and its own process's CPU time and memory when a heartbeat is due. The result is a
`WorkerCounters` (runtime/metrics_counters.py) in the form the control channel carries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any

from varpulis_mp.engine.output import Counters, Output
from varpulis_mp.runtime.metrics_counters import ConnectorState, StreamCounters, WorkerCounters, process_usage

__all__ = ["WorkerMeter", "stream_counts"]

_STREAM = attrgetter("stream")
_KIND = attrgetter("kind")
_IS_RECORD = "record".__eq__


class WorkerMeter:
    def __init__(self, streams: Sequence[str], sources: Mapping[str, str]) -> None:
        self._streams = list(streams)
        self._sources = dict(sources)  # hosted stream -> its source (an event type or a stream)
        self.records: Counter[str] = Counter()  # output records by stream
        self.windows: Counter[str] = Counter()  # windows (and sessions) closed by stream

    def observe(self, emitted: list[Output]) -> None:
        """The outputs the worker is routing (counted in C when they are all records, the usual case)."""
        if all(map(_IS_RECORD, map(_KIND, emitted))):
            self.records.update(map(_STREAM, emitted))
            return
        self.records.update(o.stream for o in emitted if o.kind == "record")
        self.windows.update(o.stream for o in emitted if o.kind != "record")

    def counters(self, received: Mapping[str, Mapping[str, int]], engine: Mapping[str, Counters],
                 connectors: Mapping[str, object]) -> dict[str, Any]:
        """This process's counters so far: the records it `received` by input channel and stream
        (or event type), the engine's own counts by hosted stream, and the connectors' partitions
        by name."""
        streams = stream_counts(self._streams, self._sources, self.records, received)
        for name, counts in streams.items():
            counts.window_flushes = self.windows[name]
            own = engine.get(name)
            if own is not None:
                counts.late, counts.expression_errors = own.late_events, own.expression_errors
        states = {name: _state(part) for name, part in connectors.items()}
        cpu, rss = process_usage()
        return WorkerCounters(streams, states, cpu_seconds=cpu, rss_bytes=rss).to_data()


def stream_counts(streams: Sequence[str], sources: Mapping[str, str], records: Mapping[str, int],
                  received: Mapping[str, Mapping[str, int]]) -> dict[str, StreamCounters]:
    """Each hosted stream's records delivered (those of its source: a stream hosted here, or what
    the process received of an event type or an upstream stream) and output `records`."""
    delivered: Counter[str] = Counter()
    for by_stream in received.values():
        delivered.update(by_stream)
    found: dict[str, StreamCounters] = {}
    for name in streams:
        source = sources.get(name, "")
        processed = records.get(source, 0) if source in sources else delivered[source]
        found[name] = StreamCounters(processed=processed, output=records.get(name, 0))
    return found


def _state(partition: object) -> ConnectorState:
    counters = getattr(partition, "counters", None)
    return ConnectorState(bool(getattr(partition, "healthy", True)), int(getattr(counters, "messages_in", 0)),
                          int(getattr(counters, "messages_out", 0)), bool(getattr(partition, "circuit_open", False)))
