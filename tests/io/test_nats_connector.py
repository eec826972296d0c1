"""The `nats` connector against a real nats-server: subjects, payloads, queue groups, outages."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.brokers import NatsClient, NatsServer, free_port, n_events, record, take_until, wait_until
from varpulis_mp.io.connector_spec import Monitored
from varpulis_mp.io.connectors import Subscription, connector_kind
from varpulis_mp.io.nats import NatsSourcePartition
from varpulis_mp.io.payloads import encode_record

NATS = connector_kind("nats")


def source(url: str, subs: list[Subscription], **more: object) -> NatsSourcePartition:
    partition = NATS.source("Bus", {"servers": url, **more}, subs, "ingest").build(0, 1)
    assert isinstance(partition, NatsSourcePartition) and isinstance(partition, Monitored)
    wait_until(lambda: partition.healthy, 10, "the source to subscribe")
    return partition


def test_wildcard_subjects_typed_untyped_and_rejections(nats_server: NatsServer) -> None:
    src = source(nats_server.url, [Subscription("Reading", {"topic": "sensors.*.reading"}),
                                   Subscription("Status", {"topic": "status.>"}),
                                   Subscription("Reading", {"topic": "sensors.>"})])
    pub = NatsClient(nats_server.url)
    try:
        pub.publish("sensors.S1.reading", b'{"sensor_id": "S1", "temperature": 91.5}')
        pub.publish("status.a.b", b'{"type": "Status", "timestamp": "1970-01-01T00:00:01.5Z", "up": true}')
        pub.publish("status", b'{"never": "matched"}')
        pub.publish("status.a", b'{"event_type": "Reading"}')
        pub.publish("sensors.S2.reading", b'{"ts": 5, "data": {"x": [1, 2]}}')
        pub.publish("sensors.S3.reading", b"\xff")
        events, rejected = take_until(src, n_events(5))
    finally:
        pub.close()
        src.close()
    assert [(e.type, e.ts, e.fields) for e in events] == [
        ("Reading", None, {"sensor_id": "S1", "temperature": 91.5}),
        ("Status", 1500, {"up": True}),
        ("Reading", 5, {"x": [1, 2]}),
    ]
    assert [r.reason for r in rejected] == ["type mismatch", "invalid utf-8"]
    assert src.counters.messages_in == 5
    with pytest.raises(StopIteration):
        src.next_batch()


def test_a_queue_group_shares_the_messages_between_its_members(nats_server: NatsServer) -> None:
    subs = [Subscription("Job", {"topic": "jobs"})]
    members = [source(nats_server.url, subs, queue_group="workers") for _ in range(2)]
    pub = NatsClient(nats_server.url)
    try:
        for i in range(100):
            pub.publish("jobs", json.dumps({"n": i}).encode())
        got: list[int] = []
        deadline = time.monotonic() + 10
        while len(got) < 100 and time.monotonic() < deadline:
            for member in members:
                got += [e.fields["n"] for e in member.next_batch().events]
            time.sleep(0.01)
    finally:
        pub.close()
        for member in members:
            member.close()
    assert sorted(got) == list(range(100))  # each message once, to one member of the group
    assert all(m.counters.messages_in > 0 for m in members)


def test_a_server_down_at_start_is_waited_for_and_a_restart_reconnects(tmp_path: Path) -> None:
    server = NatsServer(tmp_path, free_port())
    started = time.monotonic()
    src = NATS.source("Bus", {"servers": server.url}, [Subscription("R", {"topic": "r"})], "ingest").build(0, 1)
    try:
        assert time.monotonic() - started < 2.0  # build() does not wait for the server (margin: a loaded machine)
        time.sleep(0.3)
        assert not src.healthy
        server.start()
        wait_until(lambda: src.healthy, 10, "the source to connect once the server is up")
        pub = NatsClient(server.url)
        pub.publish("r", b'{"x": 1}')
        pub.close()
        take_until(src, n_events(1))
        server.restart()
        wait_until(lambda: src.healthy and src.counters.connects == 2, 10, "the source to reconnect")
        pub = NatsClient(server.url)
        pub.publish("r", b'{"x": 2}')
        pub.close()
        events, _ = take_until(src, n_events(1))
        assert events[0].fields == {"x": 2}
    finally:
        src.close()
        server.stop()


def test_sink_publishes_the_reference_payload(nats_server: NatsServer) -> None:
    sub = NatsClient(nats_server.url, subscribe="alerts.>")
    sink = NATS.sink("Bus", {"servers": nats_server.url}, {"topic": "alerts.hot"}, "Hot", "ingest").build(0, 1)
    records = [record("Hot", 590, sensor_id="S1", temperature=91.5), *(record("Hot", i, n=i) for i in range(100))]
    sink.write_batch(records, False)
    sink.close()
    try:
        wait_until(lambda: len(sub.received) >= 101, 10, "the published records")
    finally:
        sub.close()
    assert sub.received[0] == ("alerts.hot", b'{"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.590Z",'
                                             b' "sensor_id": "S1", "temperature": 91.5}')
    assert sub.payloads() == [encode_record(r) for r in records]


def test_sink_records_wait_while_the_server_is_down(tmp_path: Path) -> None:
    server = NatsServer(tmp_path, free_port())
    sink = NATS.sink("Bus", {"servers": server.url}, {"topic": "out"}, "S", "ingest").build(0, 1)
    try:
        sink.write_batch([record("S", i, n=i) for i in range(20)], False)
        time.sleep(0.3)
        assert not sink.healthy and sink.buffered == 20
        server.start()
        sub = NatsClient(server.url, subscribe="out")
        wait_until(lambda: sink.healthy, 10, "the sink to connect")
        # Core NATS keeps nothing for late subscribers: check the records reach the server (flushed)
        # and that later ones reach the subscriber.
        wait_until(lambda: sink.buffered == 0, 10, "the buffered records to go out")
        sink.write_batch([record("S", i, n=i) for i in range(20, 30)], False)
        sink.close()
        wait_until(lambda: len(sub.received) >= 10, 10, "the later records")
        sub.close()
        assert sink.counters.messages_out == 30
    finally:
        server.stop()


def test_bad_subjects_are_refused_when_the_source_is_made() -> None:
    with pytest.raises(ValueError, match="empty token"):
        NATS.source("Bus", {"servers": "nats://127.0.0.1:1"}, [Subscription("R", {"topic": "a..b"})], "c")
    with pytest.raises(ValueError, match="wildcards"):
        NATS.sink("Bus", {"servers": "nats://127.0.0.1:1"}, {"topic": "a.*"}, "S", "c")
    with pytest.raises(ValueError, match="'topic'"):
        NATS.sink("Bus", {"servers": "nats://127.0.0.1:1"}, {}, "S", "c")
