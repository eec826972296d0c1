"""Connector benchmarks: `varpulis-mp run` between real brokers, end to end (RUN.md §1).

Each case starts its broker (mosquitto or nats-server, on a free loopback port, through
tests/brokers.py), a subscriber on the output topic, and `varpulis-mp run P --output none` where P
reads one event per message from the broker, filters, aggregates count windows of 10 per sensor
and publishes each aggregate back (`.to`); once the run says it is subscribed, a publisher sends
`--events` messages (10 sensors in turn, so every window fills: events / 10 records come back).
Events/s = events / (time of the last record received - time of the first publish). Every
record is checked (count 10, the right sum), so a lost or doubled message shows.

Cases (`--only`, comma-separated; default all):

* `mqtt0`, `mqtt1` - MQTT with QoS 0 / QoS 1 on both sides (paho publisher, mosquitto, run,
  mosquitto, paho subscriber).
* `mqtt-relay` - the reference for `mqtt0`: a bare paho relay (a second Python process that
  republishes every message as it arrives, QoS 0) instead of `run`; records = events.
* `mqtt0-pub`, `mqtt1-pub` - the publisher alone into mosquitto, nobody subscribed: the most the
  sending side gives (events/s = events / publish time).
* `nats` - NATS (nats-py publisher, nats-server, run, nats-server, nats-py subscriber).
* `--contexts` adds each case again with the program split over two contexts (read and filter
  in one worker, aggregate and publish in the other).

Usage:
    .venv/bin/python bench/bench_brokers.py [--only mqtt0,mqtt1,mqtt-relay,mqtt0-pub,mqtt1-pub,nats]
        [--events 100000]
        [--runs 1] [--contexts] [--timeout 300]
    .venv/bin/python bench/bench_brokers.py --events 20000      # a quick look, under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import run as harness  # noqa: E402

from tests.brokers import Mosquitto, NatsServer  # noqa: E402

SENSORS = 10
WINDOW = 10
READY_TIMEOUT_S = 30.0
OUTSTANDING = 10_000

PROGRAM = """\
connector Broker = {connector}

stream Readings = Reading.from(Broker, topic: "{topic_in}"{qos_in})
    {context_a}.where(value >= 0.0)
    .emit({emit_context}sensor: sensor, value: value)

stream Stats = Readings
    {context_b}.partition_by(sensor)
    .window({window})
    .aggregate(sensor: sensor, n: count(value), total: sum(value))
    .to(Broker, topic: "{topic_out}"{qos_out})
"""

RELAY = """\
import sys, threading
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
port = int(sys.argv[1])
out = paho.Client(CallbackAPIVersion.VERSION2, client_id="relay-out")
out.connect("127.0.0.1", port)
out.loop_start()
def on_connect(c, u, f, r, p):
    c.subscribe("bench/in", 0)
def on_subscribe(c, u, mid, reasons, p):
    print("subscribed", flush=True)
def on_message(c, u, msg):
    out.publish("bench/out", msg.payload, 0)
src = paho.Client(CallbackAPIVersion.VERSION2, client_id="relay-in")
src.on_connect = on_connect
src.on_subscribe = on_subscribe
src.on_message = on_message
src.connect("127.0.0.1", port)
src.loop_forever()
"""


# The publisher: a process of its own (a device, not a thread sharing the subscriber's interpreter).
# Connects, says "ready", waits for a line, publishes, then prints when it started and how long it
# took (time.perf_counter: the system's monotonic clock, the same in every process).
PUBLISHER = """\
import sys, time
from collections import deque
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
port, events, qos, sensors, outstanding = (int(x) for x in sys.argv[1:6])
client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
client.max_inflight_messages_set(1000)
client.connect("127.0.0.1", port)
client.loop_start()
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
# QoS 1 message ids wrap at 65535: at most `outstanding` unacknowledged at a time.
infos = deque()
for i in range(events):
    infos.append(client.publish("bench/in", b'{"ts": %d, "sensor": "S%d", "value": %d.0}' % (i, i % sensors, i), qos))
    if qos and len(infos) >= outstanding:
        infos.popleft().wait_for_publish(60)
for info in list(infos)[-1:] if qos == 0 else infos:
    info.wait_for_publish(60)
