"""Each record of a sink has exactly one fate (RUN.md §6): published or a dead letter, never both.

A record that went out without its answer (the broker stopped between taking it and
acknowledging it, an endpoint that closed the connection instead of answering) may have been
taken: it is sent again once the far end is back, never diverted to the dead letters meanwhile;
and an acknowledgement read in the same breath as the end of the connection counts. Against a
real mosquitto and nats-server stopped under load, and a raw socket endpoint that hangs up once.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

from tests.brokers import Mosquitto, MqttClient, NatsClient, NatsServer, record, wait_until
from varpulis_mp.io.circuit import Circuit
from varpulis_mp.io.connectors import connector_kind
from varpulis_mp.io.dead_letters import DeadLetters
from varpulis_mp.io.delivery import DeliverySink, DeliverySinkPartition

BATCH = 1_000


def _guarded(spec: Any, dead: DeadLetters) -> DeliverySinkPartition:
    """The first failed attempt opens the circuit, and a trial comes soon: a short test."""
    assert isinstance(spec, DeliverySink)
    return spec.guarded(Circuit(reset_s=0.3, failures_to_open=1), dead).build(0, 1)


class _Writer(threading.Thread):
    """Writes records n = 0, 1, ... to a sink in batches until stopped, so that records are in
    flight whenever the broker goes; `written` is how many."""

    def __init__(self, sink: DeliverySinkPartition) -> None:
        super().__init__(daemon=True)
        self.sink = sink
        self.written = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sink.write_batch([record("S", n, n=n) for n in range(self.written, self.written + BATCH)], False)
            self.written += BATCH
            self._halt.wait(0.01)

    def stop(self) -> int:
        self._halt.set()
        self.join(10)
        assert not self.is_alive(), "the writer is stuck on a full sink buffer"
        return self.written


def _dead_ns(path: Path) -> list[int]:
    return [json.loads(line)["event"]["n"] for line in path.read_text().splitlines()] if path.exists() else []


def test_a_broker_stopped_with_records_in_flight_gets_each_record_published_or_dead_lettered_not_both(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    # A persistent session: what the broker took before it stopped reaches the collector after.
    collector = MqttClient(mosquitto.port, client_id="exact-collector", subscribe="out", qos=1)
    path = tmp_path / "dead.jsonl"
    dead = DeadLetters(str(path))
    params = {"host": "127.0.0.1", "port": mosquitto.port, "client_id": "exact", "qos": 1}
    sink = _guarded(connector_kind("mqtt").sink("Broker", params, {"topic": "out"}, "S", "c"), dead)
    writer = _Writer(sink)
    try:
        writer.start()
        wait_until(lambda: collector.payloads(), 10, "a first publication")
        mosquitto.stop()  # records in flight: some taken and acknowledged, some taken only
        wait_until(lambda: sink.circuit_open, 10, "the circuit to open")
        mosquitto.start()
        written = writer.stop()
        sink.close(timeout=10)
        dead.close()

        def published() -> set[int]:
            return {json.loads(p)["n"] for p in collector.payloads()}

        wait_until(lambda: published() | set(_dead_ns(path)) >= set(range(written)), 10,
                   "every record published or a dead letter")
    finally:
        writer.stop()
        collector.close()
        dead.close()
    dead_ns = _dead_ns(path)
    both = published() & set(dead_ns)
    assert not both, f"{len(both)} records published and dead letters: {sorted(both)[:10]}"
    assert len(dead_ns) == len(set(dead_ns)) == sink.counters.dead_lettered
    assert published() | set(dead_ns) == set(range(written))
    assert sink.counters.messages_out + sink.counters.dead_lettered == written


def test_a_nats_server_stopped_under_load_never_dead_letters_a_record_it_routed(
        tmp_path: Path, nats_server: NatsServer) -> None:
    # Core NATS: the subscriber gets what the server routed before it stopped, nothing after.
    subscriber = NatsClient(nats_server.url, subscribe="out")
    dead = DeadLetters(str(tmp_path / "dead.jsonl"))
    sink = _guarded(connector_kind("nats").sink("Bus", {"servers": nats_server.url}, {"topic": "out"}, "S", "c"),
                    dead)
    writer = _Writer(sink)
    try:
        writer.start()
        wait_until(lambda: subscriber.payloads(), 10, "a first message")
        nats_server.stop()  # a slice published, its flush not answered
        wait_until(lambda: sink.circuit_open, 10, "the circuit to open")
        nats_server.start()
        written = writer.stop()
        sink.close(timeout=10)
    finally:
        writer.stop()
        dead.close()
    routed = {json.loads(p)["n"] for p in subscriber.payloads()}
    dead_ns = _dead_ns(tmp_path / "dead.jsonl")
    both = routed & set(dead_ns)
    assert not both, f"{len(both)} records routed to a subscriber and dead letters: {sorted(both)[:10]}"
    assert len(dead_ns) == len(set(dead_ns)) == sink.counters.dead_lettered
    assert sink.counters.messages_out + sink.counters.dead_lettered == written


class _HangUpOnce:
    """An HTTP endpoint on a raw socket: it reads the first request whole and closes the connection
    without an answer; later requests get a 200. Every body read is kept."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(10)
        self.port = self._server.getsockname()[1]
        self.bodies: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        for answer in (False, True):
            conn, _ = self._server.accept()
            with conn, conn.makefile("rb") as reader:
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.bodies.append(reader.read(length))
                if answer:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self._thread.join(10)
        self._server.close()


def test_an_endpoint_that_hangs_up_after_taking_a_request_gets_it_again_rather_than_a_dead_letter(
        tmp_path: Path) -> None:
    endpoint = _HangUpOnce()
    dead = DeadLetters(str(tmp_path / "dead.jsonl"))
    url = f"http://127.0.0.1:{endpoint.port}/hook"
    sink = _guarded(connector_kind("http").sink("Hook", {"url": url}, {}, "S", "c"), dead)
    try:
        sink.write_batch([record("S", 1, n=1)], False)
        wait_until(lambda: sink.circuit_open, 10, "the circuit to open")
        wait_until(lambda: sink.counters.messages_out == 1, 10, "the record delivered by the trial")
        sink.close(timeout=5)
    finally:
        endpoint.close()
        dead.close()
    assert dead.total == 0 and sink.counters.dead_lettered == 0
    assert [json.loads(b)["n"] for b in endpoint.bodies] == [1, 1]  # at least once: sent again
