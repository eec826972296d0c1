"""A worker's one loop and its drain: what it reads when, and when what it made goes out.

Owns `WorkerLoop`, the turning part of a worker (runtime/worker.py). Each turn heartbeats, waits
for its inputs, the channels it has something for and its subscriptions' brokers, reads a bounded
number of messages per input (each handled by runtime/worker_frames.py), seals what the turn made
(runtime/worker_output.py) and sends what the channels take. It ends once every hosted stream has
ended; the drain then sends the final counters and holds the sockets open until `STOP`.

Backpressure: while any outgoing channel is full the loop stops reading the ingress and the
channels of upstream contexts outside its own cycle of contexts, and its subscriptions, so a slow
consumer stops the router. Channels from contexts in the same cycle keep being read (two contexts
waiting for each other would otherwise wait forever; what they buffer is bounded by what entered
the cycle before it filled). It heartbeats also while it waits on a full channel, and stops with
an error once the supervisor has gone away.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from varpulis_mp.runtime import wire
from varpulis_mp.runtime.relay import WorkerSubscriptions
from varpulis_mp.runtime.transport import Receiver, Transport, wait
from varpulis_mp.runtime.worker_frames import WorkerFrames
from varpulis_mp.runtime.worker_output import FLUSH_S, MERGER, WorkerOutput
from varpulis_mp.runtime.worker_reports import HEARTBEAT_S, WorkerReports

if TYPE_CHECKING:
    from varpulis_mp.runtime.worker import WorkerSpec

__all__ = ["INGRESS", "WorkerLoop"]

INGRESS = "in"  # the channel key of the router's input (an upstream worker's: p<index>)


class WorkerLoop:
    def __init__(self, spec: WorkerSpec, parent: int, frames: WorkerFrames, outgoing: WorkerOutput,
                 reports: WorkerReports, subs: WorkerSubscriptions) -> None:
        self.spec = spec
        self.parent = parent  # the supervisor's pid: another parent means it went away
        self.frames = frames
        self.outgoing = outgoing
        self.reports = reports
        self.subs = subs

    def run(self, transport: Transport, ingress: Receiver, peers: dict[int, Receiver]) -> None:
        """Turn until every hosted stream has ended."""
        decoders: dict[int, wire.ShapeDecoder] = {src: wire.ShapeDecoder() for src in peers}
        ingress_dec = wire.ShapeDecoder()
        cycle = self.spec.cycle_peers
        out = self.outgoing
        frames = self.frames
        handle = frames.handle
        reports = self.reports
        dests = list(out.dests.values())
        merger = out.dests[MERGER]
        while len(out.ended) < len(self.spec.streams):
            reports.heartbeat()
            started = frames.started
            blocked = any(d.outbox for d in dests)
            readers: list[Receiver] = []
            owners: list[int | None] = []
            if not blocked or not started:
                readers.append(ingress)
                owners.append(None)
            for src, rcv in peers.items():
                if not blocked or src in cycle:
                    readers.append(rcv)
                    owners.append(src)
            writers = [d for d in dests if d.outbox and d.sender is not None]
            # An idle worker wakes for its next heartbeat: the counters are never older than that.
            timeout = FLUSH_S if merger.frames else min(HEARTBEAT_S, max(0.0, reports.next_heartbeat()))
            subs = self.subs
            fds: list[int] = []
            if subs and started and not blocked:  # a full channel holds the brokers back too
                fds = subs.fds()
                timeout = subs.timeout(timeout)
            ready_r, _, ready_fds = wait(readers, [d.sender for d in writers if d.sender is not None], fds, timeout)
            if fds or (subs and started and not blocked):
                subs.take(ready_fds, merger.add)
            if not ready_r and not writers and os.getppid() != self.parent:
                raise RuntimeError("the supervisor went away")
            drained = not blocked  # every input read to its end this turn
            for pos in ready_r:
                owner = owners[pos]
                rcv = readers[pos]
                # A bounded number per turn, so the outgoing side gets its turn under load.
                for _ in range(8):
                    data = rcv.try_recv()
                    if data is None:
                        break
                    if owner is None:
                        handle(wire.decode(data), ingress_dec, transport, INGRESS)
                    else:
                        handle(wire.decode(data), decoders[owner], transport, f"p{owner}")
                    if owner is None and frames.started and any(d.outbox for d in dests):
                        drained = False
                        break
                else:
                    drained = False
            # One message per turn and channel: what the turn's input messages gave, together; toward
            # the merger, one per batch or per FLUSH_S (in a live run, also whenever nothing more waits).
            if drained and self.spec.prompt:
                out.seal_all()
            else:
                out.seal_turn()
            out.pump()

    def drain(self, ingress: Receiver, transport: Transport) -> None:
        """Every hosted stream has ended: send the counters, then hold the sockets open until the
        supervisor says every worker has finished (so nothing queued here can still be lost)."""
        out = self.outgoing
        reports = self.reports
        # Draining: the sinks' close may wait on a broker for a while, which is not a hang.
        reports.draining = True
        reports.heartbeat_now()
        reports.stats(out.close_sinks())
        out.seal_all()
        merger = out.dests[MERGER]
        dests = list(out.dests.values())
        stopped = False
        reports.heartbeat_now()  # the final counters go now
        while True:
            reports.heartbeat()
            out.pump()
            pending = [d.sender for d in dests if d.outbox and d.sender is not None]
            # STOP means every worker finished, so every live peer has what it was sent: a channel
            # still full can only lead to a process the run gave up on, and must not hold the exit.
            if stopped and not merger.outbox:
                return
            ready, _, _ = wait([ingress], pending, [], HEARTBEAT_S)
            if ready:
                while (data := ingress.try_recv()) is not None:
                    stopped = self.frames.handle_drained(wire.decode(data), transport) or stopped
            if stopped:
                self.subs.close()  # after the acknowledgements: a broker's DISCONNECT comes last
            if os.getppid() != self.parent:
                raise RuntimeError("the supervisor went away")