print(start, time.perf_counter() - start, flush=True)
client.disconnect()
client.loop_stop()
"""


@dataclass
class Outcome:
    case: str
    events: int
    records: int  # received by the subscriber
    expected: int
    bad: int  # records whose content is wrong (a lost or doubled event)
    seconds: float  # first publish to last record
    publish_s: float  # first publish to last publish
    status: str

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")


def payload(i: int) -> bytes:
    # ts: event time in ms; sensor i % SENSORS; value i (so each window's sum is known).
    return b'{"ts": %d, "sensor": "S%d", "value": %d.0}' % (i, i % SENSORS, i)


def expected_total(sensor: int, window: int) -> float:
    """The sum of window `window` (0-based) of sensor `sensor`: values sensor + SENSORS*k."""
    ks = range(window * WINDOW, (window + 1) * WINDOW)
    return float(sum(sensor + SENSORS * k for k in ks))


class Collector:
    """What the subscriber received: checked and timed."""

    def __init__(self, expected: int, relay: bool) -> None:
        self.expected = expected
        self.relay = relay
        self.count = 0
        self.bad = 0
        self.last = 0.0
        self.windows: dict[str, int] = {}
        self.done = threading.Event()
        self.lock = threading.Lock()

    def take(self, data: bytes) -> None:
        now = time.perf_counter()
        with self.lock:
            self.count += 1
            self.last = now
            if not self.relay:
                try:
                    record = json.loads(data)
                    sensor = record["sensor"]
                    k = self.windows.get(sensor, 0)
                    self.windows[sensor] = k + 1
                    if record["n"] != WINDOW or record["total"] != expected_total(int(sensor[1:]), k):
                        self.bad += 1
                except (ValueError, KeyError, TypeError):
                    self.bad += 1
            if self.count >= self.expected:
                self.done.set()


def program_text(connector: str, topic_in: str, topic_out: str, qos: int | None, contexts: bool) -> str:
    text = PROGRAM.format(
        connector=connector, topic_in=topic_in, topic_out=topic_out, window=WINDOW,
        qos_in=f", qos: {qos}" if qos is not None else "", qos_out=f", qos: {qos}" if qos is not None else "",
        context_a=".context(a)\n    " if contexts else "", context_b=".context(b)\n    " if contexts else "",
        emit_context="context: b, " if contexts else "")
    return ("context a\ncontext b\n\n" + text) if contexts else text


class Run:
    """`varpulis-mp run P --output none`, ready once every subscription says so on standard error."""

    def __init__(self, program: Path, subscriptions: int = 1) -> None:
        self.err_lines: list[str] = []
        self.proc = subprocess.Popen([harness.cli(), "run", str(program), "--output", "none"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self._subscribed = threading.Event()
        self._wanted = subscriptions
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        seen = 0
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.err_lines.append(line)
            if re.search(r"subscribed, receiving", line):
                seen += 1
                if seen >= self._wanted:
                    self._subscribed.set()

    def wait_ready(self) -> None:
        if not self._subscribed.wait(READY_TIMEOUT_S):
            raise RuntimeError("run never subscribed:\n" + "\n".join(self.err_lines[-20:]))

    def stop(self) -> str:
        """SIGTERM (a clean drain), then the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait()
        return "ok" if rc == 0 else f"rc={rc}: " + " | ".join(self.err_lines[-5:])


# -- MQTT --------------------------------------------------------------------------------------


def _paho(client_id: str, port: int, on_message: Callable[[bytes], None] | None = None,
          subscribe: str | None = None, qos: int = 0) -> object:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(1000)
    ready = threading.Event()

    def on_connect(c, u, f, r, p) -> None:  # type: ignore[no-untyped-def]
        if subscribe is None:
            ready.set()
        else:
            c.subscribe(subscribe, qos)

    def on_subscribe(c, u, mid, reasons, p) -> None:  # type: ignore[no-untyped-def]
        ready.set()

    def on_msg(c, u, msg) -> None:  # type: ignore[no-untyped-def]
        assert on_message is not None
        on_message(msg.payload)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_msg
    client.connect("127.0.0.1", port, 60)
    client.loop_start()
    if not ready.wait(READY_TIMEOUT_S):
        raise RuntimeError(f"{client_id} could not connect to mosquitto")
    return client


