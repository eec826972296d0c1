"""Sinks that fail safely (RUN.md §6): a circuit breaker per sink partition and the dead letters.

Against a local http.server that fails on purpose and a real mosquitto stopped and started: the
circuit opens after 5 failed attempts and sends the buffer, then new records, to the dead-letter
file; after the reset one trial is made and success closes it; a short outage loses nothing; a
record the endpoint refuses is a dead letter. The dead-letter lines' exact format, their
thread-safety, and the count and rate-limited report without a file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import Endpoint, Mosquitto, MqttClient, free_port, record, wait_until
from varpulis_mp.engine.output import Summary
from varpulis_mp.io.circuit import Circuit, CircuitBreaker
from varpulis_mp.io.connectors import connector_kind
from varpulis_mp.io.dead_letters import DeadLetters
from varpulis_mp.io.delivery import DeliverySink, DeliverySinkPartition
from varpulis_mp.io.human import RUN_TITLES, format_summary

HOOK = connector_kind("http")
MQTT = connector_kind("mqtt")


def guarded(spec: Any, dead_letters: DeadLetters, reset_s: float = 30.0) -> DeliverySinkPartition:
    assert isinstance(spec, DeliverySink)
    return spec.guarded(Circuit(reset_s=reset_s), dead_letters).build(0, 1)


def http_sink(url: str, dead_letters: DeadLetters, reset_s: float = 30.0) -> DeliverySinkPartition:
    return guarded(HOOK.sink("Hook", {"url": url}, {}, "Hot", "c"), dead_letters, reset_s)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_circuit_opens_after_5_failed_attempts_and_the_buffer_then_new_records_are_dead_letters(
        tmp_path: Path, endpoint: Endpoint, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "varpulis_mp.connectors")
    endpoint.status = 503
    path = tmp_path / "dead.jsonl"
    dead = DeadLetters(str(path))
    sink = http_sink(endpoint.url, dead)
    sink.write_batch([record("Hot", i, n=i) for i in range(3)], False)
    wait_until(lambda: sink.circuit_open, 5, "the circuit to open")
    # Five attempts, each the first record refused with a 503; then no more while the circuit is open.
    assert len(endpoint.requests) == 5
    wait_until(lambda: dead.total == 3, 5, "the buffer in the dead letters")
    sink.write_batch([record("Hot", i, n=i) for i in range(3, 5)], False)
    wait_until(lambda: dead.total == 5, 5, "the new records in the dead letters")
    started = time.monotonic()
    sink.close(timeout=10)
    dead.close()
    assert time.monotonic() - started < 1  # nothing waits while the circuit is open
    assert len(endpoint.requests) == 5
    written = lines(path)
    assert [d["event"]["n"] for d in written] == [0, 1, 2, 3, 4]  # the buffer first, in order
    assert {d["connector"] for d in written} == {"Hook"}
    assert {d["error"] for d in written} == {"circuit open: HTTP 503 Service Unavailable"}
    assert dead.counts == {("Hook", "circuit open"): 5}
    assert sink.counters.dead_lettered == 5 and sink.counters.messages_out == 0
    assert caplog.text.count("circuit opened after 5 failed attempts (HTTP 503 Service Unavailable)") == 1


def test_after_the_reset_one_trial_is_made_and_its_success_closes_the_circuit(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "varpulis_mp.connectors")
    endpoint = Endpoint()  # not listening yet: every connection is refused
    dead = DeadLetters(str(tmp_path / "dead.jsonl"))
    sink = http_sink(endpoint.url, dead, reset_s=0.6)
    try:
        wait_until(lambda: sink.circuit_open, 5, "the circuit to open")
        assert sink.counters.failures == 5
        time.sleep(0.3)  # open: no attempt before the reset
        assert sink.counters.failures == 5
        wait_until(lambda: sink.counters.failures == 6, 5, "the first trial, which fails")
        assert sink.circuit_open and "trial failed" in caplog.text
        time.sleep(0.2)
        assert sink.counters.failures == 6  # one trial, then open again
        endpoint.start()
        wait_until(lambda: not sink.circuit_open, 5, "the second trial to close the circuit")
        assert sink.counters.failures == 6
        sink.write_batch([record("Hot", i, n=i) for i in range(4)], False)
        sink.close(timeout=10)
    finally:
        endpoint.stop()
        dead.close()
    assert [json.loads(b)["n"] for b in endpoint.bodies()] == [0, 1, 2, 3]
    assert dead.total == 0
    assert caplog.text.count("circuit opened") == 1 and caplog.text.count("circuit closed") == 1


def test_a_record_the_endpoint_refuses_is_a_dead_letter_and_the_circuit_stays_closed(
        tmp_path: Path, endpoint: Endpoint) -> None:
    endpoint.status = 400  # refuses only bodies holding "bad": true
    path = tmp_path / "dead.jsonl"
    dead = DeadLetters(str(path))
    sink = http_sink(endpoint.url, dead)
    sink.write_batch([record("Hot", 1, n=1), *[record("Hot", 2, bad=True)] * 6, record("Hot", 3, n=3)], False)
    sink.close(timeout=10)
    dead.close()
    assert not sink.circuit_open  # six refusals in a row are answers, not failures
    assert [json.loads(b).get("n") for b in endpoint.bodies()] == [1, None, None, None, None, None, None, 3]
    written = lines(path)
    assert len(written) == 6
    assert written[0]["error"] == "HTTP 400 Bad Request"
    assert written[0]["event"] == {"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.002Z", "bad": True}
    assert dead.counts == {("Hook", "refused"): 6}


def test_the_close_deadline_gives_what_is_left_to_the_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    dead = DeadLetters(str(path))
    sink = http_sink(f"http://127.0.0.1:{free_port()}/", dead)
    sink.write_batch([record("Hot", i, n=i) for i in range(2)], False)
    sink.close(timeout=0.05)  # before five attempts could fail
    dead.close()
    assert dead.counts == {("Hook", "close deadline"): 2}
    assert [d["event"]["n"] for d in lines(path)] == [0, 1]


def _mqtt_sink(port: int, dead: DeadLetters, reset_s: float = 30.0) -> DeliverySinkPartition:
    params = {"host": "127.0.0.1", "port": port, "client_id": "safety", "qos": 1}
    return guarded(MQTT.sink("Broker", params, {"topic": "out", "qos": 1}, "S", "ingest"), dead, reset_s)


def test_a_short_mqtt_outage_loses_nothing(tmp_path: Path, mosquitto: Mosquitto) -> None:
    collector = MqttClient(mosquitto.port, client_id="collector", subscribe="out", qos=1)
    dead = DeadLetters(str(tmp_path / "dead.jsonl"))
    sink = _mqtt_sink(mosquitto.port, dead)
    try:
        sink.write_batch([record("S", i, n=i) for i in range(10)], False)
        wait_until(lambda: len(collector.payloads()) == 10, 10, "the first records")
        mosquitto.stop()
        sink.write_batch([record("S", i, n=i) for i in range(10, 30)], False)
        wait_until(lambda: sink.counters.failures >= 2, 5, "two failed attempts")
        mosquitto.start()  # well before a fifth failed attempt
        sink.write_batch([record("S", i, n=i) for i in range(30, 40)], False)
        sink.close(timeout=15)
        wait_until(lambda: {json.loads(p)["n"] for p in collector.payloads()} >= set(range(40)), 15,
                   "every record")
    finally:
        collector.close()
        dead.close()
    assert sink.counters.failures < 5 and not sink.circuit_open
    assert dead.total == 0 and sink.counters.dead_lettered == 0


def test_an_mqtt_broker_gone_for_long_opens_the_circuit_until_a_trial_finds_it_back(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    collector = MqttClient(mosquitto.port, client_id="collector", subscribe="out", qos=1)
    path = tmp_path / "dead.jsonl"
    dead = DeadLetters(str(path))
    sink = _mqtt_sink(mosquitto.port, dead, reset_s=1.0)
    try:
        sink.write_batch([record("S", 0, n=0)], False)
        wait_until(lambda: len(collector.payloads()) == 1, 10, "the first record")
        mosquitto.stop()
        sink.write_batch([record("S", i, n=i) for i in range(1, 6)], False)
        wait_until(lambda: sink.circuit_open, 10, "the circuit to open")
        wait_until(lambda: dead.total == 5, 5, "the buffer in the dead letters")
        mosquitto.start()
        wait_until(lambda: not sink.circuit_open, 10, "a trial to close the circuit")
        sink.write_batch([record("S", i, n=i) for i in range(6, 9)], False)
        sink.close(timeout=15)
        wait_until(lambda: {json.loads(p)["n"] for p in collector.payloads()} >= {0, 6, 7, 8}, 15,
                   "the records after the circuit closed")
    finally:
        collector.close()
        dead.close()
    assert [d["event"]["n"] for d in lines(path)] == [1, 2, 3, 4, 5]
    assert {json.loads(p)["n"] for p in collector.payloads()}.isdisjoint({1, 2, 3, 4, 5})


# --- the dead-letter file and the breaker on their own -----------------------------------------------


def test_dead_letter_lines_have_the_varpulis_format_exactly(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    dead = DeadLetters(str(path), wall_clock_ms=lambda: 1_714_564_800_123)
    dead.undeliverable("Hook", [b'{"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.590Z", "t": 91.5}'],
                       "refused", "HTTP 400 Bad Request")
    dead.rejected("Broker", "invalid json", 'invalid json: "Zür\\ich" (topic \'s/1\')', b'{"t": \xff\n')
    dead.close()
    assert path.read_bytes() == (
        b'{"timestamp": "2024-05-01T12:00:00.123Z", "connector": "Hook", "error": "HTTP 400 Bad Request", '
        b'"event": {"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.590Z", "t": 91.5}}\n'
        b'{"timestamp": "2024-05-01T12:00:00.123Z", "connector": "Broker", '
        b'"error": "invalid json: \\"Z\xc3\xbcr\\\\ich\\" (topic \'s/1\')", '
        b'"event": "{\\"t\\": \xef\xbf\xbd\\n"}\n')
    assert dead.counts == {("Hook", "refused"): 1, ("Broker", "invalid json"): 1}


def test_dead_letters_from_many_threads_never_mix_lines_and_append_to_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_text('{"earlier": true}\n')
    dead = DeadLetters(str(path))
    payload = json.dumps({"event_type": "S", "pad": "x" * 5000}).encode()

    def write(name: str) -> None:
        for _ in range(50):
            dead.undeliverable(name, [payload, payload], "circuit open", "circuit open: down")

    threads = [threading.Thread(target=write, args=(f"C{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    dead.close()
    written = lines(path)
    assert written[0] == {"earlier": True} and len(written) == 401
    assert all(d["event"]["pad"] == "x" * 5000 for d in written[1:])
    assert dead.total == 400


def test_without_a_file_dead_letters_are_counted_and_reported_with_rate_limits(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    dead = DeadLetters(clock=lambda: now[0])
    for _ in range(3):
        dead.undeliverable("Hook", [b"{}", b"{}"], "circuit open", "circuit open: down")
        now[0] += 1
    dead.undeliverable("Bus", [b"{}"], "refused", "no")
    assert caplog.text.count("dead-lettered") == 2  # the first of each connector
    assert ("sink Hook: 2 record(s) dead-lettered (counted only: no dead-letter file): circuit open: down"
            in caplog.text)
    assert "sink Bus: 1 record(s) dead-lettered (counted only: no dead-letter file): refused: no" in caplog.text
    now[0] = 12.0
    dead.undeliverable("Hook", [b"{}"], "circuit open", "circuit open: down")
    assert "sink Hook: 5 more record(s) dead-lettered" in caplog.text
    dead.undeliverable("Hook", [b"{}"], "circuit open", "circuit open: down")
    dead.close()  # what the rate limit held back is said at the end
    assert "sink Hook: 1 more record(s) dead-lettered" in caplog.text
    assert dead.total == 9 and dead.counts[("Hook", "circuit open")] == 8


def test_the_breaker_counts_consecutive_failures_only() -> None:
    now = [0.0]
    breaker = CircuitBreaker("S", failures_to_open=5, reset_s=30, clock=lambda: now[0])
    for _ in range(4):
        breaker.attempt_failed("down")
    breaker.attempt_succeeded()
    for _ in range(4):
        breaker.attempt_failed("down")
    assert not breaker.circuit_open and breaker.open_for() == 0.0
    breaker.attempt_failed("down")
    assert breaker.circuit_open and breaker.open_for() == 30.0
    now[0] = 29.5
    assert breaker.open_for() == pytest.approx(0.5)
    now[0] = 30.0
    assert breaker.open_for() == 0.0 and breaker.circuit_open  # half-open: the trial may be made
    breaker.attempt_failed("still down")
    assert breaker.open_for() == 30.0 and breaker.opened == 2
    now[0] = 60.0
    assert breaker.open_for() == 0.0
    breaker.attempt_succeeded()
    assert not breaker.circuit_open and breaker.open_for() == 0.0


def test_the_summary_shows_dead_letters_only_when_there_are_some() -> None:
    assert "Dead letters" not in format_summary(Summary(events_processed=3), RUN_TITLES.complete)
    assert format_summary(Summary(events_processed=3, dead_letters=12), RUN_TITLES.complete).splitlines()[3:] == [
        "Events processed: 3",
        "Contexts used:    0",
        "Dead letters:     12",
    ]


def test_a_dead_letter_file_that_cannot_be_written_never_stops_a_sink(caplog: pytest.LogCaptureFixture) -> None:
    dead = DeadLetters("/dev/full")  # every write fails with ENOSPC
    dead.undeliverable("Hook", [b"{}"], "refused", "HTTP 400")
    dead.undeliverable("Hook", [b"{}"], "refused", "HTTP 400")
    dead.close()
    assert dead.total == 2
    assert caplog.text.count("dead letters /dev/full: cannot write (No space left on device)") == 1
