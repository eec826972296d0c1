"""The metrics of RUN.md §4: every metric of the table with its name, type and labels, series at 0
from the start, counters monotonic across restarts, `/healthz`, and the server's start-up errors."""

from __future__ import annotations

import contextlib
import io
import os
import queue
import socket
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator

import msgpack
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.scrape import http_get
from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.engine.plan import build_plan
from varpulis_mp.io.line_source import LineSource
from varpulis_mp.lang.frontend import load_program
from varpulis_mp.runtime.live import run_live
from varpulis_mp.runtime.live_feed import FeedSource
from varpulis_mp.runtime.metrics_counters import LATENCY_BOUNDS_S, LatencyHistogram, WorkerCounters
from varpulis_mp.runtime.metrics_latency import EntryTimes, LatencyMeter, TimedFeed
from varpulis_mp.runtime.metrics_server import MetricsServer, MetricsServerError
from varpulis_mp.runtime.metrics_state import ContextLayout, MetricsLayout, MetricsState
from varpulis_mp.runtime.rejections import RejectionLog

WORKER = {"context", "worker"}
STREAM = {"context", "worker", "stream"}

# RUN.md §4's table: exposed sample name -> (type, label names). A histogram's samples are its
# `_bucket` (with `le`), `_sum` and `_count`.
TABLE: dict[str, tuple[str, set[str]]] = {
    "varpulis_events_total": ("counter", {"event_type"}),
    "varpulis_events_processed_total": ("counter", STREAM),
    "varpulis_output_events_total": ("counter", STREAM),
    "varpulis_window_flushes_total": ("counter", STREAM),
    "varpulis_context_channel_utilization": ("gauge", {"from_context", "to_context"}),
    "varpulis_processing_latency_seconds": ("histogram", WORKER),
    "varpulis_events_rejected_total": ("counter", {"source", "reason"}),
    "varpulis_late_events_total": ("counter", STREAM),
    "varpulis_expression_errors_total": ("counter", STREAM),
    "varpulis_worker_up": ("gauge", WORKER),
    "varpulis_worker_restarts_total": ("counter", WORKER),
    "varpulis_events_lost_total": ("counter", STREAM),
    "varpulis_connector_healthy": ("gauge", {"connector", "connector_type", "context", "worker"}),
    "varpulis_connector_messages_total": ("counter", {"connector", "direction", "context", "worker"}),
    "varpulis_dlq_events_total": ("counter", {"connector", "reason"}),
    "varpulis_sink_circuit_open": ("gauge", {"connector", "context", "worker"}),
    "varpulis_worker_cpu_seconds_total": ("counter", WORKER),
    "varpulis_worker_resident_memory_bytes": ("gauge", WORKER),
}

PROGRAM = b"""\
context ingest
context compute

connector Broker = mqtt(host: "localhost", client_id: "plant-7")
connector Hook = http(url: "http://127.0.0.1:8080/alerts")

stream Valid = SensorReading.from(Broker, topic: "sensors/+/reading")
    .context(ingest)
    .where(value > 0)
    .emit(context: compute, sensor_id: sensor_id, value: value)

stream Stats = Valid
    .context(compute)
    .window(1m)
    .aggregate(n: count())
    .to(Hook)
"""


def _layout() -> MetricsLayout:
    return MetricsLayout.from_plan(build_plan(load_program(PROGRAM, "p.vpl")))


def _scrape(state: MetricsState) -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    """Family name -> (type, samples) of the text a server serves for `state`."""
    with MetricsServer("127.0.0.1", 0, state) as server:
        text = http_get(server.url + "/metrics")[1]
    return {f.name: (f.type, [(s.name, s.labels, s.value) for s in f.samples])
            for f in text_string_to_metric_families(text)}


def _samples(scraped: dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]
             ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(name, tuple(sorted(labels.items()))): value
            for _type, samples in scraped.values() for name, labels, value in samples}


