"""`varpulis_mp.Runtime` opens the program's connectors as `run` does (RUN.md §3): events posted
from Python and events from a real mosquitto both reach the streams, and `.to` sinks publish."""

from __future__ import annotations

import json
import threading

import pytest

import varpulis_mp
from tests.brokers import Mosquitto, MqttClient, wait_until

PROGRAM = """\
context ingest
context alerts
connector Broker = mqtt(host: "127.0.0.1", port: {port}, client_id: "rt")
stream Hot = Reading.from(Broker, topic: "readings").context(ingest).where(temp > 80.0)
    .emit(context: alerts, sensor: sensor, temp: temp)
stream Alerts = Hot.context(alerts).emit(sensor: sensor, temp: temp).to(Broker, topic: "alerts")
"""


@pytest.mark.parametrize("inline", [False, True], ids=["worker-processes", "inline"])
def test_posted_and_subscribed_events_flow_and_the_sink_publishes(mosquitto: Mosquitto, inline: bool) -> None:
    watcher = MqttClient(mosquitto.port, subscribe="alerts", qos=0)
    seen: list[varpulis_mp.Record] = []
    lock = threading.Lock()

    def keep(record: varpulis_mp.Record) -> None:
        with lock:
            seen.append(record)

    with varpulis_mp.Runtime(PROGRAM.replace("{port}", str(mosquitto.port)), inline=inline) as rt:
        rt.subscribe("Alerts", keep)
        rt.post("Reading", {"sensor": "posted", "temp": 90.0}, ts=1)
        assert rt.wait_idle(timeout=20)
        publisher = MqttClient(mosquitto.port)

        def from_broker() -> bool:  # the subscription may still be on its way: publish until it reads
            publisher.publish("readings", json.dumps({"sensor": "mqtt", "temp": 95.0, "ts": 2}).encode(), qos=0)
            with lock:
                return any(r.fields["sensor"] == "mqtt" for r in seen)

        wait_until(from_broker, 20, "an event through the broker", interval=0.2)
        publisher.close()
    with lock:
        assert seen[0] == varpulis_mp.Record("Alerts", 1, {"sensor": "posted", "temp": 90.0})
        assert {r.fields["sensor"] for r in seen} == {"posted", "mqtt"}
    wait_until(lambda: len(watcher.payloads()) >= len(seen), 10, "the published alerts")
    published = [json.loads(p) for p in watcher.payloads()]
    watcher.close()
    assert published[0] == {"event_type": "Alerts", "timestamp": "1970-01-01T00:00:00.001Z",
                            "sensor": "posted", "temp": 90.0}


def test_a_missing_password_variable_fails_at_construction() -> None:
    program = PROGRAM.replace("{port}", "1883").replace('client_id: "rt"',
                                                         'client_id: "rt", username: "u", password_env: "VMP_NOPE_PW"')
    with pytest.raises(ValueError, match="VMP_NOPE_PW"):
        varpulis_mp.Runtime(program, inline=True)
