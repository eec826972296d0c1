"""`run --dead-letter PATH --circuit-reset DURATION` (RUN.md §6): through the real command, with
worker processes, a local http.server that fails on purpose and a real mosquitto. Records an
endpoint refuses, records diverted while a circuit is open and input that cannot be read land in
the dead-letter file, in the Varpulis format; the summary says how many."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

from tests.brokers import Endpoint, Mosquitto, MqttClient, wait_until
from tests.conftest import run_cli
from tests.service.live import LiveRun

RFC3339_MS_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"


def _dead(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_refused_records_and_unreadable_lines_are_dead_letters_and_in_the_summary(tmp_path: Path) -> None:
    endpoint = Endpoint(status=400)  # refuses the bodies holding "bad": true
    endpoint.start()
    program = tmp_path / "p.vpl"
    program.write_text(f"""\
context alerts
connector Hook = http(url: "{endpoint.url}")
stream Hot = SensorReading.context(alerts).where(temperature > 80.0)
    .emit(sensor_id: sensor_id, temperature: temperature, bad: bad)
    .to(Hook)
""")
    events = tmp_path / "e.evt"
    events.write_text('@1 SensorReading { sensor_id: "S1", temperature: 91.5, bad: false }\n'
                      '@2 SensorReading { sensor_id: "S2", temperature: 99.0, bad: true }\n'
                      '@3 SensorReading { sensor_id: "S3", temperature: }\n'
                      '@4 SensorReading { sensor_id: "S4", temperature: 85.0, bad: false }\n')
    dead_letters = tmp_path / "dead.jsonl"
    try:
        proc = run_cli("run", str(program), "--input", str(events), "--dead-letter", str(dead_letters),
                       "--output", "none")
    finally:
        endpoint.stop()
    assert proc.returncode == 0, proc.stderr
    assert sorted(json.loads(b)["sensor_id"] for b in endpoint.bodies()) == ["S1", "S2", "S4"]
    refused, rejected = sorted(_dead(dead_letters), key=lambda d: d["connector"])
    assert refused["connector"] == "Hook" and refused["error"] == "HTTP 400 Bad Request"
    assert refused["event"] == {"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.002Z",
                                "sensor_id": "S2", "temperature": 99.0, "bad": True}
    assert rejected["connector"] == "input"
    assert rejected["event"] == '@3 SensorReading { sensor_id: "S3", temperature: }'
    assert rejected["error"] == f"{events}:3:50: error: invalid value"
    for line in (refused, rejected):
        assert list(line) == ["timestamp", "connector", "error", "event"]
        assert re.match(RFC3339_MS_Z, line["timestamp"])
    assert "Dead letters:     2" in proc.stderr
    assert "Rejected events:  1" in proc.stderr


def test_a_failing_endpoint_opens_the_circuit_until_a_trial_succeeds(tmp_path: Path, mosquitto: Mosquitto) -> None:
    endpoint = Endpoint(status=503)
    endpoint.start()
    program = tmp_path / "p.vpl"
    program.write_text(f"""\
context ingest
connector Broker = mqtt(host: "127.0.0.1", port: {mosquitto.port}, qos: 1)
connector Hook = http(url: "{endpoint.url}")
stream Hot = SensorReading.from(Broker, topic: "sensors/+").context(ingest)
    .emit(n: n)
    .to(Hook)
""")
    dead_letters = tmp_path / "dead.jsonl"
    run = LiveRun(program, "--dead-letter", str(dead_letters), "--circuit-reset", "1s", "--output", "none")
    publisher: MqttClient | None = None
    try:
        run.wait_for_err("connector Broker: subscribed, receiving")
        publisher = MqttClient(mosquitto.port)
        publisher.publish("sensors/1", b'{"n": 1}')
        publisher.publish("sensors/1", b'{"n": 1,')  # cannot be read: a dead letter, raw
        run.wait_for_err("sink Hook: circuit opened after 5 failed attempts (HTTP 503 Service Unavailable)")
        publisher.publish("sensors/1", b'{"n": 2}')
        wait_until(lambda: dead_letters.exists() and len(_dead(dead_letters)) == 3, 10, "three dead letters")
        endpoint.status = 200
        run.wait_for_err("sink Hook: circuit closed; delivering again")
        publisher.publish("sensors/1", b'{"n": 3}')
        wait_until(lambda: any(json.loads(b)["n"] == 3 for b in endpoint.bodies()), 10, "the record after the trial")
        status, _ = run.stop(signal.SIGTERM)
    finally:
        if publisher is not None:
            publisher.close()
        if run.proc.poll() is None:
            run.stop(signal.SIGKILL)
        endpoint.stop()
    assert status == 0, run.stderr
    diverted = [d for d in _dead(dead_letters) if d["connector"] == "Hook"]
    assert [d["event"]["n"] for d in diverted] == [1, 2]
    assert {d["error"] for d in diverted} == {"circuit open: HTTP 503 Service Unavailable"}
    [rejected] = [d for d in _dead(dead_letters) if d["connector"] == "Broker"]
    assert rejected["event"] == '{"n": 1,' and rejected["error"].startswith("invalid json: ")
    assert {json.loads(b)["n"] for b in endpoint.bodies()} == {1, 3}  # 1 only as the 503'd attempts
    assert "Dead letters:     3" in run.stderr
    assert run.stderr.count("circuit opened") == 1


def test_dead_letter_and_circuit_reset_options_are_checked_before_the_start(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("stream Echo = R.where(v > 0)\n")
    proc = run_cli("run", str(program), "--circuit-reset", "0s", stdin=b"")
    assert proc.returncode == 2 and "--circuit-reset must be a positive duration" in proc.stderr
    proc = run_cli("run", str(program), "--dead-letter", str(tmp_path / "missing" / "dead.jsonl"), stdin=b"")
    assert proc.returncode == 2
    assert "dead.jsonl: error: cannot open the dead-letter file: No such file or directory" in proc.stderr
    assert "Traceback" not in proc.stderr
