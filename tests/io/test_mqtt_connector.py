"""The `mqtt` connector against a real mosquitto: subscriptions, payloads, sessions, outages."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

from tests.brokers import Mosquitto, MqttClient, free_port, n_events, record, take_until, wait_until
from varpulis_mp.engine.output import Output
from varpulis_mp.io.connector_spec import Monitored
from varpulis_mp.io.connectors import Subscription, connector_kind
from varpulis_mp.io.mqtt import MqttSource, MqttSourcePartition
from varpulis_mp.io.payloads import encode_record
from varpulis_mp.io.ports import InEvent, Rejection

MQTT = connector_kind("mqtt")


def params(port: int, **more: object) -> dict[str, object]:
    return {"host": "127.0.0.1", "port": port, "client_id": "vmp-test-ingest", "qos": 0, **more}


def source(port: int, subs: list[Subscription], capacity: int | None = None,
           **more: object) -> MqttSourcePartition:
    spec = MQTT.source("Broker", params(port, **more), subs, "ingest")
    assert isinstance(spec, MqttSource)
    if capacity is not None:
        spec = dataclasses.replace(spec, capacity=capacity)
    partition = spec.build(0, 1)
    assert isinstance(partition, Monitored)
    wait_until(lambda: partition.healthy, 10, "the source to subscribe")
    return partition


def test_qos0_wildcard_subscription_reads_typed_untyped_and_rejects(mosquitto: Mosquitto) -> None:
    src = source(mosquitto.port, [Subscription("SensorReading", {"topic": "sensors/+/reading"})])
    pub = MqttClient(mosquitto.port)
    try:
        pub.publish("sensors/S1/reading", b'{"sensor_id": "S1", "temperature": 91.5}', qos=0)
        pub.publish("sensors/S2/reading", b'{"event_type": "SensorReading", "ts": 590, "data": {"t": 1}}', qos=0)
        pub.publish("sensors/S3/other", b'{"never": "matched"}', qos=0)
        pub.publish("sensors/S4/reading", b'{"event_type": "Other", "t": 2}', qos=0)
        pub.publish("sensors/S5/reading", b"not json", qos=0)
        pub.publish("sensors/S6/reading", b'{"nested": {"x": 1}}', qos=0)
        events, rejected = take_until(src, n_events(5))
    finally:
        pub.close()
        src.close()
    assert [(e.type, e.ts, e.fields) for e in events] == [
        ("SensorReading", None, {"sensor_id": "S1", "temperature": 91.5}),
        ("SensorReading", 590, {"t": 1}),
    ]
    assert [(r.source, r.reason) for r in rejected] == [
        ("Broker", "type mismatch"), ("Broker", "invalid json"), ("Broker", "unsupported value")]
    assert rejected[1].payload == b"not json"
    assert src.counters.messages_in == 5
    with pytest.raises(StopIteration):
        src.next_batch()


def test_two_types_share_one_topic_tree_by_event_type(mosquitto: Mosquitto) -> None:
    # Overlapping filters, subscribed as one (some brokers send a copy per filter): each event comes once.
    src = source(mosquitto.port, [Subscription("Temp", {"topic": "plant/#"}),
                                  Subscription("Door", {"topic": "plant/#"}),
                                  Subscription("Alarm", {"topic": "plant/+/alarm"})])
    pub = MqttClient(mosquitto.port)
    try:
        pub.publish("plant/a/temp", b'{"event_type": "Temp", "v": 1}')
        pub.publish("plant/b/door", b'{"type": "Door", "open": true}')
        pub.publish("plant/c/alarm", b'{"event_type": "Alarm", "level": 3}')
        pub.publish("plant/c/alarm", b'{"event_type": "Temp", "v": 2}')
        pub.publish("plant/d", b'{"event_type": "Alarm", "level": 9}')
        pub.publish("plant/e", b'{"v": 3}')  # names no type: an event of every type reading it
        pub.publish("plant/end", b'{"event_type": "Door", "open": false}')
        assert src.wire_filters == [("plant/#", 0)]
        events, rejected = take_until(src, lambda ev, rj: any(e.fields.get("open") is False for e in ev))
    finally:
        pub.close()
        src.close()
    assert [(e.type, e.fields) for e in events] == [
        ("Temp", {"v": 1}), ("Door", {"open": True}), ("Alarm", {"level": 3}), ("Temp", {"v": 2}),
        ("Temp", {"v": 3}), ("Door", {"v": 3}), ("Door", {"open": False})]
    assert [r.reason for r in rejected] == ["type mismatch"]
    assert src.counters.messages_in == 7


def test_qos1_session_keeps_what_arrives_while_the_client_is_away(mosquitto: Mosquitto) -> None:
    subs = [Subscription("Reading", {"topic": "r/#", "qos": 1})]
    first = source(mosquitto.port, subs)
    first.close()
    pub = MqttClient(mosquitto.port)
    try:
        for i in range(20):
            pub.publish(f"r/{i}", json.dumps({"seq": i}).encode(), qos=1)
    finally:
        pub.close()
    second = source(mosquitto.port, subs)
    try:
        events, _ = take_until(second, n_events(20))
    finally:
        second.close()
    assert [e.fields["seq"] for e in events] == list(range(20))


def test_a_broker_down_at_start_is_waited_for(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, free_port())
    started = time.monotonic()
    spec = MQTT.source("Broker", params(broker.port), [Subscription("R", {"topic": "r"})], "ingest")
    src = spec.build(0, 1)
    try:
        assert time.monotonic() - started < 2.0  # build() does not wait for the broker (margin: a loaded machine)
        time.sleep(0.3)
        assert not src.healthy
        assert src.next_batch().events == []
        broker.start()
        wait_until(lambda: src.healthy, 10, "the source to connect once the broker is up")
        pub = MqttClient(broker.port)
        pub.publish("r", b'{"x": 1}')
        pub.close()
        events, _ = take_until(src, n_events(1))
        assert events[0].fields == {"x": 1}
    finally:
        src.close()
        broker.stop()


def test_a_broker_restart_during_a_qos1_subscription_loses_nothing(mosquitto: Mosquitto) -> None:
    # A small inbox keeps messages unacknowledged at the broker when it goes down.
    src = source(mosquitto.port, [Subscription("R", {"topic": "r/#", "qos": 1})], capacity=5,
                 client_id="vmp-test-restart")
    pub = MqttClient(mosquitto.port)
    for i in range(50):
        pub.publish("r/a", json.dumps({"seq": i}).encode(), qos=1)
    pub.close()
    seen: set[int] = set()
    events, _ = take_until(src, n_events(3))
    seen.update(e.fields["seq"] for e in events)
    mosquitto.restart()  # SIGTERM: mosquitto saves the session and its queue
    pub = MqttClient(mosquitto.port)
    for i in range(50, 100):
        pub.publish("r/b", json.dumps({"seq": i}).encode(), qos=1)
    pub.close()


    def all_seen(events: list[InEvent], rejected: list[Rejection]) -> bool:
        seen.update(e.fields["seq"] for e in events)
        return seen >= set(range(100))

    try:
        take_until(src, all_seen, timeout=20)
    finally:
        src.close()
    assert seen == set(range(100))
    assert src.counters.connects >= 2


def test_sink_publishes_the_reference_payload_at_qos0_and_qos1(mosquitto: Mosquitto) -> None:
    sub = MqttClient(mosquitto.port, subscribe="alerts/#", qos=1)
    sink0 = MQTT.sink("Broker", params(mosquitto.port), {"topic": "alerts/hot"}, "Hot", "ingest").build(0, 1)
    sink1 = MQTT.sink("Broker", params(mosquitto.port), {"topic": "alerts/cold", "qos": 1}, "Cold",
                      "ingest").build(0, 1)
    hot = [record("Hot", 590, sensor_id="S1", temperature=91.5)]
    cold = [record("Cold", i, n=i) for i in range(200)]
    window = Output(1, 0, 1, "Cold", "window", 0, {"n": -1})
    sink0.write_batch(hot, False)
    sink1.write_batch([*cold, window], True)
    sink0.close()
    sink1.close()
    try:
        wait_until(lambda: len(sub.received) >= 201, 10, "the published records")
        time.sleep(0.1)
    finally:
        sub.close()
    assert ("alerts/hot", b'{"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.590Z",'
                          b' "sensor_id": "S1", "temperature": 91.5}') in sub.received
    assert [p for t, p in sub.received if t == "alerts/cold"] == [encode_record(r) for r in cold]
    assert len(sub.received) == 201  # the window line is not sent
    assert sink1.counters.messages_out == 200
    assert sink1.buffered == 0


def test_sink_default_topic_is_the_stream_name_with_output(mosquitto: Mosquitto) -> None:
    sub = MqttClient(mosquitto.port, subscribe="#")
    sink = MQTT.sink("Broker", params(mosquitto.port), {}, "Hot", "ingest").build(0, 1)
    sink.write_batch([record("Hot", 1, x=1)], False)
    sink.close()
    try:
        wait_until(lambda: sub.received, 10, "the record")
    finally:
        sub.close()
    assert sub.received[0][0] == "Hot-output"


def test_sink_records_wait_while_the_broker_is_down(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, free_port())
    sink = MQTT.sink("Broker", params(broker.port), {"topic": "out", "qos": 1}, "S", "ingest").build(0, 1)
    try:
        sink.write_batch([record("S", i, n=i) for i in range(50)], False)
        time.sleep(0.3)
        assert not sink.healthy
        assert sink.buffered == 50
        broker.start()
        sub = MqttClient(broker.port, subscribe="out", qos=1)
        wait_until(lambda: sink.buffered == 0, 10, "the buffered records to go out")
        # Records that reached the broker before the subscriber did are not held for it (no session);
        # the ones after are.
        sink.write_batch([record("S", i, n=i) for i in range(50, 60)], False)
        sink.close()
        wait_until(lambda: len(sub.received) >= 10, 10, "the later records")
        sub.close()
        assert sink.counters.messages_out == 60
        assert sink.counters.failures >= 1
    finally:
        broker.stop()


def test_sink_through_a_broker_restart_loses_nothing(mosquitto: Mosquitto) -> None:
    sub = MqttClient(mosquitto.port, client_id="collector", subscribe="out", qos=1)
    sink = MQTT.sink("Broker", params(mosquitto.port), {"topic": "out", "qos": 1}, "S", "ingest").build(0, 1)
    writer_done = threading.Event()

    def write() -> None:
        for i in range(200):
            sink.write_batch([record("S", i, n=i)], False)
            time.sleep(0.004)  # spread over the restart
        writer_done.set()

    writer = threading.Thread(target=write)
    writer.start()
    wait_until(lambda: len(sub.received) > 20, 10, "the first records")
    mosquitto.restart()
    writer.join(10)
    assert writer_done.is_set()
    sink.close(timeout=15)
    try:
        wait_until(lambda: {json.loads(p)["n"] for p in sub.payloads()} >= set(range(200)), 20,
                   "every record, the broker restart notwithstanding")
    finally:
        sub.close()
    assert sink.counters.connects >= 2
    assert sink.counters.dead_lettered == 0


def test_sink_client_ids_never_take_over_the_source_session(mosquitto: Mosquitto) -> None:
    src = source(mosquitto.port, [Subscription("R", {"topic": "r"})])
    sinks = [MQTT.sink("Broker", params(mosquitto.port), {"topic": "r"}, "R", "ingest").build(0, 1)
             for _ in range(2)]
    try:
        for sink in sinks:
            sink.write_batch([record("R", 1, x=1)], False)
        events, _ = take_until(src, n_events(2))
        assert len(events) == 2
        assert src.healthy and src.counters.connects == 1
    finally:
        for sink in sinks:
            sink.close()
        src.close()


def test_bad_topics_are_refused_when_the_source_is_made() -> None:
    with pytest.raises(ValueError, match="wildcard"):
        MQTT.source("Broker", params(1883), [Subscription("R", {"topic": "a/b#"})], "ingest")
    with pytest.raises(ValueError, match="wildcards"):
        MQTT.sink("Broker", params(1883), {"topic": "a/+"}, "S", "ingest")
    with pytest.raises(ValueError, match="'qos'"):
        MQTT.source("Broker", params(1883), [Subscription("R", {"topic": "a", "qos": 2})], "ingest")
    with pytest.raises(ValueError, match="'client_id'"):
        MQTT.source("Broker", params(1883, client_id=""), [Subscription("R", {"topic": "a"})], "ingest")
    with pytest.raises(ValueError, match="'host'"):
        MQTT.source("Broker", {"port": 1}, [Subscription("R", {"topic": "a"})], "ingest")
