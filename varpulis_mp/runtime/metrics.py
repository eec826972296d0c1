"""`run --metrics`: the Prometheus metrics of RUN.md §4 and `/healthz`, served over HTTP.

Owns `MetricsCollector`, the one collector that turns a `MetricsState` snapshot
(runtime/metrics_state.py) into every metric of RUN.md §4's table, with exactly its name, type
and labels, every known series present from the start at 0; and `HttpServer`, which answers
`GET /metrics` (Prometheus text format) and `GET /healthz` through the standard library's
`http.server`, on the socket of a `MetricsServer` (runtime/metrics_server.py), which loads this
module when the first request comes. The collector has a registry of its own: nothing goes through
prometheus_client's global registry or a multiprocess directory, since the workers' counters
come to the supervisor over the control channel. The only importer of prometheus_client.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from varpulis_mp.runtime.metrics_state import MetricsState, Snapshot

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "HttpServer", "MetricsCollector"]

DEFAULT_HOST: Final = "127.0.0.1"  # nothing reachable from elsewhere unless asked (RUN.md §2)
DEFAULT_PORT: Final = 9090

_WORKER = ["context", "worker"]
_STREAM = [*_WORKER, "stream"]

# The per-stream counters: (metric name, help, StreamCounters attribute).
_STREAM_COUNTERS: Final = (
    ("varpulis_events_processed_total", "Records delivered to the stream.", "processed"),
    ("varpulis_output_events_total", "Output records of the stream.", "output"),
    ("varpulis_window_flushes_total", "Windows the stream closed.", "window_flushes"),
    ("varpulis_late_events_total", "Events that came after their window closed.", "late"),
    ("varpulis_expression_errors_total", "Expression errors of the stream.", "expression_errors"),
    ("varpulis_events_lost_total", "Records of the stream lost in worker restarts.", "lost"),
)


class MetricsCollector(Collector):
    """Every metric of RUN.md §4, from one snapshot of the state per scrape."""

    def __init__(self, state: MetricsState) -> None:
        self._state = state

    def collect(self) -> Iterable[Metric]:
        snap = self._state.snapshot()
        yield from self._supervisor_counts(snap)
        yield from self._stream_counters(snap)
        yield from self._worker_metrics(snap)
        yield from self._connector_metrics(snap)

    @staticmethod
    def _supervisor_counts(snap: Snapshot) -> Iterator[Metric]:
        events = CounterMetricFamily("varpulis_events_total", "Events accepted from every source.",
                                     labels=["event_type"])
        for event_type, n in snap.events.items():
            events.add_metric([event_type], n)
        rejected = CounterMetricFamily("varpulis_events_rejected_total", "Input that could not be read.",
                                       labels=["source", "reason"])
        for (source, reason), n in snap.rejected.items():
            rejected.add_metric([source, reason], n)
        dlq = CounterMetricFamily("varpulis_dlq_events_total", "Records and payloads written to the dead letters.",
                                  labels=["connector", "reason"])
        for (connector, reason), n in snap.dead_letters.items():
            dlq.add_metric([connector, reason], n)
        channels = GaugeMetricFamily("varpulis_context_channel_utilization",
                                     "Records in flight on a channel between contexts / its capacity.",
                                     labels=["from_context", "to_context"])
        for (source, target), utilization in snap.channels.items():
            channels.add_metric([source, target], utilization)
        yield from (events, rejected, dlq, channels)

    @staticmethod
    def _stream_counters(snap: Snapshot) -> Iterator[Metric]:
        for name, documentation, attribute in _STREAM_COUNTERS:
            family = CounterMetricFamily(name, documentation, labels=_STREAM)
            for w in snap.workers:
                for stream, counters in w.counters.streams.items():
                    if attribute != "lost" and w.streams and stream not in w.streams:
                        continue  # an event type of the input: only its records lost in restarts count here
                    family.add_metric([w.context, str(w.worker), stream], getattr(counters, attribute))
            yield family

    @staticmethod
    def _worker_metrics(snap: Snapshot) -> Iterator[Metric]:
        latency = HistogramMetricFamily("varpulis_processing_latency_seconds",
                                        "Time from a source to an output record.", labels=_WORKER)
        up = GaugeMetricFamily("varpulis_worker_up", "1 while the worker is ready.", labels=_WORKER)
        restarts = CounterMetricFamily("varpulis_worker_restarts_total", "Restarts of the worker.", labels=_WORKER)
        cpu = CounterMetricFamily("varpulis_worker_cpu_seconds_total", "CPU time of the worker's processes.",
                                  labels=_WORKER)
        rss = GaugeMetricFamily("varpulis_worker_resident_memory_bytes", "Resident memory of the worker's process.",
                                labels=_WORKER)
        for w in snap.workers:
            labels = [w.context, str(w.worker)]
            c = w.counters
            latency.add_metric(labels, c.latency.cumulative(), c.latency.sum_s)
            up.add_metric(labels, 1 if w.up else 0)
            restarts.add_metric(labels, w.restarts)
            cpu.add_metric(labels, c.cpu_seconds)
            rss.add_metric(labels, c.rss_bytes)
        yield from (latency, up, restarts, cpu, rss)

    @staticmethod
    def _connector_metrics(snap: Snapshot) -> Iterator[Metric]:
        healthy = GaugeMetricFamily("varpulis_connector_healthy", "1 while the connector is connected.",
                                    labels=["connector", "connector_type", *_WORKER])
        messages = CounterMetricFamily("varpulis_connector_messages_total", "Messages through the connector.",
                                       labels=["connector", "direction", *_WORKER])
        circuit = GaugeMetricFamily("varpulis_sink_circuit_open", "1 while the sink's circuit is open.",
                                    labels=["connector", *_WORKER])
        for w in snap.workers:
            where = [w.context, str(w.worker)]
            for name, state in w.counters.connectors.items():
                healthy.add_metric([name, snap.connector_kinds.get(name, ""), *where], 1 if state.healthy else 0)
                # A direction the worker never uses has no series (a connector it did not
                # expect to hold shows both).
                known = name in w.subscriptions or name in w.sinks
                if name in w.subscriptions or not known:
                    messages.add_metric([name, "in", *where], state.messages_in)
                if name in w.sinks or not known:
                    messages.add_metric([name, "out", *where], state.messages_out)
                if name in w.sinks:
                    circuit.add_metric([name, *where], 1 if state.circuit_open else 0)
        yield from (healthy, messages, circuit)


class HttpServer(ThreadingHTTPServer):
    """`http.server` around the listening socket of a `MetricsServer` (runtime/metrics_server.py),
    which calls `handle_request()` whenever that socket is readable; each request has a thread."""

    daemon_threads = True  # a scraper that hangs on never holds the run's exit

    def __init__(self, listening: socket.socket, state: MetricsState) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(MetricsCollector(state))
        self.address_family = listening.family
        self.registry = registry
        self.state = state
        address = listening.getsockname()
        super().__init__(address[:2], _Handler, bind_and_activate=False)
        self.socket.close()  # the one made here: the socket served is the one already listening
        self.socket = listening
        self.server_address = address
        self.server_name = str(address[0])
        self.server_port = int(address[1])


class _Handler(BaseHTTPRequestHandler):
    timeout = 10.0  # a client that stops sending never holds a thread for long
    server: HttpServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, CONTENT_TYPE_LATEST, generate_latest(self.server.registry))
        elif path == "/healthz":
            ok, reason = self.server.state.health()
            self._reply(200 if ok else 503, "text/plain; charset=utf-8", f"{reason}\n".encode())
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        """No line per request: standard error carries the run's own log."""
