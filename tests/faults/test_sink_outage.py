"""An MQTT sink whose broker goes away under load (RUN.md §6 "Sinks"), with a real mosquitto: a
long outage opens the circuit, records go to the dead-letter file, the circuit closes once the
broker is back, and what was published plus the dead letters is the oracle; a restart shorter
than the circuit's patience loses nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import Mosquitto, MqttClient, wait_until

from .harness import FaultRun, chain_line, oracle, scale, under_load, write_program

pytestmark = pytest.mark.faults

RATE = scale(200, 500)
OUTAGE_S = scale(5.0, 10.0)  # longer than the ~3 s of the 5 failed attempts that open the circuit

PROGRAM = """\
context first
context second

connector Broker = mqtt(host: "127.0.0.1", port: {port}, client_id: "faults-sink", qos: 1)

stream Taken = Reading
    .context(first)
    .emit(context: second, seq: seq, v: value)

stream Out = Taken
    .context(second)
    .emit(seq: seq, v: v)
    .to(Broker, topic: "faults/out")
"""


def _dead_letters(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _published(watcher: MqttClient) -> list[int]:
    return [json.loads(p)["seq"] for p in watcher.payloads()]


def _outage(tmp_path: Path, mosquitto: Mosquitto, outage_s: float) -> tuple[FaultRun, list[int], list[int], list[int]]:
    """Feed the chain, stop the broker for `outage_s`, start it again, feed on, end the run: the run,
    the oracle's sequence numbers of `Out`, the published ones and the dead letters' ones."""
    program = write_program(tmp_path, PROGRAM.format(port=mosquitto.port))
    dead = tmp_path / "dead.jsonl"
    # A persistent QoS 1 session: what is published while it reconnects waits for it in the broker.
    watcher = MqttClient(mosquitto.port, client_id="faults-watcher", subscribe="faults/out", qos=1)
    try:
        options = ("--dead-letter", str(dead), "--circuit-reset", "1s")
        with under_load(program, chain_line, RATE, *options, streams=["Out"]) as (run, feeder):
            wait_until(lambda: len(watcher.payloads()) > 0, 30, "a first publication")
            mosquitto.stop()
            stopped = time.monotonic()
            if outage_s > 3.5:
                run.wait_for_err("circuit opened", timeout=outage_s + 10)
            time.sleep(max(0.0, outage_s - (time.monotonic() - stopped)))
            mosquitto.start()
            if outage_s > 3.5:
                run.wait_for_err("circuit closed", timeout=20)
            time.sleep(1.0)
            status = run.finish(feeder)
        assert status == 0, run.stderr[-3000:]
        expected = [r["fields"]["seq"] for r in oracle(program, feeder.lines, tmp_path) if r["stream"] == "Out"]
        dead_seqs = [d["event"]["seq"] for d in _dead_letters(dead) if d["connector"] == "Broker"]

        def covered() -> bool:
            return set(_published(watcher)) | set(dead_seqs) >= set(expected)

        wait_until(covered, 20, "every record published or a dead letter")
        return run, expected, _published(watcher), dead_seqs
    finally:
        watcher.close()


@pytest.mark.timeout(scale(90, 120))
def test_a_long_broker_outage_sends_records_to_the_dead_letters_until_the_circuit_closes(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    run, expected, published, dead = _outage(tmp_path, mosquitto, OUTAGE_S)
    assert dead, "no dead letter in an outage longer than the circuit's patience"
    twice = set(published) & set(dead)
    print(f"{len(expected)} records: {len(set(published))} published ({len(published) - len(set(published))} "
          f"again after a reconnect), {len(dead)} dead letters, {len(twice)} both")
    # RUN.md §6: published + dead letters = every record, each exactly once.
    assert not twice, f"{len(twice)} records both published and dead letters: {sorted(twice)[:20]}"
    assert len(dead) == len(set(dead)), "a record dead-lettered twice"
    assert set(published) | set(dead) == set(expected), "a record neither published nor a dead letter"
    assert len(set(published)) + len(dead) == len(expected)
    assert set(published) and set(dead)
    assert run.stderr.count("circuit opened") == 1
    assert f"Dead letters:     {len(dead)}" in run.stderr


@pytest.mark.timeout(90)
def test_a_broker_restart_shorter_than_the_circuits_patience_loses_nothing(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    run, expected, published, dead = _outage(tmp_path, mosquitto, 0.5)
    assert dead == []
    assert set(published) == set(expected)
    assert "circuit opened" not in run.stderr
    assert "Dead letters" not in run.stderr