def _populated() -> MetricsState:
    state = MetricsState(_layout())
    counters = WorkerCounters.zero(("Valid",), ("Broker",))
    counters.streams["Valid"].processed = 10
    counters.streams["Valid"].output = 7
    counters.streams["Valid"].expression_errors = 1
    counters.connectors["Broker"].healthy = True
    counters.connectors["Broker"].messages_in = 11
    counters.latency.observe(0.0003)
    counters.latency.observe(2.0)
    counters.cpu_seconds, counters.rss_bytes = 1.5, 50_000_000
    state.apply("ingest", 0, counters)
    for context in ("ingest", "compute"):
        state.worker_ready(context, 0)
    state.set_events({"SensorReading": 11})
    state.set_rejected({("Broker", "not JSON"): 2, ("input", "bad value"): 1})
    state.set_dead_letters({("Hook", "circuit open"): 3})
    state.set_channel("ingest", "compute", 250, 1000)
    return state


def test_every_metric_of_the_table_is_exposed_with_its_type_and_labels() -> None:
    scraped = _scrape(_populated())
    by_sample: dict[str, tuple[str, set[str]]] = {}
    for family_type, samples in scraped.values():
        for name, labels, _value in samples:
            base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") \
                if family_type == "histogram" else name
            found = set(labels) - ({"le"} if name.endswith("_bucket") else set())
            assert by_sample.setdefault(base, (family_type, found)) == (family_type, found), name
    assert by_sample == TABLE


def test_values_reach_their_series() -> None:
    samples = _samples(_scrape(_populated()))
    ingest = (("context", "ingest"), ("stream", "Valid"), ("worker", "0"))
    assert samples[("varpulis_events_processed_total", ingest)] == 10
    assert samples[("varpulis_output_events_total", ingest)] == 7
    assert samples[("varpulis_expression_errors_total", ingest)] == 1
    assert samples[("varpulis_events_total", (("event_type", "SensorReading"),))] == 11
    assert samples[("varpulis_events_rejected_total", (("reason", "not JSON"), ("source", "Broker")))] == 2
    assert samples[("varpulis_dlq_events_total", (("connector", "Hook"), ("reason", "circuit open")))] == 3
    channel = (("from_context", "ingest"), ("to_context", "compute"))
    assert samples[("varpulis_context_channel_utilization", channel)] == 0.25
    worker = (("context", "ingest"), ("worker", "0"))
    assert samples[("varpulis_processing_latency_seconds_count", worker)] == 2
    assert samples[("varpulis_processing_latency_seconds_sum", worker)] == pytest.approx(2.0003)
    assert samples[("varpulis_processing_latency_seconds_bucket", (*worker[:1], ("le", "0.0005"), worker[1]))] == 1
    assert samples[("varpulis_processing_latency_seconds_bucket", (*worker[:1], ("le", "+Inf"), worker[1]))] == 2
    assert samples[("varpulis_worker_cpu_seconds_total", worker)] == 1.5
    assert samples[("varpulis_worker_resident_memory_bytes", worker)] == 50_000_000
    broker = (("connector", "Broker"), ("connector_type", "mqtt"), ("context", "ingest"), ("worker", "0"))
    assert samples[("varpulis_connector_healthy", broker)] == 1
    inbound = (("connector", "Broker"), ("context", "ingest"), ("direction", "in"), ("worker", "0"))
    assert samples[("varpulis_connector_messages_total", inbound)] == 11


def test_every_known_series_is_there_at_zero_before_anything_moves() -> None:
    samples = _samples(_scrape(MetricsState(_layout())))
    for stream, context in (("Valid", "ingest"), ("Stats", "compute")):
        labels = (("context", context), ("stream", stream), ("worker", "0"))
        for name, (_kind, label_names) in TABLE.items():
            if label_names == STREAM:
                assert samples[(name, labels)] == 0, name
    for context in ("ingest", "compute"):
        worker = (("context", context), ("worker", "0"))
        for name in ("varpulis_worker_up", "varpulis_worker_restarts_total", "varpulis_worker_cpu_seconds_total",
                     "varpulis_worker_resident_memory_bytes", "varpulis_processing_latency_seconds_count"):
            assert samples[(name, worker)] == 0, name
        buckets = [k for k in samples if k[0] == "varpulis_processing_latency_seconds_bucket"
                   and dict(k[1])["context"] == context]
        assert len(buckets) == len(LATENCY_BOUNDS_S) + 1
    assert samples[("varpulis_events_total", (("event_type", "SensorReading"),))] == 0
    assert samples[("varpulis_context_channel_utilization",
                    (("from_context", "ingest"), ("to_context", "compute")))] == 0
    # The subscription's connector in its context, the sink's in its own; each in its direction.
    assert samples[("varpulis_connector_healthy",
                    (("connector", "Broker"), ("connector_type", "mqtt"), ("context", "ingest"), ("worker", "0")))] == 0
    assert samples[("varpulis_sink_circuit_open", (("connector", "Hook"), ("context", "compute"), ("worker", "0")))] == 0
    directions = {(dict(k[1])["connector"], dict(k[1])["direction"])
                  for k in samples if k[0] == "varpulis_connector_messages_total"}
    assert directions == {("Broker", "in"), ("Hook", "out")}


