"""Bytewax 0.21 dataflows doing the work of the benchmark programs, for the engine comparison.

Each builder takes the in-memory events (`(type, ts_ms, fields)` tuples from `gen.events`) and a
`CountingSink`, and returns a `Dataflow` that reads the events with `TestingSource`, computes the
same output records as the VPL program (same fields, same thresholds, same windows) and writes
them to the sink, which counts them. `run(name, events)` runs one with `run_main` (one worker, in
this thread) and returns the number of records that reached the sink.

* `filter`: `filter.vpl` - SensorReading with temperature > 80, emitted as {sensor, temp}.
* `count_window`: `count_window.vpl` - per (type, sensor) tumbling count window of 10 values
  (VPL.md section 8.4) aggregated to avg/min/max/count, kept when avg > 60 (TempReading) or
  > 1025 (PressureReading). Written with `op.stateful` (what `stateful_map` is built on) so that
  the partial windows are flushed at end of input, as VPL does (section 10.2).
* `tumbling`: `zone_tumbling.vpl` - per-zone 1 s tumbling count/avg(temperature)/max(value), with
  Bytewax's own windowing: `fold_window` + `TumblingWindower` + `EventClock` (watermark = largest
  event time seen: no waiting, and a frozen "system clock" so wall time never moves it).
* `tumbling_stateful`: the same aggregate hand-written with `op.stateful` keyed by zone, keeping
  the current window index and closing a zone's window when that zone's next record falls in a
  later window, the rest at end of input. Same records, less machinery than `fold_window`.
* `chain`: `chain.vpl` - three filter stages, every stage's records go to the sink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.operators import StatefulLogic
from bytewax.operators.windowing import EventClock, TumblingWindower, fold_window
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSource, run_main

Event = tuple[str, int, dict[str, Any]]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Items handed to the dataflow per source batch (TestingSource's default of 1 would slow Bytewax down).
BATCH = 1000


class _CountPartition(StatelessSinkPartition[Any]):
    def __init__(self, sink: CountingSink) -> None:
        self._sink = sink

    def write_batch(self, items: list[Any]) -> None:
        self._sink.count += len(items)


class CountingSink(DynamicSink[Any]):
    """A sink that counts the items written to it (`.count`)."""

    def __init__(self) -> None:
        self.count = 0

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountPartition:
        return _CountPartition(self)


def _source(flow: Dataflow, events: Sequence[Event]) -> Stream[Event]:
    return op.input("inp", flow, TestingSource(events, batch_size=BATCH))


def filter_flow(events: Sequence[Event], sink: CountingSink) -> Dataflow:
    """filter.vpl: `SensorReading.where(temperature > 80.0).emit(sensor: sensor_id, temp: temperature)`."""
    flow = Dataflow("filter")
    s = _source(flow, events)
    hot = op.filter("where", s, lambda e: e[0] == "SensorReading" and e[2]["temperature"] > 80.0)
    out = op.map("emit", hot, lambda e: (e[1], {"sensor": e[2]["sensor_id"], "temp": e[2]["temperature"]}))
    op.output("out", out, sink)
    return flow


_COUNT_FIELD = {"TempReading": ("temperature", 60.0), "PressureReading": ("pressure", 1025.0)}


class _CountWindowLogic(StatefulLogic[Event, tuple[int, dict[str, Any]], list[float]]):
    """One key's tumbling count window of 10: releases an aggregate at every 10th value."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.sensor = ""
        self.threshold = 0.0
        self.last_ts = 0

    def _release(self) -> list[tuple[int, dict[str, Any]]]:
        vals = self.values
        self.values = []
        avg = sum(vals) / len(vals)
        if avg > self.threshold:
            return [(self.last_ts, {"sensor_id": self.sensor, "average": avg, "low": min(vals),
                                    "high": max(vals), "n": len(vals)})]
        return []

    def on_item(self, value: Event) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
        kind, ts, fields = value
        name, self.threshold = _COUNT_FIELD[kind]
        self.sensor = fields["sensor_id"]
        self.last_ts = ts
        self.values.append(fields[name])
        if len(self.values) == 10:
            return self._release(), StatefulLogic.RETAIN
        return [], StatefulLogic.RETAIN

    def on_eof(self) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
        return (self._release() if self.values else []), StatefulLogic.DISCARD

    def snapshot(self) -> list[float]:
        return list(self.values)


def count_window_flow(events: Sequence[Event], sink: CountingSink) -> Dataflow:
    """count_window.vpl: per-sensor count-window(10) avg/min/max/count then where(avg > threshold)."""
    flow = Dataflow("count_window")
    s = _source(flow, events)
    wanted = op.filter("types", s, lambda e: e[0] in _COUNT_FIELD)
    keyed = op.key_on("partition_by", wanted, lambda e: e[0] + "/" + e[2]["sensor_id"])
    stats = op.stateful("window", keyed, lambda _resume: _CountWindowLogic())
    op.output("out", stats, sink)
    return flow


def _frozen_now() -> datetime:
    return EPOCH


