"""What one wake-up costs on this machine: the floor under every latency figure of a live run.

A record's way through `run` is a sequence of wake-ups (the supervisor's loop, which reads the
live input itself, each worker and the ZeroMQ I/O threads on both ends of each channel, the
supervisor again, the reader of standard output), so the latency of bench/bench_live.py can be no
better than about fourteen of them in a row. This measures three round trips between two processes, 100-byte
messages, `--trips` each, and prints p50/p90/p99 in microseconds and the CPU time per trip:

* `pipe, same core`: both processes pinned to one core (a wake-up without an interrupt between
  cores);
* `pipe, two cores`: pinned to different cores (what two busy processes of a run pay);
* `zmq ipc PUSH/PULL`: the runtime's channel, unpinned, I/O threads included.

Usage:
    .venv/bin/python bench/wakeups.py [--trips 2000]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable

import zmq


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    n = len(ordered)
    pick = [ordered[n // 2], ordered[int(n * 0.9)], ordered[min(n - 1, int(n * 0.99))]]
    return " | ".join(f"{s * 1e6:,.0f}" for s in pick)


def _cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _measure(trips: int, setup: Callable[[], tuple[Callable[[], None], Callable[[], None]]],
             echo: Callable[[], None]) -> tuple[list[float], float]:
    """Fork an echo process, then time `trips` round trips; the child's CPU is counted once it exits."""
    start_cpu = _cpu_s()
    pid = os.fork()
    if pid == 0:
        try:
            echo()
        finally:
            os._exit(0)
    send, receive = setup()
    samples = []
    for _ in range(trips):
        t = time.perf_counter()
        send()
        receive()
        samples.append(time.perf_counter() - t)
    os.waitpid(pid, 0)
    return samples, (_cpu_s() - start_cpu) / trips


def pipe_trips(trips: int, parent_core: int, child_core: int) -> tuple[list[float], float]:
    to_child, from_parent = os.pipe()[::-1]
    from_child, to_parent = os.pipe()
    payload = b"x" * 100

    def echo() -> None:
        os.sched_setaffinity(0, {child_core})
        for _ in range(trips):
            os.write(to_parent, os.read(from_parent, 100))

    def setup() -> tuple[Callable[[], None], Callable[[], None]]:
        os.sched_setaffinity(0, {parent_core})

        def send() -> None:
            os.write(to_child, payload)

        def receive() -> None:
            os.read(from_child, 100)

        return send, receive

    everywhere = os.sched_getaffinity(0)
    try:
        return _measure(trips, setup, echo)
    finally:
        os.sched_setaffinity(0, everywhere)


def zmq_trips(trips: int) -> tuple[list[float], float]:
    with tempfile.TemporaryDirectory(prefix="vmp-wakeups-") as where:
        out_endpoint, back_endpoint = f"ipc://{where}/out", f"ipc://{where}/back"

        def echo() -> None:
            context = zmq.Context()
            pull = context.socket(zmq.PULL)
            pull.connect(out_endpoint)
            push = context.socket(zmq.PUSH)
            push.connect(back_endpoint)
            for _ in range(trips):
                push.send(pull.recv())
            push.close(linger=1000)
            pull.close()
            context.term()

        parent: list[zmq.Socket[bytes]] = []  # made after the fork: a child must not inherit a ZeroMQ context

        def setup() -> tuple[Callable[[], None], Callable[[], None]]:
            context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
            push = context.socket(zmq.PUSH)
            push.bind(out_endpoint)
            pull = context.socket(zmq.PULL)
            pull.bind(back_endpoint)
            parent.extend((push, pull))
            payload = b"x" * 100

            def send() -> None:
                push.send(payload)

            def receive() -> None:
                pull.recv()

            return send, receive

        try:
            return _measure(trips, setup, echo)
        finally:
            for socket in parent:
                socket.close(linger=0)
            zmq.Context.instance().term()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trips", type=int, default=2000)
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    rows: list[tuple[str, tuple[list[float], float]]] = [("pipe, same core", pipe_trips(args.trips, cores[0], cores[0]))]
    if len(cores) > 1:
        rows.append(("pipe, two cores", pipe_trips(args.trips, cores[0], cores[1])))
    rows.append(("zmq ipc PUSH/PULL", zmq_trips(args.trips)))
    print(f"{args.trips:,} round trips of 100 bytes, {len(cores)} cores\n")
    print("| channel | round trip p50 | p90 | p99 us | CPU us per trip |")
    print("|---|---:|---:|---:|---:|")
    for name, (samples, cpu) in rows:
        print(f"| {name} | {_percentiles(samples)} | {cpu * 1e6:,.0f} |")


if __name__ == "__main__":
    main()