def test_a_pool_has_one_series_per_worker_and_its_subscriptions_in_worker_0() -> None:
    layout = MetricsLayout((ContextLayout("heavy", ("S",), ("Broker",), ("Hook",), workers=3),),
                           connector_kinds={"Broker": "nats", "Hook": "http"})
    samples = _samples(_scrape(MetricsState(layout)))
    up = sorted(dict(k[1])["worker"] for k in samples if k[0] == "varpulis_worker_up")
    assert up == ["0", "1", "2"]
    healthy = sorted((dict(k[1])["connector"], dict(k[1])["worker"])
                     for k in samples if k[0] == "varpulis_connector_healthy")
    assert healthy == [("Broker", "0"), ("Hook", "0"), ("Hook", "1"), ("Hook", "2")]


def _counters(processed: int, output: int, messages: int, cpu: float, latencies: list[float]) -> WorkerCounters:
    counters = WorkerCounters.zero(("Valid",), ("Broker",))
    counters.streams["Valid"].processed = processed
    counters.streams["Valid"].output = output
    counters.connectors["Broker"].messages_in = messages
    counters.connectors["Broker"].healthy = True
    counters.cpu_seconds = cpu
    counters.rss_bytes = 1000
    for seconds in latencies:
        counters.latency.observe(seconds)
    return counters


def test_counters_stay_monotonic_across_a_worker_restart() -> None:
    state = MetricsState(_layout())
    state.worker_ready("ingest", 0)
    state.apply("ingest", 0, _counters(100, 60, 120, 2.0, [0.001, 0.002]))
    before = _samples(_scrape(state))

    state.worker_exited("ingest", 0)
    state.worker_restarted("ingest", 0)
    state.add_lost("ingest", 0, "Valid", 5)
    while_down = _samples(_scrape(state))
    state.worker_ready("ingest", 0)
    state.apply("ingest", 0, _counters(3, 1, 4, 0.1, [0.5]))  # the replacement starts from 0
    after = _samples(_scrape(state))

    counters = {name for name, (kind, _labels) in TABLE.items() if kind in ("counter", "histogram")}
    for key, value in before.items():
        if any(key[0].startswith(name) for name in counters):
            assert while_down[key] >= value, key
            assert after[key] >= while_down[key], key
    valid = (("context", "ingest"), ("stream", "Valid"), ("worker", "0"))
    worker = (("context", "ingest"), ("worker", "0"))
    assert after[("varpulis_events_processed_total", valid)] == 103
    assert after[("varpulis_output_events_total", valid)] == 61
    assert after[("varpulis_events_lost_total", valid)] == 5
    assert after[("varpulis_worker_restarts_total", worker)] == 1
    assert after[("varpulis_worker_cpu_seconds_total", worker)] == pytest.approx(2.1)
    assert after[("varpulis_processing_latency_seconds_count", worker)] == 3
    # Gauges are the present process's: down and disconnected while it is gone.
    assert while_down[("varpulis_worker_up", worker)] == 0
    assert while_down[("varpulis_worker_resident_memory_bytes", worker)] == 0
    broker = (("connector", "Broker"), ("connector_type", "mqtt"), ("context", "ingest"), ("worker", "0"))
    assert while_down[("varpulis_connector_healthy", broker)] == 0
    assert after[("varpulis_connector_healthy", broker)] == 1
    inbound = (("connector", "Broker"), ("context", "ingest"), ("direction", "in"), ("worker", "0"))
    assert after[("varpulis_connector_messages_total", inbound)] == 124