def tumbling_flow(events: Sequence[Event], sink: CountingSink) -> Dataflow:
    """zone_tumbling.vpl with Bytewax windowing: fold_window over a 1 s TumblingWindower, EventClock."""
    flow = Dataflow("tumbling")
    s = _source(flow, events)
    readings = op.filter("types", s, lambda e: e[0] == "SensorReading")
    keyed = op.key_on("partition_by", readings, lambda e: e[2]["zone"])
    clock: EventClock[Event] = EventClock(lambda e: EPOCH + timedelta(milliseconds=e[1]),
                                          wait_for_system_duration=timedelta(0), now_getter=_frozen_now)
    windower = TumblingWindower(length=timedelta(seconds=1), align_to=EPOCH)

    def folder(acc: list[float], e: Event) -> list[float]:
        f = e[2]
        acc[0] += 1
        acc[1] += f["temperature"]
        if f["value"] > acc[2]:
            acc[2] = f["value"]
        return acc

    def merger(a: list[float], b: list[float]) -> list[float]:
        return [a[0] + b[0], a[1] + b[1], max(a[2], b[2])]

    win = fold_window("window", keyed, clock, windower, lambda: [0, 0.0, float("-inf")], folder, merger)

    def emit(kv: tuple[str, tuple[int, list[float]]]) -> tuple[int, dict[str, Any]]:
        zone, (wid, acc) = kv
        return (wid + 1) * 1000 - 1, {"zone": zone, "n": int(acc[0]), "average": acc[1] / acc[0], "peak": acc[2]}

    op.output("out", op.map("aggregate", win.down, emit), sink)
    return flow


class _ZoneWindowLogic(StatefulLogic[Event, tuple[int, dict[str, Any]], list[Any]]):
    """One zone's current 1 s window: [window index, count, sum of temperature, max of value]."""

    def __init__(self) -> None:
        self.zone = ""
        self.k = -1
        self.n = 0
        self.total = 0.0
        self.peak = float("-inf")

    def _close(self) -> tuple[int, dict[str, Any]]:
        return (self.k + 1) * 1000 - 1, {"zone": self.zone, "n": self.n, "average": self.total / self.n,
                                         "peak": self.peak}

    def on_item(self, value: Event) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
        _, ts, f = value
        k = ts // 1000
        out = []
        if k != self.k:
            if self.n:
                out.append(self._close())
            self.zone, self.k, self.n, self.total, self.peak = f["zone"], k, 0, 0.0, float("-inf")
        self.n += 1
        self.total += f["temperature"]
        if f["value"] > self.peak:
            self.peak = f["value"]
        return out, StatefulLogic.RETAIN

    def on_eof(self) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
        return ([self._close()] if self.n else []), StatefulLogic.DISCARD

    def snapshot(self) -> list[Any]:
        return [self.zone, self.k, self.n, self.total, self.peak]


def tumbling_stateful_flow(events: Sequence[Event], sink: CountingSink) -> Dataflow:
    """zone_tumbling.vpl hand-written with `op.stateful` keyed by zone (window index in the state)."""
    flow = Dataflow("tumbling_stateful")
    s = _source(flow, events)
    readings = op.filter("types", s, lambda e: e[0] == "SensorReading")
    keyed = op.key_on("partition_by", readings, lambda e: e[2]["zone"])
    op.output("out", op.stateful("window", keyed, lambda _resume: _ZoneWindowLogic()), sink)
    return flow


def chain_flow(events: Sequence[Event], sink: CountingSink) -> Dataflow:
    """chain.vpl: three filter stages; the records of all three stages are output."""
    flow = Dataflow("chain")
    s = _source(flow, events)
    s1 = op.map("emit1", op.filter("where1", s, lambda e: e[0] == "SensorReading" and e[2]["temperature"] > 80.0),
                lambda e: (e[1], {"sensor_id": e[2]["sensor_id"], "temperature": e[2]["temperature"],
                                  "value": e[2]["value"], "zone": e[2]["zone"]}))
    s2 = op.map("emit2", op.filter("where2", s1, lambda r: r[1]["value"] > 130.0),
                lambda r: (r[0], {"sensor_id": r[1]["sensor_id"], "temperature": r[1]["temperature"],
                                  "value": r[1]["value"]}))
    s3 = op.map("emit3", op.filter("where3", s2, lambda r: r[1]["temperature"] > 93.3),
                lambda r: (r[0], {"sensor": r[1]["sensor_id"], "temp": r[1]["temperature"]}))
    op.output("out", op.merge("all", s1, s2, s3), sink)
    return flow


FLOWS: dict[str, Callable[[Sequence[Event], CountingSink], Dataflow]] = {
    "filter": filter_flow,
    "count_window": count_window_flow,
    "tumbling": tumbling_flow,
    "tumbling_stateful": tumbling_stateful_flow,
    "chain": chain_flow,
}


def run(name: str, events: Iterable[Event]) -> int:
    """Runs flow `name` over `events` to completion; returns the number of records it output."""
    sink = CountingSink()
    run_main(FLOWS[name](list(events) if not isinstance(events, list) else events, sink))  # type: ignore[no-untyped-call]
    return sink.count
