"""One cross-context channel, alone: records per second from a producer process to a consumer.

A forked producer pushes N records of four fields through what a worker uses for records bound for
another context (`transport.Outbox.add_record`: column-wise `RECORDS` frames per stream and shape,
sealed every `batch` records, msgpack by `wire.encode`), over a real PUSH/PULL channel on an
`ipc://` endpoint in a temporary directory, with the bounds of `--channel-capacity`. The consumer
decodes every message and rebuilds every record as a dict, as a worker does before pushing it.
Throughput is N / (consumer's end - producer's start), both on the system-wide monotonic clock.

`--layout flat` sends the previous layout instead (one flat array per batch: shape id, time,
origin, values, ... for every record) for comparison.

    .venv/bin/python bench/channel.py                       # 1,000,000 records, capacity 1000
    .venv/bin/python bench/channel.py --records 300000 --capacity 10000 --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback
from typing import Any

from varpulis_mp.runtime import wire
from varpulis_mp.runtime.transport import Outbox, Transport, batch_size_for, wait


def _records(n: int) -> list[dict[str, Any]]:
    zones = [f"zone{i}" for i in range(8)]
    sensors = [f"S{i}" for i in range(100)]
    return [{"sensor_id": sensors[i % 100], "temperature": 20.0 + (i % 700) / 10.0, "value": float(i % 1000),
             "zone": zones[i % 8]} for i in range(n)]


def _produce(endpoint: str, n: int, capacity: int, layout: str, done: int) -> None:
    records = _records(n)
    transport = Transport(capacity)
    sender = transport.sender(endpoint, bind=False)
    box = Outbox(sender, batch_size_for(capacity))
    start = time.monotonic()
    if layout == "columns":
        add = box.add_record
        for i, fields in enumerate(records):
            add("Stage1", i, i + 1, fields)
            if box.outbox:
                box.pump()
                while box.outbox:
                    wait([], [sender], [], 1.0)
                    box.pump()
    else:
        batch = batch_size_for(capacity)
        flat: list[Any] = []
        count = 0
        for i, fields in enumerate(records):
            sid = box.shapes.shape_id(tuple(fields), box.frames)
            flat.extend((sid, i, i + 1, list(fields.values())))
            count += 1
            if count >= batch:
                box.frames.append((wire.RECORDS, "Stage1", flat))
                box.seal()
                flat, count = [], 0
                while box.outbox:
                    box.pump()
                    if box.outbox:
                        wait([], [sender], [], 1.0)
        if flat:
            box.frames.append((wire.RECORDS, "Stage1", flat))
    box.add((wire.EOS, "Stage1", start))
    box.seal()
    while box.outbox:
        box.pump()
        if box.outbox:
            wait([], [sender], [], 1.0)
    # A ZeroMQ socket closed while its peer still reads can lose what is in flight: close only once
    # the consumer says it has everything (the runtime's STOP barrier, in small).
    os.read(done, 1)
    transport.close(None)


def _consume(endpoint: str, capacity: int, layout: str, producer: int) -> tuple[int, float, float]:
    transport = Transport(capacity)
    receiver = transport.receiver(endpoint, bind=True)
    dec = wire.ShapeDecoder()
    got = 0
    check = 0.0
    names = dec.names
    try:
        while True:
            data = receiver.try_recv()
            if data is None:
                ready, _, _ = wait([receiver], [], [], 1.0)
                if not ready:
                    pid, status = os.waitpid(producer, os.WNOHANG)
                    if pid:
                        raise SystemExit(f"the producer ended early (status {status}) after {got} records")
                continue
            for frame in wire.decode(data):
                kind = frame[0]
                if kind == wire.RECORDS:
                    if layout == "columns":
                        _, _, sid, times, origins, rows = frame
                        keys = names[sid]
                        for row in rows:
                            fields = dict(zip(keys, row, strict=False))
                            got += 1
                        check += fields["value"]
                    else:
                        it = iter(frame[2])
                        for sid, _ts, _origin, values in zip(it, it, it, it, strict=True):
                            fields = dict(zip(names[sid], values, strict=False))
                            got += 1
                        check += fields["value"]
                elif kind == wire.SHAPE:
                    dec.learn(frame)
                elif kind == wire.EOS:
                    return got, frame[2], time.monotonic()
    finally:
        transport.close(0)


def run_once(n: int, capacity: int, layout: str) -> float:
    with tempfile.TemporaryDirectory(prefix="vmp-chan-") as tmp:
        endpoint = f"ipc://{tmp}/c"
        sys.stdout.flush()
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the producer: no ZeroMQ context exists before this fork
            code = 1
            try:
                _produce(endpoint, n, capacity, layout, done_r)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        got, start, end = _consume(endpoint, capacity, layout, pid)
        os.write(done_w, b"x")
        os.close(done_w)
        os.close(done_r)
        _, status = os.waitpid(pid, 0)
        if status != 0 or got != n:
            raise SystemExit(f"producer status {status}, {got} of {n} records")
        return n / (end - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--capacity", type=int, default=1000, help="channel capacity in events (batch = min(512, it))")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--layout", choices=["columns", "flat"], default="columns")
    args = ap.parse_args()
    rates = []
    for r in range(args.runs):
        rate = run_once(args.records, args.capacity, args.layout)
        rates.append(rate)
        print(f"run {r + 1}: {rate:,.0f} records/s", flush=True)
    print(f"{args.layout}, {args.records:,} records of 4 fields, capacity {args.capacity}, batch "
          f"{batch_size_for(args.capacity)}: median {statistics.median(rates):,.0f} records/s")


if __name__ == "__main__":
    main()
