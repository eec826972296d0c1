"""A worker whose every stream ends before it reads START (its upstream context's records and end
came first) still opens its channels toward the contexts reading it when START comes, during its
drain: otherwise what it holds for them never leaves and the run waits for them forever (a
`simulate` through three contexts hung about once in a hundred runs on a busy machine).

The middle worker of a three-context chain runs on real ZeroMQ sockets in a private run directory;
this test plays the supervisor (START and STOP on its ingress, its merger channel read) and the
reading context (the channel toward it bound here)."""

from __future__ import annotations

import os
import threading
from typing import Any

import zmq

from varpulis_mp.engine.dataflow import Dataflow
from varpulis_mp.lang.frontend import load_program
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.transport import Outbox, Transport
from varpulis_mp.runtime.worker import MERGER, WorkerSpec, _Worker

CHAIN = """\
context a
context b
context c
stream A = T.context(a).emit(context: b, v: v)
stream B = A.context(b).emit(context: c, v: v)
stream C = B.context(c).emit(v: v)
"""
FIRST, MIDDLE, LAST = 0, 1, 2


def _frames_received(sock: zmq.Socket[bytes], timeout_ms: int) -> list[list[Any]]:
    frames: list[list[Any]] = []
    while sock.poll(timeout_ms):
        frames += wire.decode(sock.recv())
        timeout_ms = 200  # what follows comes soon after the first message
    return frames


def test_a_worker_that_ended_before_start_sends_to_its_readers_once_start_comes() -> None:
    program = load_program(CHAIN, "chain.vpl")
    spec = WorkerSpec(MIDDLE, "b", None, ["B"], [], {"A": [FIRST]}, {"B": [LAST]})
    run_dir = RunDir()
    test_side: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    transport = Transport(spec.capacity)
    try:
        worker = _Worker(program, spec, run_dir, os.getppid())  # the drain watches for its parent going away
        control = test_side.socket(zmq.PULL)
        control.bind(run_dir.control())
        worker.reports.ctl = transport.sender(run_dir.control(), bind=False, hwm=16)
        worker.reports.ready = True
        ingress = transport.receiver(run_dir.ingress(MIDDLE), bind=True)
        out = transport.sender(run_dir.output(MIDDLE), bind=True)
        worker.outgoing.dests[MERGER] = Outbox(out, worker.outgoing.batch, on_seal=worker.reports.report)
        worker.outgoing.dests[LAST] = Outbox(None, worker.outgoing.batch)  # opened on START, as in the worker's run
        worker.outgoing.flow = Dataflow(program, worker.outgoing.emitted.append, hosted=spec.streams)
        worker.outgoing.sessions = False
        reader = test_side.socket(zmq.PULL)  # the context reading B
        reader.bind(run_dir.peer(LAST, MIDDLE))
        merger = test_side.socket(zmq.PULL)
        merger.connect(run_dir.output(MIDDLE))

        # The upstream context's records and its end, read before START.
        worker.frames.handle([[wire.SHAPE, 0, ["v"]], [wire.RECORDS, "A", 0, [1, 2], [1, 2], [[10], [20]]],
                        [wire.EOS, "A", 2]], wire.ShapeDecoder(), transport, f"p{FIRST}")
        assert worker.outgoing.ended == {"B"} and worker.outgoing.dests[LAST].sender is None

        supervisor = test_side.socket(zmq.PUSH)
        supervisor.connect(run_dir.ingress(MIDDLE))
        supervisor.send(wire.encode([(wire.START,)]))
        drain = threading.Thread(target=worker.loop.drain, args=(ingress, transport), daemon=True)
        drain.start()

        got = _frames_received(reader, 10_000)
        records = [f for f in got if f[0] == wire.RECORDS]
        assert [values for f in records for values in f[5]] == [[10], [20]], got
        assert [wire.EOS, "B", 2] in got, got
        assert any(f[0] == wire.EOS for f in _frames_received(merger, 10_000))

        supervisor.send(wire.encode([(wire.STOP,)]))
        drain.join(10)
        assert not drain.is_alive(), "the drain did not end after STOP"
    finally:
        transport.close(0)
        test_side.destroy(linger=0)
        run_dir.remove()
