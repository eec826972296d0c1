"""What a restart changes in a running run: the run's side of supervision (runtime/supervision.py).

Owns `Restarts`, the supervisor's (runtime/run_loop.py) answer to supervision (`RunFace`), and
what a worker's life means to the metrics' watch and to the loss ledger (runtime/losses.py):

* the workers are started by the fork server when the run may restart them (a clean process
  forks them: the supervisor has threads and a ZeroMQ context by then), else by a direct fork;
* a dead worker's last messages are read before anything is decided (its last progress and
  consumption, the failure it reported);
* a replacement that is ready gets `START` (and the ends of the event types if the input has
  ended), the router's channel toward it announces its shapes again, and every context feeding it
  gets `RESEND` (shapes, progress and ends again); its subscriptions' relays start afresh;
* giving up on a context ends the input (the run drains what still runs), takes its streams as
  ended in the merger and tells the contexts reading them, then the run fails naming it.

It holds the worker set and the merger the supervisor made, and learns the run's channels (the
router, the workers' outputs, a live run's reader) once they exist (`connected`).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.live_input import LiveInput
from varpulis_mp.runtime.logs import runtime_log
from varpulis_mp.runtime.losses import LossLedger
from varpulis_mp.runtime.metrics_counters import WorkerCounters
from varpulis_mp.runtime.relay import RelayedSource
from varpulis_mp.runtime.router import Router
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.supervision import FailFast, Supervision
from varpulis_mp.runtime.transport import Receiver
from varpulis_mp.runtime.worker import WorkerSpec
from varpulis_mp.runtime.worker_meter import stream_counts
from varpulis_mp.runtime.workers import DirectFork, Spawner, WorkerHandle, WorkerSet

if TYPE_CHECKING:
    from varpulis_mp.runtime.ingress_live import LiveReader
    from varpulis_mp.runtime.merger import Merger

__all__ = ["Restarts"]

_DRAIN_MESSAGES = 10_000


class Restarts:
    def __init__(self, program: CheckedProgram, specs: list[WorkerSpec], live: LiveInput | None,
                 workers: WorkerSet, merger: Merger) -> None:
        self.program = program
        self.specs = specs
        self.live = live
        self.policy = live.restart if live is not None else None
        self.watch = live.watch if live is not None else None
        self.workers = workers
        self.merger = merger
        self.losses = LossLedger([s.name for s in specs], self._on_loss,
                                 [s.worker if s.workers > 1 else None for s in specs])
        merger.on_accounting = self.losses.account
        if self.policy is not None and self.watch is not None:
            # A dead worker's stream counts, exact from what it sent in band (`worker_exited`).
            merger.records_by = [Counter() for _ in specs]
        self.spawner: Spawner | None = None
        self.last_counters: dict[int, WorkerCounters] = {}  # each worker's last heartbeat's
        self.given_up_on: set[int] = set()
        # A live run's relays of the subscriptions, by (worker, subscription): runtime/supervisor.py.
        self.relayed: dict[tuple[int, int], RelayedSource] = {}
        # The run's channels, once connected.
        self.router: Router | None = None
        self.outputs: list[Receiver] = []
        self.live_reader: LiveReader | None = None

    def make_supervision(self) -> Supervision:
        """The supervision this run's policy asks for, answered by this object."""
        timeout = self.live.worker_timeout_s if self.live is not None else None
        return Supervision(self.policy or FailFast(), self.workers, self, worker_timeout_s=timeout,
                           restarts=self.policy is not None)

    def start_workers(self, run_dir: RunDir) -> None:
        spawner: Spawner
        if self.policy is not None:
            from varpulis_mp.runtime.forkserver import ForkServer

            spawner = ForkServer.start(self.program, self.specs, run_dir)
        else:
            spawner = DirectFork(self.program, self.specs, run_dir)
        self.spawner = self.workers.spawner = spawner
        self.workers.start_all()

    def connected(self, router: Router, outputs: list[Receiver], live_reader: LiveReader | None) -> None:
        """The run's channels exist: a restart from now on is carried out through them."""
        self.router = router
        self.outputs = outputs
        self.live_reader = live_reader

    def close_spawner(self) -> None:
        if self.spawner is not None:
            spawner, self.spawner = self.spawner, None
            spawner.close()

    # -- RunFace -------------------------------------------------------------------------------

    def drain_worker(self, index: int) -> str | None:
        if index < len(self.outputs):
            rcv = self.outputs[index]
            for _ in range(_DRAIN_MESSAGES):
                data = rcv.try_recv()
                if data is None:
                    break
                try:
                    self.merger.handle(index, data)
                except Exception:  # noqa: BLE001 - the death being handled matters more
                    break
        return self.merger.failures.get(index)

    def worker_exited(self, handle: WorkerHandle) -> None:
        """A worker died: its life's stream counts, exact from what it sent in band (its last
        heartbeat may be older), go to the metrics before they keep them."""
        index = handle.index
        records = self.merger.records_by[index] if self.merger.records_by is not None else None
        if self.watch is not None and records is not None:
            counters = self.last_counters.pop(index, None) or WorkerCounters()
            sources = {s.name: s.source for s in self.program.streams if s.name in handle.spec.streams}
            exact = stream_counts(handle.spec.streams, sources, records, self.losses.received(index))
            for name, counts in exact.items():
                before = counters.streams.get(name)
                if before is not None:
                    counts.window_flushes, counts.late = before.window_flushes, before.late
                    counts.expression_errors = before.expression_errors
            counters.streams = exact
            self.watch.apply(handle.context, handle.worker, counters)
        if records is not None:
            records.clear()
        self.losses.died(index)
        if self.watch is not None:
            self.watch.worker_exited(handle.context, handle.worker)

    def finished(self, index: int) -> bool:
        return bool(self.merger.done[index])

    def worker_ready(self, handle: WorkerHandle) -> None:
        if self.watch is not None:
            self.watch.worker_ready(handle.context, handle.worker)

    def worker_counters(self, handle: WorkerHandle, data: Any) -> None:
        """A heartbeat's counters (runtime/worker_meter.py) to whoever watches the workers."""
        if self.watch is None or data is None:
            return
        try:
            counters = WorkerCounters.from_data(data)
        except ValueError as exc:
            runtime_log.debug("context '%s': %s", handle.label, exc)
            return
        self.last_counters[handle.index] = counters
        self.watch.apply(handle.context, handle.worker, counters)

    def channels_sent(self, src: int, sent: Any) -> None:
        """A heartbeat's records sent on each channel of worker `src`: each channel's fill is what
        it carried less what its receiver last said it took (RUN.md §4)."""
        if self.watch is None or not isinstance(sent, dict):
            return
        workers = self.workers
        for dst, carried in sent.items():
            if not isinstance(dst, int) or not isinstance(carried, int) or not 0 <= dst < len(workers):
                continue  # never a crash on a malformed heartbeat
            in_flight = max(0, carried - self.losses.taken(dst, f"p{src}"))
            self.watch.set_channel(workers[src].context, workers[dst].context, in_flight, workers[dst].spec.capacity)

    def replacement_starting(self, handle: WorkerHandle, how: str, attempt: int) -> None:
        index = handle.index
        spec = handle.spec
        self.merger.restarted(index)
        channels = {f"p{src}" for srcs in spec.inputs_from.values() for src in srcs}
        if spec.event_types:
            channels.add("in")
        max_restarts = self.policy.max_restarts if self.policy is not None else 0
        # Its line also waits for what the readers it fed did not get from the dead process.
        readers = {dst for dsts in spec.outputs_to.values() for dst in dsts} if spec.prompt else set()
        self.losses.restarted(index, how, attempt, max_restarts, channels, time.monotonic(), readers - self.given_up_on)
        if self.watch is not None:
            self.watch.worker_restarted(handle.context, handle.worker)

    def replacement_ready(self, handle: WorkerHandle) -> None:
        router = self.router
        if router is None:
            return  # restarted before the run started: it gets what every worker gets
        index = handle.index
        frames: list[wire.Frame] = [(wire.START,)]
        if router.flush_origin is not None:
            frames += [(wire.EOS, t, router.flush_origin) for t in handle.spec.event_types]
        router.outbox[index].append(wire.encode(frames))
        if self.live_reader is not None:
            self.live_reader.reshape(index)
        for src in sorted({src for srcs in handle.spec.inputs_from.values() for src in srcs}):
            router.outbox[src].append(wire.encode([(wire.RESEND, index)]))
        for (worker, _sub), relay in self.relayed.items():
            if worker == index:
                relay.restarted()
        router.pump()

    def give_up(self, index: int, reason: str) -> None:
        self.given_up_on.add(index)
        router = self.router
        if router is None:
            return
        router.drop(index)
        router.end_input()
        flush_origin = router.flush_origin
        assert flush_origin is not None
        spec = self.specs[index]
        self.merger.give_up(spec.emits(), flush_origin, index)
        self.merger.done[index] = True
        for other in self.specs:
            # The sender's index goes with each end: a reader of a pool counts the ends per worker.
            ended: list[wire.Frame] = [(wire.EOS, name, flush_origin, index)
                                       for name, srcs in other.inputs_from.items() if index in srcs]
            if ended and other.index not in self.given_up_on:
                router.outbox[other.index].append(wire.encode(ended))
        router.pump()

    def _on_loss(self, context: str, worker: int, stream: str, records: int) -> None:
        if self.watch is not None:
            self.watch.add_lost(context, worker, stream, records)
