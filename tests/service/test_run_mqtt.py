"""`run` with MQTT (RUN.md §1): a real mosquitto, real worker processes; the records a connector
pipeline publishes equal simulate's; bad payloads are counted by reason; SIGTERM drains and
acknowledges; a broker restarted during the run loses no QoS 1 message."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.brokers import Mosquitto, MqttClient, wait_until
from tests.service.live import (
    READINGS,
    LiveRun,
    by_stream,
    payload_members,
    publish_all,
    reading_events,
    reading_messages,
    reference_payload,
    simulated,
)
from tests.service.programs import MQTT_PIPELINE, program_file

SUBSCRIBED = "connector Broker: subscribed, receiving"
READING_TOPIC = "sensors/{sensor}/reading"


def _publish_readings(broker: Mosquitto, readings: list[dict[str, object]]) -> None:
    publish_all(MqttClient(broker.port), reading_messages(readings, READING_TOPIC))


def test_source_and_sink_in_two_contexts_publish_what_simulate_gives(tmp_path: Path, mosquitto: Mosquitto) -> None:
    program = program_file(tmp_path, MQTT_PIPELINE, port=mosquitto.port)
    expected = simulated(program, reading_events())
    watcher = MqttClient(mosquitto.port, subscribe="alerts/#", qos=1)
    with LiveRun(program) as run:
        run.wait_for_err(SUBSCRIBED)
        _publish_readings(mosquitto, READINGS)
        run.wait_for_records("Hot", len(expected["Hot"]))
        status, records = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr
    assert by_stream(records) == expected
    # What the sink published: the reference payloads, in the stream's order, the flush included.
    wait_until(lambda: len(watcher.payloads()) == len(expected["Alerts"]), 10, "the published alerts")
    published = [payload_members(p) for p in watcher.payloads()]
    watcher.close()
    assert published == [reference_payload("Alerts", ts, fields) for ts, fields in expected["Alerts"]]
    assert "Events processed: 120" in run.stderr


def test_a_stream_without_from_reads_the_subscribed_type_too(tmp_path: Path, mosquitto: Mosquitto) -> None:
    program = program_file(tmp_path, f"""\
context a
context b
connector Broker = mqtt(host: "127.0.0.1", port: {mosquitto.port})
stream Subscribed = R.from(Broker, topic: "r").context(a).where(v > 1)
stream Plain = R.context(b).where(v < 3)
""")
    (tmp_path / "empty.evt").write_text("")
    with LiveRun(program, "--input", str(tmp_path / "empty.evt")) as run:
        run.wait_for_err(SUBSCRIBED)
        publish_all(MqttClient(mosquitto.port), [("r", json.dumps({"v": v, "ts": v}).encode()) for v in range(5)])
        wait_until(lambda: len(run.records()) == 6, 15, "the records of both streams")
        status, records = run.stop()
    assert status == 0, run.stderr
    assert sorted((r["stream"], r["fields"]["v"]) for r in records) == [
        ("Plain", 0), ("Plain", 1), ("Plain", 2), ("Subscribed", 2), ("Subscribed", 3), ("Subscribed", 4)]


def test_bad_payloads_are_counted_by_reason_and_never_fatal(tmp_path: Path, mosquitto: Mosquitto) -> None:
    program = program_file(tmp_path, f"""\