class Publisher:
    """The PUBLISHER script in a process of its own, connected and waiting for `go`."""

    def __init__(self, port: int, events: int, qos: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(port), str(events), str(qos),
                                      str(SENSORS), str(OUTSTANDING)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("the publisher did not connect")

    def go(self) -> tuple[float, float]:
        """Publish everything: when it started (perf_counter) and how long it took."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        started, took = (float(x) for x in self.proc.stdout.readline().split())
        return started, took

    def close(self) -> None:
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def mqtt_publisher_alone(case: str, events: int, qos: int, work: Path) -> Outcome:
    """The publisher into mosquitto with nobody subscribed: how fast the sending side alone goes."""
    broker = Mosquitto(work)
    broker.start()
    try:
        pub = Publisher(broker.port, events, qos)
        _, published = pub.go()
        pub.close()
    finally:
        broker.stop()
    return Outcome(case, events, 0, 0, 0, published, published, "ok")


def mqtt_case(case: str, events: int, qos: int, relay: bool, contexts: bool, timeout: float, work: Path) -> Outcome:
    broker = Mosquitto(work)
    broker.start()
    expected = events if relay else events // WINDOW
    collector = Collector(expected, relay)
    sub = None
    pub: Publisher | None = None
    runner: Run | None = None
    relay_proc: subprocess.Popen[bytes] | None = None
    status = "ok"
    try:
        sub = _paho("bench-sub", broker.port, collector.take, "bench/out", qos)
        if relay:
            relay_proc = subprocess.Popen([sys.executable, "-c", RELAY, str(broker.port)], stdout=subprocess.PIPE)
            assert relay_proc.stdout is not None
            if relay_proc.stdout.readline().strip() != b"subscribed":
                raise RuntimeError("the relay did not subscribe")
        else:
            program = work / f"{case}.vpl"
            program.write_text(program_text(
                f'mqtt(host: "127.0.0.1", port: {broker.port}, client_id: "bench-run", qos: {qos})',
                "bench/in", "bench/out", qos, contexts))
            runner = Run(program)
            runner.wait_ready()
        pub = Publisher(broker.port, events, qos)
        started, published = pub.go()
        if not collector.done.wait(timeout):
            status = f"timeout: {collector.count} of {expected} records"
        seconds = (collector.last - started) if collector.count else float("nan")
    finally:
        if pub is not None:
            pub.close()
        if sub is not None:
            sub.disconnect()  # type: ignore[attr-defined]
            sub.loop_stop()  # type: ignore[attr-defined]
        if runner is not None:
            stopped = runner.stop()
            if stopped != "ok" and status == "ok":
                status = stopped
        if relay_proc is not None:
            relay_proc.kill()
            relay_proc.wait()
        broker.stop()
    return Outcome(case, events, collector.count, expected, collector.bad, seconds, published, status)


# -- NATS --------------------------------------------------------------------------------------


def nats_case(case: str, events: int, contexts: bool, timeout: float, work: Path) -> Outcome:
    import nats

    server = NatsServer(work)
    server.start()
    expected = events // WINDOW
    collector = Collector(expected, relay=False)
    runner: Run | None = None
    status = "ok"
    seconds = published = float("nan")

    async def main() -> tuple[float, float]:
        sub = await nats.connect(server.url)

        async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
            collector.take(msg.data)

        await sub.subscribe("bench.out", cb=on_msg)
        await sub.flush()
        pub = await nats.connect(server.url)
        start = time.perf_counter()
        for i in range(events):
            await pub.publish("bench.in", payload(i))
        await pub.flush()
        publish_s = time.perf_counter() - start
        deadline = time.monotonic() + timeout
        while not collector.done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await pub.close()
        await sub.close()
        return start, publish_s

    try:
        program = work / f"{case}.vpl"
        program.write_text(program_text(f'nats(servers: "{server.url}")', "bench.in", "bench.out", None, contexts))
        runner = Run(program)
        runner.wait_ready()
        start, published = asyncio.run(main())
        if not collector.done.is_set():
            status = f"timeout: {collector.count} of {expected} records"
        seconds = (collector.last - start) if collector.count else float("nan")
    finally:
        if runner is not None:
            stopped = runner.stop()
            if stopped != "ok" and status == "ok":
                status = stopped
        server.stop()
    return Outcome(case, events, collector.count, expected, collector.bad, seconds, published, status)


def run_case(case: str, events: int, contexts: bool, timeout: float) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        name = case + ("+contexts" if contexts else "")
        if case == "mqtt0":
            return mqtt_case(name, events, 0, False, contexts, timeout, work)
        if case == "mqtt1":
            return mqtt_case(name, events, 1, False, contexts, timeout, work)
        if case == "mqtt-relay":
            return mqtt_case(name, events, 0, True, False, timeout, work)
        if case in ("mqtt0-pub", "mqtt1-pub"):
            return mqtt_publisher_alone(name, events, int(case[4]), work)
        if case == "nats":
            return nats_case(name, events, contexts, timeout, work)
    raise ValueError(f"unknown case {case}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="mqtt0,mqtt1,mqtt-relay,mqtt0-pub,mqtt1-pub,nats")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--contexts", action="store_true")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args(argv)
    m = harness.machine()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}; "
          f"load {harness.load()}\n")
    print("| case | events | records (expected) | wrong | publish s | first publish to last record s | events/s | status |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    cases = args.only.split(",")
    variants = [(c, False) for c in cases]
    if args.contexts:
        variants += [(c, True) for c in cases if c in ("mqtt0", "mqtt1", "nats")]
    for case, contexts in variants:
        outcomes = [run_case(case, args.events, contexts, args.timeout) for _ in range(args.runs)]
        for o in outcomes:
            print(f"| {o.case} | {o.events:,} | {o.records:,} ({o.expected:,}) | {o.bad} | {o.publish_s:.2f} | "
                  f"{o.seconds:.2f} | {o.rate:,.0f} | {o.status} |", flush=True)
        if len(outcomes) > 1:
            print(f"| {outcomes[0].case} | median | | | | | {statistics.median(o.rate for o in outcomes):,.0f} | |")


if __name__ == "__main__":
    main()
