"""The programs the service tests run, each with at least two contexts (real worker processes).

They are templates: `{port}`, `{url}` and the like are filled in by the test that runs them
(`program_file`). test_simulate_connectors.py checks, over all of them, that `simulate` gives
for each exactly what it gives for the same program with its connectors taken out
(`without_connectors`).
"""

from __future__ import annotations

import re
from pathlib import Path

PASSWORD_VARIABLE = "VARPULIS_TEST_MQTT_PASSWORD"


def _pipeline(connectors: str, source: str, hot_to: str = "", alerts_to: str = "") -> str:
    """Readings filtered in one context, counted in windows per sensor in the other."""
    return f"""\
context ingest
context alerts

{connectors}

stream Hot = {source}
    .context(ingest)
    .where(temperature > 80.0)
    .emit(context: alerts, sensor_id: sensor_id, temperature: temperature){hot_to}

stream Alerts = Hot
    .context(alerts)
    .partition_by(sensor_id)
    .window(3)
    .aggregate(sensor_id: sensor_id, n: count(), top: max(temperature)){alerts_to}
"""


MQTT_PIPELINE = _pipeline('connector Broker = mqtt(host: "127.0.0.1", port: {port}, client_id: "plant-7", qos: 1)',
                          'SensorReading.from(Broker, topic: "sensors/+/reading")',
                          alerts_to='\n    .to(Broker, topic: "alerts/top")')

NATS_PIPELINE = _pipeline('connector Bus = nats(servers: "nats://127.0.0.1:{port}")',
                          'SensorReading.from(Bus, topic: "sensors.*.reading")',
                          alerts_to='\n    .to(Bus, topic: "alerts.top")')

# Jobs shared out by the server among every member of the queue group.
NATS_QUEUE = """\
context take
context done

connector Bus = nats(servers: "nats://127.0.0.1:{port}", queue_group: "plant")

stream Taken = Job.from(Bus, topic: "jobs.>")
    .context(take)
    .emit(context: done, n: n)

stream Done = Taken.context(done).where(n >= 0)
"""

# A subscription, and a type read from the default input (standard input) next to it.
NATS_WITH_INPUT = """\
context a
context b

connector Bus = nats(servers: "nats://127.0.0.1:{port}")

stream Seen = R.from(Bus, topic: "r.>")
    .context(a)
    .emit(context: b, v: v)

stream Kept = Seen.context(b).where(v >= 0)

stream Local = Manual.context(b).where(v >= 0)
"""

FILE_FOLLOW = _pipeline('connector Log = file(path: "readings.evt", follow: true)', "SensorReading.from(Log)")

# The file read to its end is the only source; both streams append to one JSON Lines file.
FILE_ONCE = _pipeline('connector Readings = file(path: "in/readings.evt")\n'
                      'connector Archive = file(path: "out/alerts.jsonl")',
                      "SensorReading.from(Readings)", hot_to="\n    .to(Archive)", alerts_to="\n    .to(Archive)")

# The default input (standard input) feeds the pipeline.
HTTP_SINK = _pipeline('connector Hook = http(url: "{url}", timeout: 2s)', "SensorReading",
                      alerts_to="\n    .to(Hook)")

MQTT_PASSWORD = f"""\
context a
context b

connector Broker = mqtt(host: "127.0.0.1", port: {{port}}, username: "plant",
                        password_env: "{PASSWORD_VARIABLE}")

stream Seen = R.from(Broker, topic: "r")
    .context(a)
    .emit(context: b, v: v)

stream Kept = Seen.context(b).where(v > 1)
"""

ALL = {
    "mqtt_pipeline": MQTT_PIPELINE,
    "nats_pipeline": NATS_PIPELINE,
    "nats_queue": NATS_QUEUE,
    "nats_with_input": NATS_WITH_INPUT,
    "file_follow": FILE_FOLLOW,
    "file_once": FILE_ONCE,
    "http_sink": HTTP_SINK,
    "mqtt_password": MQTT_PASSWORD,
}

_CONNECTOR_DECL = re.compile(r"^connector \w+ = \w+\([^()]*\)\n", re.MULTILINE)
_FROM_OR_TO = re.compile(r"\s*\.(?:from|to)\([^()]*\)")


def without_connectors(text: str) -> str:
    """The program with its `connector` declarations, `.from(...)`s and `.to(...)`s taken out."""
    return _FROM_OR_TO.sub("", _CONNECTOR_DECL.sub("", text))


def program_file(directory: Path, template: str, **values: object) -> Path:
    """The template with its `{name}`s filled in, written to `directory/program.vpl`."""
    text = template
    for name, value in values.items():
        text = text.replace(f"{{{name}}}", str(value))
    path = directory / "program.vpl"
    path.write_text(text)
    return path
