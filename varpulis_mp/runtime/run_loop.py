"""The supervisor's run: its lifecycle and its one loop (DESIGN.md §2-§4).

Owns `Supervisor`: it creates the private run directory, starts one worker per context (through
a `Spawner`, runtime/workers.py), waits until every worker is ready, then stays in one loop that
never blocks in a send: it feeds input to the workers (stopping while a channel is full), merges
their outputs into canonical order, hears the control channel (ready, heartbeats, boot failures),
lets `Supervision` (runtime/supervision.py) deal with deaths, and dispatches signals by name.

* End of input, or a first SIGTERM/SIGINT: ingress stops and every event type gets its `EOS`; the
  streams flush in topological order as the ends travel; the run returns once every worker has
  sent its counters and exited 0.
* A second signal: the workers that have not finished get SIGTERM, then SIGKILL; RuntimeFailure
  names the first context that did not finish.
* A worker that dies: what the policy says (runtime/supervision.py); without restarts the run
  fails naming its context and exit status, and the others are killed.
* A bad event line (found by the router or by a worker): the origins before it are released, then
  EventFileError; no end-of-input flush.

In every case every worker is reaped and the run directory removed before returning.

The supervisor holds one part per responsibility, each composed, none inherited: the worker set
(runtime/workers.py), the merger (runtime/merger.py), `Restarts` (runtime/restarts.py: how the
workers start, what a death or a replacement changes in the running run, the loss ledger),
`Supervision` (runtime/supervision.py: what a death means, answered by the `Restarts`) and
`Stopping` (runtime/stopping.py: the signals, the drain and its deadline, the stop of the workers).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.engine.plan import Plan
from varpulis_mp.errors import EventFileError, RuntimeFailure
from varpulis_mp.io.readers import EventParser
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.ingress import InputReader, SourceThread
from varpulis_mp.runtime.ingress_blocks import BlockReader
from varpulis_mp.runtime.key_routes import KeyRoutes
from varpulis_mp.runtime.live_input import Gathered, LiveInput
from varpulis_mp.runtime.merger import ENDED, Merger
from varpulis_mp.runtime.notify import Notifier
from varpulis_mp.runtime.restarts import Restarts
from varpulis_mp.runtime.router import Router
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.stopping import POLL_S, Stopping
from varpulis_mp.runtime.supervision import RunStopped, WorkerStartFailure
from varpulis_mp.runtime.transport import (
    Receiver,
    Transport,
    batch_size_for,
    block_lines_for,
    ingress_hwm_for,
    wait,
)
from varpulis_mp.runtime.worker import WorkerSpec
from varpulis_mp.runtime.workers import WorkerSet, WorkerState

if TYPE_CHECKING:
    from varpulis_mp.runtime.ingress_live import LiveReader

__all__ = ["Supervisor"]

READY_TIMEOUT_S = 60.0


class Supervisor:
    def __init__(self, program: CheckedProgram, plan: Plan, specs: list[WorkerSpec],
                 source: str | os.PathLike[str] | IO[bytes], display_path: str,
                 on_origin_complete: Callable[[list[Output]], None],
                 on_input_event: Callable[[int, int, str], None] | None, capacity: int,
                 skip_empty: bool, on_lines: Callable[[list[str]], None] | None = None,
                 live: LiveInput | None = None, gathered: Gathered | None = None) -> None:
        self.program = program
        self.specs = specs
        self.live = live
        self.gathered = gathered
        self.plan = plan
        self.source = source
        self.display_path = display_path
        self.on_input_event = on_input_event
        self.capacity = capacity
        self.reader: SourceThread | None = None
        self.blocks = any(spec.block_ingress for spec in specs)
        emitters: dict[str, list[int]] = {}
        for spec in specs:
            for name in spec.emits():
                emitters.setdefault(name, []).append(spec.index)
        self.merger = Merger([s.name for s in program.streams], len(specs), plan.cross_fanout,
                             on_origin_complete, skip_empty, on_lines,
                             pools={name: ws for name, ws in emitters.items() if len(ws) > 1})
        self.workers = WorkerSet(specs)  # started once the run directory exists
        self.restarts = Restarts(program, specs, live, self.workers, self.merger)
        self.losses = self.restarts.losses
        self.supervision = self.restarts.make_supervision()
        self.notifier = live.notifier if live is not None else Notifier()
        self.stopping = Stopping(live, self.notifier, self.workers, self.merger, self.supervision,
                                 self.restarts.given_up_on)
        self.run_dir: RunDir | None = None
        self.transport: Transport | None = None
        self.router: Router | None = None
        self.outputs: list[Receiver] = []
        self.control: Receiver | None = None
        # worker -> event type -> the key field it reads the type by, as it said when ready
        self.key_fields: dict[int, dict[str, str]] = {}
        self.live_reader: LiveReader | None = None  # a live run's: the loop reads the feed through it

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> Summary:
        try:
            # The handlers first, and kept until the cleanup is done: a signal at any moment of
            # the run is the supervisor's to handle, never a default death that leaves things behind.
            self.stopping.signals.install()
            self.run_dir = RunDir()
            self.restarts.start_workers(self.run_dir)
            self.transport = Transport(self.capacity)
            self.control = self.transport.receiver(self.run_dir.control(), bind=True, hwm=1000)
            self._await_ready()
            self._connect()
            self._loop()
            self.stopping.stop_workers()
            self.stopping.await_exits()
            self.hear_control()  # the workers' last heartbeats: their final counters
            if self.supervision.given_up:
                raise RuntimeFailure(self.supervision.given_up[0])
            return self.summary()
        except RunStopped as exc:
            exc.summary = self.summary()
            raise
        finally:
            try:
                self._cleanup()
            finally:
                self.stopping.signals.restore()

    def summary(self) -> Summary:
        # With block ingress the workers count the events (origins are line numbers).
        router = self.router
        return Summary(
            events_processed=self.merger.events if self.blocks else router.events if router else 0,
            unread_events=self.merger.unread if self.blocks else router.unread if router else 0,
            rejected_events=self.live.feed.log.total if self.live else 0,
            contexts_used=self.plan.contexts_used,
            cross_context_events=self.merger.cross,
            counters=self.merger.counters,
            interrupted_by=self.stopping.interrupted_by,
            dead_letters=self.merger.dead_letters,
            lost_in_restarts=self.losses.total,
        )

    def _await_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(w.state in (WorkerState.READY, WorkerState.DRAINING) for w in self.workers.handles):
            self.stopping.tick_service()
            self.supervision.check(time.monotonic())
            self.stopping.signals.dispatch(self.stopping)
            if time.monotonic() > deadline:
                name = next(w.label for w in self.workers.handles if w.state is WorkerState.STARTING)
                raise WorkerStartFailure(f"context '{name}' worker did not become ready")
            assert self.control is not None
            if wait([self.control], [], [], POLL_S)[0]:
                self.hear_control()
        self.notifier.ready()

    def hear_control(self) -> None:
        """READY, heartbeats and boot failures from the control socket."""
        assert self.control is not None
        now = time.monotonic()
        while (data := self.control.try_recv()) is not None:
            for frame in wire.decode(data):
                kind = frame[0]
                if kind == wire.HEARTBEAT or kind == wire.READY:
                    handle = self.workers[frame[1]]
                    if handle.pid != frame[2] or not handle.alive:
                        continue  # a dead predecessor's late word
                    if kind == wire.READY:
                        self.supervision.ready(handle, now)
                        self.key_fields[handle.index] = dict(frame[3])
                    else:
                        self.supervision.heartbeat(handle, now, draining=bool(frame[4]))
                        self.restarts.worker_counters(handle, frame[3])
                        if len(frame) > 5:
                            self.restarts.channels_sent(handle.index, frame[5])
                elif kind == wire.FAIL:
                    # Exit codes mean something: a worker that cannot start stops the run.
                    name = self.workers[frame[2]].label
                    raise WorkerStartFailure(f"context '{name}' worker failed to start: {frame[1]}")

    def _connect(self) -> None:
        assert self.transport is not None and self.run_dir is not None
        t = self.transport
        ingress_hwm = ingress_hwm_for(self.capacity)
        senders = [t.sender(self.run_dir.ingress(spec.index), bind=False, hwm=ingress_hwm) for spec in self.specs]
        self.outputs = [t.receiver(self.run_dir.output(spec.index), bind=False) for spec in self.specs]
        types = [spec.event_types for spec in self.specs]
        self.router = Router(types, senders, self.on_input_event)
        self.router.start()
        batch = batch_size_for(self.capacity)
        if self.live is not None:
            self.reader = self.live_reader = _start_live(self.live, self.program, types, batch)
        elif self.blocks:
            pools: dict[str, list[int]] = {}
            for spec in sorted(self.specs, key=lambda s: s.worker):  # worker 0 first
                if spec.workers > 1:
                    pools.setdefault(spec.name, []).append(spec.index)
            parser = EventParser(self.display_path, [s.name for s in self.program.streams])
            routes = KeyRoutes.plan(types, list(pools.values()), self.key_fields, parser)
            self.reader = BlockReader(self.source, self.display_path, types, block_lines_for(self.capacity), routes)
        else:
            self.reader = InputReader(self.source, self.display_path, [s.name for s in self.program.streams],
                                      types, batch, want_events=self.on_input_event is not None)
        self.router.attach(self.reader)
        self.restarts.connected(self.router, self.outputs, self.live_reader)
        self.stopping.router = self.router

    def _loop(self) -> None:
        router = self.router
        reader = self.reader
        assert router is not None and reader is not None and self.control is not None
        merger = self.merger
        outputs = self.outputs
        stopping = self.stopping
        if stopping.draining:
            router.end_input()
        readable = set(range(len(outputs)))  # what the last wait found readable (at first: try all)
        receivers = [*outputs, self.control]
        control = len(outputs)
        while True:
            now = time.monotonic()
            stopping.tick_service()
            stopping.signals.dispatch(stopping)
            stopping.check_drain_deadline()
            self.supervision.check(now)
            self.losses.tick(now)
            if control in readable:
                self.hear_control()
            for i, rcv in enumerate(outputs):
                if i not in readable:
                    continue
                for _ in range(64):
                    data = rcv.try_recv()
                    if data is None:
                        break
                    merger.handle(i, data)
            if not self.supervision.restarts:
                self._check_failures()
            with stopping.writing_output():
                self._release()
            if router.flush_origin is not None and merger.all_ended() and all(merger.done) \
                    and not self.supervision.pending():
                return
            router.pump()
            if router.reading:
                router.feed()
                if router.ended:
                    self.notifier.stopping()  # the end of the input starts the drain (sent once)
            fds, timeout = self._input_waits()
            busy = router.busy()
            readable, room, _ = wait(receivers, [router.senders[w] for w in busy], fds, timeout)
            router.writable([busy[k] for k in room])

    def _input_waits(self) -> tuple[list[int], float]:
        """What the loop waits on for the input, and for how long at most: a live run's loop reads
        the feed itself (runtime/ingress_live.py), another run's input thread wakes it by a pipe."""
        router = self.router
        assert router is not None and self.reader is not None
        if not (router.reading and router.idle()):
            return [], POLL_S
        if self.live_reader is not None:
            return self.live_reader.waits(POLL_S)
        return [self.reader.wake.fd], POLL_S

    def _release(self) -> None:
        merger = self.merger
        router = self.router
        assert router is not None
        limit = merger.complete()
        if limit >= ENDED:
            limit = router.flush_origin if router.flush_origin is not None else router.origin
        else:
            limit = min(limit, router.origin)
        error = self._first_error()
        if error is not None:
            origin, exc = error
            router.stop_reading()  # nothing after a bad line is processed
            if merger.complete() >= origin - 1:
                merger.release(origin - 1)
                if self.gathered is not None:
                    self.gathered.hand_over()
                raise exc
            limit = min(limit, origin - 1)
        if limit > merger.released:
            merger.release(limit)
            if self.gathered is not None:
                self.gathered.hand_over()
            if self.live is not None:
                self.live.feed.released(merger.released)

    def _first_error(self) -> tuple[int, EventFileError] | None:
        found: list[tuple[int, EventFileError]] = []
        bad_line = self.router.input_error if self.router is not None else None
        if bad_line is not None:
            found.append((bad_line.origin, bad_line.error))
        worker_error = self.merger.first_error()
        if worker_error is not None:
            found.append((worker_error[0], EventFileError([worker_error[1]])))
        return min(found, key=lambda e: e[0]) if found else None

    def _check_failures(self) -> None:
        for i, message in self.merger.failures.items():
            raise RuntimeFailure(f"context '{self.workers[i].label}' worker failed: {message}")

    def _cleanup(self) -> None:
        """Whatever happened: no worker left running or unreaped, no socket, no run directory."""
        try:
            if self.reader is not None:
                self.reader.stop()
            # Workers ignore SIGTERM (runtime/child.py): whatever is left is killed at once.
            self.workers.terminate(self.workers.alive(), grace_s=0.0)
            self.losses.flush()
            self.restarts.close_spawner()
            if self.transport is not None:
                transport, self.transport = self.transport, None
                transport.close(0)
        finally:
            try:
                if self.reader is not None:
                    self.reader.join(timeout=1.0)
                    if not self.reader.is_alive():
                        self.reader.close()  # else it is blocked reading a live source: leave its pipe
                if self.live is not None:
                    self.live.feed.close()
            finally:
                if self.run_dir is not None:
                    self.run_dir.remove()


def _start_live(live: LiveInput, program: CheckedProgram, types: list[list[str]], batch: int) -> LiveReader:
    """A live run's input, once the workers started (no worker inherits a client's thread or
    connection): the connectors' clients, the live feed, and the reader that routes what it takes."""
    from varpulis_mp.runtime.ingress_live import live_reader
    from varpulis_mp.runtime.live import session_gaps_ms, session_tick_s

    tick_s = session_tick_s(session_gaps_ms(program))
    if live.on_start is not None:
        live.on_start()
    live.feed.start()
    return live_reader(live.feed, types, batch, tick_s)