connector Broker = mqtt(host: "127.0.0.1", port: {mosquitto.port})
stream Seen = R.from(Broker, topic: "r/#")
""")
    bad = [b"not json", b"[1, 2]", b'{"v": {"nested": 1}}', b"\xff\xfe", b'{"event_type": "Other", "v": 1}',
           b'{"v": 1, "timestamp": "yesterday"}', b"x" * (1024 * 1024 + 10)]
    with LiveRun(program) as run:
        run.wait_for_err(SUBSCRIBED)
        publish_all(MqttClient(mosquitto.port), [("r/x", payload) for payload in bad * 3]
                    + [("r/x", b'{"v": 42, "ts": 5}')])
        wait_until(lambda: len(run.records()) == 1, 15, "the good event")
        status, records = run.stop()
    assert status == 0, run.stderr
    assert records == [{"stream": "Seen", "ts": 5, "fields": {"v": 42}}]
    assert f"Rejected events:  {len(bad) * 3}" in run.stderr
    assert run.rejection_totals() == {"invalid json": 3, "not an object": 3, "unsupported value": 3,
                                      "invalid utf-8": 3, "type mismatch": 3, "bad timestamp": 3, "too large": 3}
    assert "Traceback" not in run.stderr


def test_sigterm_acknowledges_every_qos1_message_and_flushes(tmp_path: Path, mosquitto: Mosquitto) -> None:
    program = program_file(tmp_path, MQTT_PIPELINE, port=mosquitto.port)
    with LiveRun(program) as run:
        run.wait_for_err(SUBSCRIBED)
        _publish_readings(mosquitto, READINGS[:30])
        run.wait_for_records("Hot", len(simulated(program, reading_events(READINGS[:30]))["Hot"]))
        status, records = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr
    assert [x for x in records if x["stream"] == "Alerts"]  # the open windows were flushed by the drain
    # The same persistent session again: the broker has nothing unacknowledged to send.
    with LiveRun(program) as again:
        again.wait_for_err(SUBSCRIBED)
        time.sleep(1.0)
        status, records = again.stop(signal.SIGTERM)
    assert status == 0
    assert [x for x in records if x["stream"] == "Hot"] == []


@pytest.mark.timeout(90)
def test_a_broker_restart_during_the_run_loses_no_qos1_message(tmp_path: Path, mosquitto: Mosquitto) -> None:
    program = program_file(tmp_path, MQTT_PIPELINE, port=mosquitto.port)
    expected = simulated(program, reading_events())
    with LiveRun(program) as run:
        run.wait_for_err(SUBSCRIBED)
        _publish_readings(mosquitto, READINGS[:60])
        mosquitto.restart()  # SIGTERM: mosquitto saves the sessions and their queues
        _publish_readings(mosquitto, READINGS[60:])
        wait_until(lambda: len({r["ts"] for r in run.records_of("Hot")}) >= len(expected["Hot"]), 30,
                   "every Hot record")
        status, records = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr
    hot = {(r["ts"], json.dumps(r["fields"])) for r in records if r["stream"] == "Hot"}
    # Nothing lost. QoS 1 is at least once: a message whose acknowledgement the restart cut off
    # comes again (docs/connectors.md), so a record may appear twice, never not at all.
    assert hot == {(ts, json.dumps(fields)) for ts, fields in expected["Hot"]}
    assert "connector Broker: connection lost" in run.stderr and " again" in run.stderr, run.stderr


def test_each_client_runs_in_the_process_the_plan_names(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The subscription declared by a stream of context `ingest` connects from the worker
    `vmp-ingest`, the sink of a stream of `alerts` from `vmp-alerts`, none from the supervisor
    (RUN.md §1.2)."""
    import psutil

    program = program_file(tmp_path, MQTT_PIPELINE, port=mosquitto.port)
    with LiveRun(program) as run:
        run.wait_for_err(SUBSCRIBED)

        def broker_peers() -> dict[str, int]:
            found: dict[str, int] = {}
            for proc in [psutil.Process(run.proc.pid), *psutil.Process(run.proc.pid).children()]:
                n = sum(1 for c in proc.net_connections("tcp")
                        if c.raddr and c.raddr.port == mosquitto.port and c.status == psutil.CONN_ESTABLISHED)
                found[proc.name()] = n
            return found

        peers = wait_until(lambda: (p := broker_peers()).get("vmp-alerts") and p.get("vmp-ingest") and p, 10,
                           "the clients' connections")
        status, _records = run.stop()
    assert status == 0, run.stderr
    assert peers["vmp-alerts"] == 1  # the sink's client
    assert peers["vmp-ingest"] == 1  # the subscription's client
    assert sum(peers.values()) == 2  # the supervisor holds none