def test_worker_counters_cross_msgpack_and_a_malformed_message_is_a_value_error() -> None:
    counters = _counters(7, 3, 9, 0.25, [0.0001, 0.03, 5.0])
    counters.connectors["Broker"].circuit_open = True
    data = msgpack.unpackb(msgpack.packb(counters.to_data()))
    assert WorkerCounters.from_data(data) == counters
    for broken in ({}, {**data, "latency": [[1, 2], 0.0, 3]}, {**data, "streams": {"Valid": [1, "x"]}},
                   {**data, "connectors": [1]}):
        with pytest.raises(ValueError, match="malformed worker counters"):
            WorkerCounters.from_data(broken)


def test_healthz_is_200_while_every_context_is_up_and_subscribed_then_503_with_the_reason() -> None:
    state = MetricsState(_layout())
    with MetricsServer("127.0.0.1", 0, state) as server:
        status, body = http_get(server.url + "/healthz")
        assert (status, body) == (503, "context 'ingest' is not up; context 'compute' is not up\n")

        state.worker_ready("ingest", 0)
        state.worker_ready("compute", 0)
        status, body = http_get(server.url + "/healthz")
        assert (status, body) == (503, "context 'ingest': connector 'Broker' is not connected\n")

        state.apply("ingest", 0, _counters(1, 1, 1, 0.0, []))
        assert http_get(server.url + "/healthz") == (200, "ok\n")

        state.worker_exited("compute", 0)
        assert http_get(server.url + "/healthz") == (503, "context 'compute' is not up\n")
        assert http_get(server.url + "/nothing")[0] == 404


def test_a_port_in_use_is_an_error_naming_the_port() -> None:
    with _listening() as port:
        with pytest.raises(MetricsServerError, match=f"port {port} is in use"):
            MetricsServer("127.0.0.1", port, MetricsState(_layout()))


def test_an_address_that_is_not_here_is_an_error_naming_it() -> None:
    with pytest.raises(MetricsServerError, match="cannot serve metrics on 192.0.2.1:"):
        MetricsServer("192.0.2.1", 0, MetricsState(_layout()))  # TEST-NET-1: never a local address


def test_close_stops_listening() -> None:
    server = MetricsServer("127.0.0.1", 0, MetricsState(_layout()))
    assert http_get(server.url + "/metrics")[0] == 200
    server.close()
    server.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


