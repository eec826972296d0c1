"""What one worker process counts for the metrics (RUN.md §4), as plain data.

Owns `WorkerCounters`: per stream (`StreamCounters`) the records delivered, output records, window
flushes, late events, expression errors and records lost in restarts; per connector
(`ConnectorState`) whether it is connected, its messages in and out and whether its sink's
circuit is open; the latency of its records (`LatencyHistogram`, source to output); and the
process's CPU seconds and resident memory. A worker's counters are cumulative since that
process started; `plus` adds a later life's counters to an earlier one's, so that the totals
stay monotonic across restarts (runtime/metrics_state.py keeps the dead lives' sum).

`to_data`/`from_data` give the form the control channel carries (msgpack: dicts, lists, ints,
floats, bools and strings only). `process_usage` is what a process reads of itself for the last
two, from the standard library.
"""

from __future__ import annotations

import os
import resource
from bisect import bisect_left
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

__all__ = [
    "LATENCY_BOUNDS_S",
    "ConnectorState",
    "LatencyHistogram",
    "StreamCounters",
    "WorkerCounters",
    "process_usage",
]

# Upper bounds of the latency buckets, in seconds: 0.1 ms to 1 s (RUN.md §4); +Inf is implied.
LATENCY_BOUNDS_S: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                           0.25, 0.5, 1.0)


@dataclass(slots=True)
class StreamCounters:
    processed: int = 0  # records delivered to the stream
    output: int = 0  # output records of the stream
    window_flushes: int = 0  # windows closed
    late: int = 0  # late events
    expression_errors: int = 0
    lost: int = 0  # records lost in restarts (counted by the supervisor, RUN.md §6)

    def plus(self, later: StreamCounters) -> StreamCounters:
        return StreamCounters(*(getattr(self, f.name) + getattr(later, f.name) for f in fields(self)))


@dataclass(slots=True)
class ConnectorState:
    """Counters add up across lives; `healthy` and `circuit_open` are the present life's."""

    healthy: bool = False  # connected (MQTT: CONNACK and SUBACK received; NATS: connected and subscribed)
    messages_in: int = 0
    messages_out: int = 0
    circuit_open: bool = False

    def plus(self, later: ConnectorState) -> ConnectorState:
        return ConnectorState(later.healthy, self.messages_in + later.messages_in,
                              self.messages_out + later.messages_out, later.circuit_open)


@dataclass(slots=True)
class LatencyHistogram:
    """Observations by bucket (not cumulative: `counts[i]` holds those in (bound[i-1], bound[i]],
    the last one those above 1 s), with their sum and count."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_S) + 1))
    sum_s: float = 0.0
    count: int = 0

    def observe(self, seconds: float, n: int = 1) -> None:
        """`n` observations of `seconds` each (records that waited as long as each other)."""
        self.counts[bisect_left(LATENCY_BOUNDS_S, seconds)] += n
        self.sum_s += seconds * n
        self.count += n

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it) per bucket, `+Inf` last: Prometheus' form."""
        found: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*(repr(b) for b in LATENCY_BOUNDS_S), "+Inf"), self.counts, strict=True):
            running += n
            found.append((bound, running))
        return found

    def plus(self, later: LatencyHistogram) -> LatencyHistogram:
        return LatencyHistogram([a + b for a, b in zip(self.counts, later.counts, strict=True)],
                                self.sum_s + later.sum_s, self.count + later.count)


@dataclass(slots=True)
class WorkerCounters:
    streams: dict[str, StreamCounters] = field(default_factory=dict)
    connectors: dict[str, ConnectorState] = field(default_factory=dict)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    cpu_seconds: float = 0.0
    rss_bytes: int = 0  # a gauge: the present life's

    @classmethod
    def zero(cls, streams: tuple[str, ...] = (), connectors: tuple[str, ...] = ()) -> WorkerCounters:
        return cls({s: StreamCounters() for s in streams}, {c: ConnectorState() for c in connectors})

    def plus(self, later: WorkerCounters) -> WorkerCounters:
        """This life's counters followed by `later`'s: counters add up, gauges are `later`'s (a
        connector `later` does not report is not connected and has no open circuit)."""
        streams = {name: self.streams.get(name, StreamCounters()).plus(later.streams.get(name, StreamCounters()))
                   for name in (*self.streams, *(n for n in later.streams if n not in self.streams))}
        connectors = {
            name: self.connectors.get(name, ConnectorState()).plus(later.connectors.get(name, ConnectorState()))
            for name in (*self.connectors, *(n for n in later.connectors if n not in self.connectors))}
        return WorkerCounters(streams, connectors, self.latency.plus(later.latency),
                              self.cpu_seconds + later.cpu_seconds, later.rss_bytes)

    def with_latency(self, observed: LatencyHistogram) -> WorkerCounters:
        """These counters with `observed` (what the supervisor measured) added to the latency."""
        return replace(self, latency=self.latency.plus(observed))

    def to_data(self) -> dict[str, Any]:
        return {
            "streams": {name: [getattr(s, f.name) for f in fields(s)] for name, s in self.streams.items()},
            "connectors": {name: [c.healthy, c.messages_in, c.messages_out, c.circuit_open]
                           for name, c in self.connectors.items()},
            "latency": [list(self.latency.counts), self.latency.sum_s, self.latency.count],
            "cpu_seconds": self.cpu_seconds,
            "rss_bytes": self.rss_bytes,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> WorkerCounters:
        """The inverse of `to_data`; raises ValueError (never anything else) for a malformed message."""
        try:
            counts, sum_s, count = data["latency"]
            latency = LatencyHistogram([int(n) for n in counts], float(sum_s), int(count))
            if len(latency.counts) != len(LATENCY_BOUNDS_S) + 1:
                raise ValueError(f"{len(latency.counts)} latency buckets")
            return cls(
                {str(name): StreamCounters(*(int(v) for v in values)) for name, values in data["streams"].items()},
                {str(name): ConnectorState(bool(h), int(i), int(o), bool(c))
                 for name, (h, i, o, c) in data["connectors"].items()},
                latency, float(data["cpu_seconds"]), int(data["rss_bytes"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed worker counters: {exc}") from exc


def process_usage() -> tuple[float, int]:
    """This process's CPU seconds (user and system) and resident memory in bytes (0 where
    /proc is not there to say)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        with open("/proc/self/statm", "rb") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = 0
    return usage.ru_utime + usage.ru_stime, rss
