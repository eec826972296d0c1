"""The `http` sink against a local http.server, and the delivery machinery every sink shares:
its bounded buffer (backpressure), retries through an outage, refusals and the close deadline."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.brokers import Endpoint, free_port, record, wait_until
from varpulis_mp.io.connector_spec import Monitored
from varpulis_mp.io.connectors import Subscription, connector_kind
from varpulis_mp.io.delivery import DeliverySink, DeliverySinkPartition

HTTP = connector_kind("http")


def sink(url: str, capacity: int | None = None, **more: object) -> DeliverySinkPartition:
    spec = HTTP.sink("Hook", {"url": url, **more}, {}, "Hot", "c")
    assert isinstance(spec, DeliverySink)
    if capacity is not None:
        spec = DeliverySink(spec.name, spec.stream, spec.transport, capacity=capacity)
    partition = spec.build(0, 1)
    assert isinstance(partition, Monitored)
    return partition


def test_posts_one_json_object_per_record(endpoint: Endpoint) -> None:
    s = sink(endpoint.url)
    s.write_batch([record("Hot", 590, sensor_id="S1", temperature=91.5), record("Hot", 591, n=2)], False)
    s.close()
    assert endpoint.requests[0] == (
        "POST", "/alerts?src=vmp", "application/json",
        b'{"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.590Z", "sensor_id": "S1", "temperature": 91.5}')
    assert len(endpoint.requests) == 2
    assert s.counters.messages_out == 2


def test_method_is_configurable(endpoint: Endpoint) -> None:
    s = sink(endpoint.url, method="put")
    s.write_batch([record("Hot", 1, x=1)], False)
    s.close()
    assert endpoint.requests[0][0] == "PUT"


def test_an_endpoint_down_for_a_moment_loses_nothing() -> None:
    endpoint = Endpoint()
    endpoint.start()
    s = sink(endpoint.url)
    try:
        s.write_batch([record("Hot", i, n=i) for i in range(10)], False)
        wait_until(lambda: len(endpoint.requests) == 10, 5, "the first records")
        endpoint.stop()
        s.write_batch([record("Hot", i, n=i) for i in range(10, 40)], False)
        time.sleep(0.4)
        assert not s.healthy and s.buffered == 30
        endpoint.start()
        s.write_batch([record("Hot", i, n=i) for i in range(40, 50)], False)
        s.close(timeout=10)
    finally:
        endpoint.stop()
    assert sorted(json.loads(b)["n"] for b in endpoint.bodies()) == list(range(50))
    assert s.counters.messages_out == 50 and s.counters.dead_lettered == 0
    assert s.counters.connects >= 2


def test_a_5xx_is_retried_a_4xx_is_refused_and_counted(endpoint: Endpoint, caplog: pytest.LogCaptureFixture) -> None:
    endpoint.status = 503
    s = sink(endpoint.url)
    s.write_batch([record("Hot", 1, n=1)], False)
    wait_until(lambda: len(endpoint.requests) >= 2, 5, "a retry after the 503")
    endpoint.status = 400  # refuses only bodies holding "bad": true
    s.write_batch([record("Hot", 2, bad=True), record("Hot", 3, n=3)], False)
    s.close(timeout=10)
    delivered = [json.loads(b) for b in endpoint.bodies()]
    assert {d.get("n") for d in delivered} >= {1, 3}
    assert s.counters.dead_lettered == 1
    assert "HTTP 400" in caplog.text


def test_write_batch_blocks_while_the_buffer_is_full() -> None:
    endpoint = Endpoint()  # not started: nothing is delivered
    s = sink(endpoint.url, capacity=10)
    s.write_batch([record("Hot", i, n=i) for i in range(10)], False)
    assert s.buffered == 10
    returned = threading.Event()

    def write_more() -> None:
        s.write_batch([record("Hot", i, n=i) for i in range(10, 25)], False)
        returned.set()

    writer = threading.Thread(target=write_more)
    writer.start()
    try:
        assert not returned.wait(0.5)  # backpressure: the writer waits
        assert s.buffered == 10  # and the buffer stays bounded
        endpoint.start()
        assert returned.wait(10)
        writer.join(5)
        s.close(timeout=10)
    finally:
        endpoint.stop()
    assert sorted(json.loads(b)["n"] for b in endpoint.bodies()) == list(range(25))


def test_close_gives_up_at_its_deadline_and_says_what_was_lost(caplog: pytest.LogCaptureFixture) -> None:
    s = sink(f"http://127.0.0.1:{free_port()}/")
    s.write_batch([record("Hot", i, n=i) for i in range(7)], False)
    started = time.monotonic()
    s.close(timeout=0.3)
    assert time.monotonic() - started < 6  # the deadline, plus at most one backoff step
    assert s.counters.dead_lettered == 7
    assert "7 record(s) not delivered" in caplog.text
    with pytest.raises(RuntimeError, match="closed"):
        s.write_batch([record("Hot", 1)], False)


def test_http_is_a_sink_only() -> None:
    with pytest.raises(ValueError, match="only be written to"):
        HTTP.source("Hook", {"url": "http://127.0.0.1:1/"}, [Subscription("R")], "c")
    with pytest.raises(ValueError, match="'url'"):
        HTTP.sink("Hook", {"url": "ftp://x/"}, {}, "S", "c")
    with pytest.raises(ValueError, match="not supported yet"):
        connector_kind("kafka")


def test_closing_a_sink_with_nothing_to_send_does_not_wait_out_its_backoff() -> None:
    s = sink(f"http://127.0.0.1:{free_port()}/")
    time.sleep(0.8)  # several failed attempts: the next wait is long
    assert not s.healthy and s.counters.failures >= 3
    started = time.monotonic()
    s.close(timeout=10)
    assert time.monotonic() - started < 0.3
    assert s.counters.dead_lettered == 0
