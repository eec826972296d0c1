"""Connectors through the real command (RUN.md §1): `check` reports every connector problem at its
token (exit 2), warns about a password in the program, `plan` shows every connector in its three
formats without ever showing a password, and `simulate` reads a program with connectors exactly as
the same program without them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

SECRET = "s3cret-Pa55"

PIPELINE = f"""\
context ingest
context compute

connector Broker = mqtt(host: "localhost", port: 1883, client_id: "plant-7", qos: 1, password: "{SECRET}")
connector Bus    = nats(servers: "nats://127.0.0.1:4222")
connector Alerts = file(path: "alerts.jsonl")
connector Hook   = http(url: "http://127.0.0.1:8080/alerts")

// Stage 1: valid readings, from the broker, on to compute
stream ValidReadings = SensorReading.from(Broker, topic: "sensors/+/reading")
    .context(ingest)
    .where(value > 0 and sensor_id != "")
    .emit(context: compute, sensor_id: sensor_id, value: value, zone: zone)
    .to(Bus, topic: "valid")

// Another reader of SensorReading, through another subscription, in another process
stream Hot = SensorReading.from(Bus, topic: "sensors.>")
    .context(compute)
    .where(value > 150)
    .to(Alerts)
    .to(Hook)

stream ZoneStats = ValidReadings
    .partition_by(zone)
    .window(1m)
    .aggregate(zone: zone, avg_value: avg(value), max_value: max(value), reading_count: count())
    .to(Broker)
    .context(compute)
    .to(Alerts)
"""

# The same program without its connectors: what `simulate` must read the first one as.
PLAIN = """\
context ingest
context compute

// Stage 1: valid readings, from the broker, on to compute
stream ValidReadings = SensorReading
    .context(ingest)
    .where(value > 0 and sensor_id != "")
    .emit(context: compute, sensor_id: sensor_id, value: value, zone: zone)

// Another reader of SensorReading, through another subscription, in another process
stream Hot = SensorReading
    .context(compute)
    .where(value > 150)

stream ZoneStats = ValidReadings
    .partition_by(zone)
    .window(1m)
    .aggregate(zone: zone, avg_value: avg(value), max_value: max(value), reading_count: count())
    .context(compute)
"""

EVENTS = ROOT / "examples" / "pipeline_three_stages.evt"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return str(path)


# ---------------------------------------------------------------- check


BROKEN = """\
connector Broker = mqtt(hots: "h", qos: 2, keepalive: 60)
connector Broker = file(path: "x")
connector Hook = http(url: "http://x", method: "GET")
const PORT = "1883"
connector Bus = nats(servers: "nats://a", port: PORT)
stream Broker2 = Reading.from(Hook).to(Nowhere).where(x > 1)
stream Echo = Broker2.from(Bus, topic: "a").to(Bus)
"""

BROKEN_ERRORS = [
    "1:20: error: missing parameter 'host'",
    "1:25: error: unknown parameter 'hots'",
    "1:41: error: qos must be 0 or 1",
    "1:55: error: parameter 'keepalive' must be a Duration, not an Int",
    "2:11: error: name 'Broker' is already used",
    "3:48: error: method must be POST, PUT or PATCH",
    "5:43: error: unknown parameter 'port'",
    "6:31: error: .from cannot read the http connector 'Hook'",
    "6:37: error: .to must come after every other operation",
    "6:40: error: unknown connector 'Nowhere'",
    "7:23: error: .from needs an event type",
    "7:48: error: missing parameter 'topic'",
]


def test_check_reports_every_connector_error_at_its_token(tmp_path: Path) -> None:
    path = write(tmp_path, "p.vpl", BROKEN)
    proc = run_cli("check", path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    heads = [line.removeprefix(path + ":") for line in proc.stderr.splitlines() if line.startswith(path + ":")]
    assert heads == BROKEN_ERRORS
    assert "  hint: mqtt(...) takes host, port, client_id, qos, username, password, password_env, keepalive" in proc.stderr
    assert proc.stderr.rstrip().endswith(f"{len(BROKEN_ERRORS)} error(s), 0 warning(s)")


@pytest.mark.parametrize(("text", "head", "hint"), [
    ('connector K = kafka(brokers: "k:9092")\n', "1:15: error: connector kind 'kafka' is not supported yet",
     "supported kinds are mqtt, nats, file, http"),
    ('connector B = mqtt(host: "h")\nstream S = T.where(x > 1).from(B, topic: "t")\n',
     "2:27: error: .from is not supported yet",
     ".from(CONNECTOR, ...) may only follow the source name of a stream directly"),
])
def test_check_stops_at_an_unsupported_connector_form(tmp_path: Path, text: str, head: str, hint: str) -> None:
    path = write(tmp_path, "p.vpl", text)
    proc = run_cli("check", path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == f"{path}:{head}"
    assert f"  hint: {hint}" in proc.stderr
    assert proc.stderr.rstrip().endswith("1 error(s), 0 warning(s)")


def test_check_warns_about_a_password_in_the_program(tmp_path: Path) -> None:
    path = write(tmp_path, "p.vpl", PIPELINE)
    proc = run_cli("check", path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{path}: OK (3 streams, 2 contexts)\n"
    assert proc.stderr.splitlines()[0] == f"{path}:4:86: warning: password written in the program: prefer password_env"
    assert '  hint: password_env: "MQTT_PASSWORD" reads it from that environment variable at start' in proc.stderr
    assert proc.stderr.rstrip().endswith("0 error(s), 1 warning(s)")
    # The quoted line hides the password, columns kept (a journal must never hold a secret).
    assert f'password: "{"*" * len(SECRET)}")' in proc.stderr.splitlines()[1]
    assert SECRET not in proc.stderr


# ---------------------------------------------------------------- plan


def test_text_plan_shows_every_connector_and_who_holds_it(tmp_path: Path) -> None:
    proc = run_cli("plan", write(tmp_path, "p.vpl", PIPELINE))
    assert proc.returncode == 0, proc.stderr
    section = proc.stdout[proc.stdout.index("connectors:\n"):]
    assert section == """\
