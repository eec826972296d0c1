"""What a worker counts for the metrics (RUN.md §4), sent with each heartbeat.

Owns `WorkerMeter`, in the worker process: it counts each hosted stream's output records and
closed windows as the worker routes them (one C-level count per batch, not per record), takes the
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

__all__ = ["WorkerMeter"]

_STREAM = attrgetter("stream")


class WorkerMeter:
    def __init__(self, streams: Sequence[str], sources: Mapping[str, str]) -> None:
        self._streams = list(streams)
        self._sources = dict(sources)  # hosted stream -> its source (an event type or a stream)
        self.records: Counter[str] = Counter()  # output records by stream
        self.windows: Counter[str] = Counter()  # windows (and sessions) closed by stream

    def observe(self, emitted: list[Output]) -> None:
        """The outputs the worker is routing."""
        records = [o for o in emitted if o.kind == "record"]
        self.records.update(map(_STREAM, records))
        if len(records) != len(emitted):
            self.windows.update(o.stream for o in emitted if o.kind != "record")

    def counters(self, taken: Mapping[str, Mapping[str, int]], engine: Counters,
                 connectors: Mapping[str, object]) -> dict[str, Any]:
        """This process's counters so far: `taken` by input channel and stream, the engine's own
        counts (given to the first hosted stream: the engine keeps them per process), and the
        connectors' partitions by name."""
        delivered: Counter[str] = Counter()
        for by_stream in taken.values():
            delivered.update(by_stream)
        streams: dict[str, StreamCounters] = {}
        for i, name in enumerate(self._streams):
            source = self._sources.get(name, "")
            processed = self.records[source] if source in self._sources else delivered[source]
            streams[name] = StreamCounters(processed=processed, output=self.records[name],
                                           window_flushes=self.windows[name],
                                           late=engine.late_events if i == 0 else 0,
                                           expression_errors=engine.expression_errors if i == 0 else 0)
        states = {name: _state(part) for name, part in connectors.items()}
        cpu, rss = process_usage()
        return WorkerCounters(streams, states, cpu_seconds=cpu, rss_bytes=rss).to_data()


def _state(partition: object) -> ConnectorState:
    counters = getattr(partition, "counters", None)
    return ConnectorState(bool(getattr(partition, "healthy", True)), int(getattr(counters, "messages_in", 0)),
                          int(getattr(counters, "messages_out", 0)), bool(getattr(partition, "circuit_open", False)))