@contextlib.contextmanager
def _listening() -> Iterator[int]:
    """A port another program listens on, for as long as the block lasts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def test_latency_is_counted_per_record_from_the_wake_up_that_brought_its_event() -> None:
    entries = EntryTimes()
    meter = LatencyMeter(entries, [0, 1], 2)  # stream 0 in slot 0, stream 1 in slot 1
    now = time.monotonic()
    entries.mark(3, now - 0.2)  # origins 1..3 entered 200 ms ago
    entries.mark(5, now - 0.002)  # origins 4..5 entered 2 ms ago
    entries.ended(now)  # the end-of-input flush's origins: now
    meter.records([1, 1, 3, 4, 5, 6], [0, 1, 0, 0, 1, 1])
    first, second = meter.copies()
    assert (first.count, second.count) == (3, 3)
    assert first.counts[LATENCY_BOUNDS_S.index(0.25)] == 2  # 2 records of slot 0 from 200 ms ago
    assert first.counts[LATENCY_BOUNDS_S.index(0.0025)] == 1
    assert second.counts[LATENCY_BOUNDS_S.index(0.25)] == 1
    assert 0.2 * 3 < first.sum_s + second.sum_s < 0.21 * 3 + 0.05
    entries.forget(6)  # nothing before origin 6 is wanted any more: only the end's mark is kept
    assert entries.ends == [1 << 62]


def test_the_supervisors_latency_is_exposed_beside_the_workers_counters() -> None:
    state = MetricsState(MetricsLayout((ContextLayout("a", ("S",)),)))
    observed = LatencyHistogram()
    observed.observe(0.003, 7)
    state.set_latency("a", 0, observed)
    state.apply("a", 0, WorkerCounters.zero(("S",)))
    state.worker_exited("a", 0)  # a restart banks the worker's counters; the supervisor's stay
    latency = state.snapshot().workers[0].counters.latency
    assert (latency.count, round(latency.sum_s, 6)) == (7, 0.021)


# One record per `R` (its origin is the event's); sessions of `V` closed by the clock between
# wake-ups (their records take the last origin); `T` is read by no stream.
_ONE_PROCESS = """\
stream Echo = R.emit(v: v)
stream Visits = V.window(session: 20ms).aggregate(n: count())
"""


def _wake_up(k: int) -> list[str]:
    """The lines of one wake-up: events of every kind, a rejected line and a comment, ending with
    an `R` (whose record says the wake-up was handed over)."""
    lines = [f"@{k} T {{ t: {i}.5 }}" for i in range(k % 4 * 20)]  # enough to go unbuilt
    lines += ["# a comment", f"@{k} R {{ v: }}", f'{{"event_type": "T", "ts": {k}, "t": 1.5}}']
    if k % 3 == 0:
        lines.append(f"@{k} V {{ u: 1 }}")
    lines += [f"@{k} R {{ v: {k}, w: 1 }}", f"@{k} T {{ t: 2.5 }}", f"@{k} R {{ v: {k} }}"]
    return lines


def test_latency_marks_are_the_origins_the_one_process_driver_numbered() -> None:
    """`run_live` numbers the origins and the feed marks each wake-up's entry at the driver's
    number: lines of a type no stream reads (unbuilt or built), rejected lines, comments and
    ticks between wake-ups cannot make the two drift. Every record is timed from the mark of the
    wake-up that brought its event, and the histogram counts every record once."""
    checked = load_program(_ONE_PROCESS, "p.vpl")
    entries = EntryTimes()
    meter = LatencyMeter.for_plan(entries, build_plan(checked))
    read_end, write_end = os.pipe()
    feed = TimedFeed([FeedSource("input", "<stdin>", LineSource(read_end, owned=True))],
                     [s.name for s in checked.streams], RejectionLog(io.StringIO(), clock=lambda: 0.0), entries)
    handed: list[tuple[list[Output], list[int], bool]] = []  # records, the marks then, flush
    echoed: queue.Queue[int] = queue.Queue()

    def on_origin(outputs: list[Output], flush: bool) -> None:
        entries.take()
        records = [o for o in outputs if o.kind == "record"]
        handed.append((records, list(entries.ends), flush))
        meter.outputs(outputs)
        for o in records:
            if o.stream == "Echo":
                echoed.put(o.origin)

    result: list[Summary | BaseException] = []

    def drive() -> None:
        try:
            result.append(run_live(checked, feed, on_origin))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            result.append(exc)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    # The origin each wake-up reaches: every event line counts, whether read or not.
    reached: list[int] = []
    events = 0
    try:
        for k in range(1, 13):
            lines = _wake_up(k)
            events += sum(1 for line in lines if not line.startswith("#") and "{ v: }" not in line)
            reached.append(events)
            text = ("\n".join(lines) + "\n").encode()
            assert len(text) < 4096  # one write a pipe takes whole: one wake-up
            os.write(write_end, text)
            got = 0
            while got != events:  # the wake-up's last R is handed over (waits bounded by the get)
                got = echoed.get(timeout=10)
            time.sleep(0.05)  # ticks, and the clock closes V's session
    finally:
        os.close(write_end)
        driver.join(10)
    assert not driver.is_alive()
    summary = result[0]
    assert isinstance(summary, Summary), summary
    assert summary.events_processed == events and summary.rejected_events == 12
    ended = 1 << 62  # the mark of the input's end (`EntryTimes.ended`)
    marked = [end for end in entries.ends if end < ended]
    assert marked[-1] == events  # the feed's last mark is the driver's last origin
    closed_by_clock = 0
    for records, ends, flush in handed:
        for o in records:
            if flush:
                assert o.origin == events + 1 and ends[-1] == ended
                continue
            # Marked before it is handed over, at the end of the wake-up that brought its event.
            j = bisect_left(ends, o.origin)
            assert j < len(ends) and ends[j] in reached, (o, ends)
            if o.stream == "Echo":
                assert ends[j] == reached[bisect_left(reached, o.origin)], (o, ends)
            else:
                closed_by_clock += 1
    assert closed_by_clock >= 2  # sessions closed by ticks between wake-ups
    delivered = sum(len(r) for r, _, _ in handed)
    assert sum(h.count for h in meter.copies()) == delivered