connectors:
  Broker: mqtt(host: "localhost", port: 1883, client_id: "plant-7", qos: 1, password: <hidden>, keepalive: 1m)
    reads SensorReading (topic: "sensors/+/reading", qos: 1, client_id: "plant-7-ingest") in process 1 \
(context ingest), declared by ValidReadings
    writes ZoneStats (topic: "ZoneStats-output", qos: 1, client_id: "plant-7-compute") in process 2 (context compute)
  Bus: nats(servers: "nats://127.0.0.1:4222")
    writes ValidReadings (topic: "valid") in process 1 (context ingest)
    reads SensorReading (topic: "sensors.>") in process 2 (context compute), declared by Hot
  Alerts: file(path: "alerts.jsonl", follow: false)
    writes Hot in process 2 (context compute)
    writes ZoneStats in process 2 (context compute)
  Hook: http(url: "http://127.0.0.1:8080/alerts", method: "POST", timeout: 5s)
    writes Hot in process 2 (context compute)
"""
    assert "  SensorReading -> ingest, compute" in proc.stdout  # both subscriptions feed both readers
    assert SECRET not in proc.stdout + proc.stderr


def test_json_plan_lists_connectors_with_their_uses(tmp_path: Path) -> None:
    proc = run_cli("plan", write(tmp_path, "p.vpl", PIPELINE), "--json")
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout
    connectors = {c["name"]: c for c in json.loads(proc.stdout)["connectors"]}
    assert list(connectors) == ["Broker", "Bus", "Alerts", "Hook"]
    assert connectors["Broker"] == {
        "name": "Broker",
        "kind": "mqtt",
        "params": {"host": "localhost", "port": 1883, "client_id": "plant-7", "qos": 1, "password": "<hidden>",
                   "keepalive": 60000},
        "contexts": ["ingest", "compute"],
        "subscriptions": [{"context": "ingest", "event_type": "SensorReading", "streams": ["ValidReadings"],
                           "params": {"topic": "sensors/+/reading", "qos": 1, "client_id": "plant-7-ingest"}}],
        "sinks": [{"context": "compute", "stream": "ZoneStats",
                   "params": {"topic": "ZoneStats-output", "qos": 1, "client_id": "plant-7-compute"}}],
    }
    assert connectors["Alerts"]["contexts"] == ["compute"]
    assert [s["stream"] for s in connectors["Alerts"]["sinks"]] == ["Hot", "ZoneStats"]
    assert connectors["Hook"]["subscriptions"] == []


def test_dot_plan_draws_connectors(tmp_path: Path) -> None:
    proc = run_cli("plan", write(tmp_path, "p.vpl", PIPELINE), "--dot")
    assert proc.returncode == 0, proc.stderr
    dot = proc.stdout
    assert SECRET not in dot
    assert '  "connector:Broker" [label="Broker (mqtt)", shape=cylinder];' in dot
    assert ('  "connector:Broker" -> "type:SensorReading" [label="sensors/+/reading (context ingest)", '
            'style=dotted];') in dot
    assert '  "connector:Bus" -> "type:SensorReading" [label="sensors.> (context compute)", style=dotted];' in dot
    assert '  "stream:Hot" -> "connector:Hook" [label="", style=dotted];' in dot
    assert '  "stream:ZoneStats" -> "connector:Broker" [label="ZoneStats-output", style=dotted];' in dot
    assert dot.rstrip().endswith("}")


def test_plan_of_an_unused_connector(tmp_path: Path) -> None:
    proc = run_cli("plan", write(tmp_path, "p.vpl", 'connector Spare = file(path: "x")\nstream S = T\n'))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith('connectors:\n  Spare: file(path: "x", follow: false)\n    not used by any stream\n')


# ---------------------------------------------------------------- simulate


@pytest.mark.parametrize("mode", [[], ["--inline"]], ids=["processes", "inline"])
def test_simulate_reads_a_program_with_connectors_as_the_same_program_without(tmp_path: Path, mode: list[str]) -> None:
    results = []
    for name, text in (("connectors.vpl", PIPELINE), ("plain.vpl", PLAIN)):
        proc = run_cli("simulate", "-p", write(tmp_path, name, text), "-e", str(EVENTS), "--immediate",
                       "--output", "jsonl", *mode)
        assert proc.returncode == 0, proc.stderr
        results.append(proc)
    with_connectors, plain = results
    assert with_connectors.stdout == plain.stdout
    assert with_connectors.stdout.count("\n") == 11  # the records of all three streams
    # The same summary; the only other line is the password warning.
    assert with_connectors.stderr.endswith(plain.stderr)
    assert not (tmp_path / "alerts.jsonl").exists()  # no connector was opened


def test_the_connectors_example_checks_and_simulates_offline() -> None:
    example = ROOT / "examples" / "connectors" / "iot_mqtt.vpl"
    assert run_cli("check", str(example)).returncode == 0
    proc = run_cli("simulate", "-p", str(example), "-e", str(example.with_suffix(".evt")), "--immediate",
                   "--output", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert '"stream": "Peaks"' in proc.stdout
