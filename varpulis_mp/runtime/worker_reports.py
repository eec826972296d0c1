"""What a worker tells its supervisor: READY, heartbeats, FAIL, and its accounting in band.

Owns `WorkerReports`, the part of a worker (runtime/worker.py) that speaks to the supervisor
(RUN.md §6): on the control socket READY, a heartbeat at least every `HEARTBEAT_S` (with a live
run's counters for the metrics, what each numbered channel toward a context has carried, and
whether the worker is draining), and FAIL for a worker that fails before it is ready; in band,
toward the merger, a later failure, the final counters (`STATS`), and with each message what was
taken of each input channel and sent on each channel toward a reader for the outputs it carries
(`CONSUMED`, `SENT`: the loss accounting of runtime/losses.py).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from varpulis_mp.runtime import wire
from varpulis_mp.runtime.transport import Outbox, Sender
from varpulis_mp.runtime.worker_input import WorkerInput
from varpulis_mp.runtime.worker_output import MERGER, WorkerOutput

if TYPE_CHECKING:
    from varpulis_mp.runtime.worker import WorkerSpec

__all__ = ["HEARTBEAT_S", "WorkerReports"]

HEARTBEAT_S = 0.25  # at most this long between heartbeats while the loop turns (RUN.md §6: 1 s)


class WorkerReports:
    ctl: Sender  # the control socket, opened first thing in the worker's run

    def __init__(self, spec: WorkerSpec, incoming: WorkerInput, outgoing: WorkerOutput) -> None:
        self.spec = spec
        self.incoming = incoming
        self.outgoing = outgoing
        self.ready = False  # READY was said: from then on a failure is said in band
        self.draining = False  # every hosted stream has ended (said with each heartbeat)
        self.last_heartbeat = 0.0
        self.connectors: dict[str, object] = {}  # connector name -> its partition here

    def say_ready(self, key_fields: dict[str, str]) -> None:
        """READY, with the key field of each event type this worker reads by key alone (wire.py)."""
        if not self.ctl.try_send(wire.encode([(wire.READY, self.spec.index, os.getpid(), key_fields)])):
            raise RuntimeError("cannot report ready")
        self.last_heartbeat = time.monotonic()
        self.ready = True

    def fail(self, exc: BaseException) -> None:
        """Say why, where the supervisor listens: on the control socket before ready, else in band."""
        message = wire.encode([(wire.FAIL, f"{type(exc).__name__}: {exc}", self.spec.index)])
        merger = self.outgoing.dests.get(MERGER)
        if not self.ready:
            self.ctl.try_send(message)
        elif merger is not None and merger.sender is not None:
            merger.sender.try_send(message)

    def next_heartbeat(self) -> float:
        """Seconds until the next heartbeat is due (an idle worker wakes for it)."""
        return self.last_heartbeat + HEARTBEAT_S - time.monotonic()

    def heartbeat(self) -> None:
        now = time.monotonic()
        if now - self.last_heartbeat >= HEARTBEAT_S:
            self.last_heartbeat = now
            out = self.outgoing
            meter = out.meter
            received = self.incoming.received
            counters = meter.counters(received, out.flow.stream_counters, self.connectors) if meter else None
            # What each numbered channel toward a context has carried: with what the receiver says
            # it took, the supervisor knows how full the channel is (the metrics' utilization).
            sent = {dst: sum(box.sent.values()) for dst, box in out.dests.items() if box.numbered}
            self.ctl.try_send(wire.encode([(wire.HEARTBEAT, self.spec.index, os.getpid(), counters, self.draining,
                                            sent)]))

    def heartbeat_now(self) -> None:
        self.last_heartbeat = 0.0
        self.heartbeat()

    def stats(self, dead_letters: int) -> None:
        """Every hosted stream has ended: the final counters, toward the merger."""
        c = self.outgoing.flow.counters
        taker = self.incoming.taker
        self.outgoing.dests[MERGER].add((wire.STATS, c.expression_errors, c.late_events, c.sessions_closed,
                                         taker.events if taker else 0, taker.unread if taker else 0,
                                         dead_letters))

    def report(self, merger: Outbox) -> None:
        """What each message toward the merger says last: what was taken and sent for its outputs."""
        self.incoming.report_taken(merger)
        self.outgoing.report_sent(merger)
