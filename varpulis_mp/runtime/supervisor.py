"""The multiprocess driver: one forked worker per context, the ingress router and the output merger.

Owns a run's lifecycle (DESIGN.md §2-§4). The supervisor builds the plan, creates the private run
directory, forks one worker per context that holds streams (before any ZeroMQ context exists),
waits until every worker is ready, then stays in one loop that never blocks in a send: it feeds
input lines to the workers (stopping while a channel is full), merges their outputs into canonical
order, watches the workers and handles signals. Signal handlers only enqueue; the loop dispatches.

* End of input, or a first SIGTERM/SIGINT: ingress stops and every event type gets its `EOS`; the
  streams flush in topological order as the ends travel; the run returns once every worker has
  sent its counters and exited 0.
* A second signal: the workers that have not finished get SIGTERM, then SIGKILL; RuntimeFailure
  names the first context that did not finish.
* A worker that dies: RuntimeFailure naming its context and exit status; the others are killed.
* A bad event line (found by the router or by a worker): the origins before it are released, then
  EventFileError; no end-of-input flush.

In every case every worker is reaped and the run directory removed before returning.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.engine.plan import Plan, build_plan
from varpulis_mp.errors import EventFileError, RuntimeFailure
from varpulis_mp.io.ports import Sink
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime import affinity, wire
from varpulis_mp.runtime.ingress import InputReader, SourceThread
from varpulis_mp.runtime.ingress_blocks import BlockReader
from varpulis_mp.runtime.live_feed import FeedSource, LiveFeed
from varpulis_mp.runtime.merger import ENDED, Merger
from varpulis_mp.runtime.notify import Notifier, StatusLine
from varpulis_mp.runtime.relay import RelayedSource
from varpulis_mp.runtime.router import Router
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.transport import Receiver, Transport, batch_size_for, block_lines_for, wait
from varpulis_mp.runtime.worker import WorkerSpec, worker_main

__all__ = ["LiveInput", "run_processes", "worker_specs"]

READY_TIMEOUT_S = 60.0
EXIT_GRACE_S = 5.0  # how long a worker that exited 0 may take to deliver its last message
TERM_GRACE_S = 1.0
POLL_S = 0.05


@dataclass
class LiveInput:
    """A live run's input (`run`): the events of `feed` as they arrive (the default input and the
    subscriptions; bad input reported, counted and skipped), wall-clock times and session closing
    (runtime/ingress_live.py).

    `on_origin(outputs, flush)` replaces `on_origin_complete`: `flush` is true for the outputs of the
    end-of-input flush. With `on_lines` the records are wanted as JSON Lines only (`run --output
    jsonl` or `none`): the workers write them, and `on_lines` gets them in canonical order, each
    release of the merger in one call, instead of `on_origin`.
    """

    feed: LiveFeed
    on_origin: Callable[[list[Output], bool], None]
    on_start: Callable[[], None] | None = None  # called once the workers are forked (clients start there)
    drain_timeout_s: float | None = None  # how long a drain may take once a signal asked for it
    sinks: dict[str, list[Sink]] = field(default_factory=dict)  # stream -> its `.to`s, run by its worker
    # context -> the subscriptions its worker runs (RUN.md §1.2), relayed to `feed` (runtime/relay.py)
    subscriptions: dict[str, list[FeedSource]] = field(default_factory=dict)
    on_lines: Callable[[list[str]], None] | None = None
    notifier: Notifier = field(default_factory=Notifier)  # systemd's (runtime/notify.py); none by default


def run_processes(program: CheckedProgram, events_source: str | os.PathLike[str] | IO[bytes],
                  display_path: str, on_origin_complete: Callable[[list[Output]], None], *,
                  channel_capacity: int = 1000, pin: bool = True, unpinned: set[str] | None = None,
                  on_input_event: Callable[[int, int, str], None] | None = None,
                  skip_empty: bool = False, on_lines: Callable[[list[str]], None] | None = None,
                  on_outputs: Callable[[list[Output], bool], None] | None = None,
                  live: LiveInput | None = None) -> Summary:
    """Run `program` over the event source with one worker process per context.

    `on_origin_complete` gets each origin's Outputs in canonical order, origins increasing (empty
    lists included unless `skip_empty`), then the end-of-input flush (origin N+1). `on_input_event(origin, ts, type)`
    is called as each event is read, before it is forwarded. Contexts named in `unpinned`, and all
    of them when `pin` is false, run on every available core.

    With `on_lines` (and no `on_input_event`) the output is JSON Lines: the workers write their
    records themselves, `on_lines` gets them in canonical order instead of `on_origin_complete`,
    and the input travels as whole blocks of lines (block ingress, runtime/blocks.py).

    With `on_outputs` (and no `on_input_event`) the input travels as whole blocks too, and
    `on_outputs(outputs, flush)` gets the Outputs of each origin that has some, in canonical order,
    instead of `on_origin_complete`; `flush` is true for the end-of-input flush. Origins are then
    line numbers.

    With `live` the input is a live run's (`LiveInput`, whose `on_origin` then gets the outputs).
    """
    if channel_capacity < 1:
        raise ValueError("channel_capacity must be at least 1")
    takers = [x for x in (on_lines, on_outputs, live, on_input_event) if x is not None]
    if len(takers) > 1:
        raise ValueError("give at most one of on_lines, on_outputs, live and on_input_event")
    plan = build_plan(program)
    whole = on_lines is not None or on_outputs is not None
    blocks = whole and any(c.event_types for c in plan.contexts)
    live_lines = live.on_lines if live is not None else None
    specs = worker_specs(plan, channel_capacity, display_path, pin, unpinned or set(), block_ingress=blocks,
                         jsonl_out=on_lines is not None or live_lines is not None, prompt=live is not None)
    if live is not None:
        for spec in specs:  # each stream's sinks run in the worker of its context (RUN.md §1.2)
            spec.sinks = {name: live.sinks[name] for name in spec.streams if name in live.sinks}
    with_flush = live.on_origin if live is not None and live_lines is None else on_outputs
    gathered = _Gathered(live.on_origin) if live is not None and live_lines is None else None
    if with_flush is not None:
        tell = gathered.add if gathered is not None else with_flush

        def on_origin_complete(outputs: list[Output]) -> None:
            flush_origin = sup.router.flush_origin if sup.router is not None else None
            tell(outputs, flush_origin is not None and bool(outputs) and outputs[0].origin >= flush_origin)

    sup = _Supervisor(program, plan, specs, events_source, display_path, on_origin_complete,
                      on_input_event, channel_capacity, skip_empty or whole or live is not None,
                      on_lines or live_lines, live, gathered)
    if live is not None:
        _relay_subscriptions(sup, live, specs)
    return sup.run()


class _Gathered:
    """A live run's outputs, handed on once per release of the merger rather than once per origin:
    one write and one flush of each sink however many origins a release completes (many, under
    load), in the same order. The end-of-input flush's outputs go in a call of their own."""

    def __init__(self, tell: Callable[[list[Output], bool], None]) -> None:
        self._tell = tell
        self._held: list[Output] = []

    def add(self, outputs: list[Output], flush: bool) -> None:
        if flush:
            self.hand_over()
            self._tell(outputs, True)
        else:
            self._held += outputs

    def hand_over(self) -> None:
        if self._held:
            held, self._held = self._held, []
            self._tell(held, False)


def _relay_subscriptions(sup: _Supervisor, live: LiveInput, specs: list[WorkerSpec]) -> None:
    """Give each worker its subscriptions, and the live feed one `RelayedSource` per subscription."""
    relayed: dict[tuple[int, int], RelayedSource] = {}
    for spec in specs:
        for sub, source in enumerate(live.subscriptions.get(spec.name, [])):
            assert source.source is not None
            spec.subscriptions.append(source.source)

            def send_commit(batches: int, worker: int = spec.index, sub: int = sub) -> None:
                if sup.router is not None:
                    sup.router.outbox[worker].append(wire.encode([(wire.COMMIT, sub, batches)]))

            relay = RelayedSource(send_commit)
            relayed[(spec.index, sub)] = relay
            live.feed.add(FeedSource(source.name, source.display, relay, types=source.types))
    if relayed:
        sup.merger.on_relayed = lambda worker, frame: relayed[(worker, frame[1])].relay(frame)


def worker_specs(plan: Plan, capacity: int, display_path: str, pin: bool, unpinned: set[str], *,
                 block_ingress: bool = False, jsonl_out: bool = False, prompt: bool = False) -> list[WorkerSpec]:
    """One WorkerSpec per context of the plan, with context names turned into indices; `prompt`
    for a live run (outputs leave each worker as soon as its inputs are drained)."""
    index = {c.name: i for i, c in enumerate(plan.contexts)}
    n = len(plan.contexts)
    # reach[i][j]: records of context i can reach context j; a cycle of contexts is i, j reaching each other.
    reach = [[False] * n for _ in range(n)]
    for i, c in enumerate(plan.contexts):
        for dsts in c.outputs_to.values():
            for d in dsts:
                reach[i][index[d]] = True
    for k in range(n):
        for i in range(n):
            if reach[i][k]:
                for j in range(n):
                    if reach[k][j]:
                        reach[i][j] = True
    owners: dict[str, int] = {}
    for i, c in enumerate(plan.contexts):
        for t in c.event_types:
            owners.setdefault(t, i)
    specs: list[WorkerSpec] = []
    for i, c in enumerate(plan.contexts):
        cores = c.cores
        if not pin or c.name in unpinned or (cores is not None and affinity.unavailable_core(cores) is not None):
            cores = None
        inputs_from = {s: index[ctx] for s, ctx in c.inputs_from.items()}
        specs.append(WorkerSpec(
            index=i, name=c.name, cores=list(cores) if cores else None, streams=list(c.streams),
            event_types=list(c.event_types), inputs_from=inputs_from,
            outputs_to={s: [index[d] for d in dsts] for s, dsts in c.outputs_to.items()},
            cycle_peers={src for src in inputs_from.values() if reach[i][src] and reach[src][i]},
            capacity=capacity, display_path=display_path,
            block_ingress=block_ingress, owners=owners if block_ingress else {}, jsonl_out=jsonl_out,
            prompt=prompt,
        ))
    return specs


class _Worker:
    __slots__ = ("spec", "pid", "status", "exited_at")

    def __init__(self, spec: WorkerSpec, pid: int) -> None:
        self.spec = spec
        self.pid = pid
        self.status: int | None = None  # raw wait status once reaped
        self.exited_at = 0.0


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.WEXITSTATUS(status) if os.WIFEXITED(status) else status}"


class _Supervisor:
    def __init__(self, program: CheckedProgram, plan: Plan, specs: list[WorkerSpec],
                 source: str | os.PathLike[str] | IO[bytes], display_path: str,
                 on_origin_complete: Callable[[list[Output]], None],
                 on_input_event: Callable[[int, int, str], None] | None, capacity: int,
                 skip_empty: bool, on_lines: Callable[[list[str]], None] | None = None,
                 live: LiveInput | None = None, gathered: _Gathered | None = None) -> None:
        self.program = program
        self.gathered = gathered
        self.plan = plan
        self.specs = specs
        self.source = source
        self.display_path = display_path
        self.on_input_event = on_input_event
        self.capacity = capacity
        self.workers: list[_Worker] = []
        self.signals: list[int] = []
        self.signal_count = 0
        self.old_handlers: dict[int, Any] = {}
        self.transport: Transport | None = None
        self.reader: SourceThread | None = None
        self.blocks = any(spec.block_ingress for spec in specs)
        self.live = live
        self.run_dir: RunDir | None = None
        self.merger = Merger([s.name for s in program.streams], len(specs), plan.cross_fanout,
                             on_origin_complete, skip_empty, on_lines)
        self.router: Router | None = None
        self.outputs: list[Receiver] = []
        self.last_child_check = 0.0
        self.draining = False
        self.interrupted_by: int | None = None  # the signal that asked for the drain
        self.drain_deadline: float | None = None
        self.notifier = live.notifier if live is not None else Notifier()
        self.status_line = StatusLine(time.monotonic())

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> Summary:
        try:
            # The handlers first, and kept until the cleanup is done: a signal at any moment of
            # the run is the supervisor's to handle, never a default death that leaves things behind.
            self._install_signals()
            self.run_dir = RunDir()
            self._fork_all()
            self.transport = Transport(self.capacity)
            self._await_ready()
            self._connect()
            self._loop()
            self._stop_workers()
            self._await_exits()
            # With block ingress the workers count the events (origins are line numbers).
            router = self.router
            return Summary(
                events_processed=self.merger.events if self.blocks else router.events if router else 0,
                unread_events=self.merger.unread if self.blocks else router.unread if router else 0,
                rejected_events=self.live.feed.log.total if self.live else 0,
                contexts_used=self.plan.contexts_used,
                cross_context_events=self.merger.cross,
                counters=self.merger.counters,
                interrupted_by=self.interrupted_by,
                dead_letters=self.merger.dead_letters,
            )
        finally:
            try:
                self._cleanup()
            finally:
                self._restore_signals()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)  # only enqueue; the loop handles it

    def _restore_signals(self) -> None:
        for sig, old in self.old_handlers.items():
            signal.signal(sig, old)
        self.old_handlers.clear()

    def _fork_all(self) -> None:
        assert self.run_dir is not None
        parent = os.getpid()
        # Buffered output must not be written twice (once by a child).
        sys.stdout.flush()
        sys.stderr.flush()
        for spec in self.specs:
            pid = os.fork()
            if pid == 0:
                worker_main(self.program, spec, self.run_dir, parent)
            self.workers.append(_Worker(spec, pid))

    def _await_ready(self) -> None:
        assert self.transport is not None and self.run_dir is not None
        ctl = self.transport.receiver(self.run_dir.control(), bind=True, hwm=1000)
        ready = [False] * len(self.workers)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(ready):
            self._tick_service()
            self._check_children(force=True)
            self._dispatch_signals()
            if time.monotonic() > deadline:
                name = self.workers[ready.index(False)].spec.name
                raise RuntimeFailure(f"context '{name}' worker did not become ready")
            r, _, _ = wait([ctl], [], [], POLL_S)
            if r:
                while (data := ctl.try_recv()) is not None:
                    for frame in wire.decode(data):
                        if frame[0] == wire.READY:
                            ready[frame[1]] = True
                        elif frame[0] == wire.FAIL:
                            # Exit codes mean something: a worker that cannot start stops the run.
                            name = self.workers[frame[2]].spec.name
                            raise RuntimeFailure(f"context '{name}' worker failed to start: {frame[1]}")
        self.notifier.ready()

    def _connect(self) -> None:
        assert self.transport is not None and self.run_dir is not None
        t = self.transport
        senders = [t.sender(self.run_dir.ingress(w.spec.index), bind=False) for w in self.workers]
        self.outputs = [t.receiver(self.run_dir.output(w.spec.index), bind=False) for w in self.workers]
        types = [w.spec.event_types for w in self.workers]
        self.router = Router(types, senders, self.on_input_event)
        self.router.start()
        batch = batch_size_for(self.capacity)
        if self.live is not None:
            from varpulis_mp.runtime.ingress_live import LiveReader
            from varpulis_mp.runtime.live import session_gaps_ms, session_tick_s

            tick_s = session_tick_s(session_gaps_ms(self.program))
            # After the fork: no worker inherits a client's thread or connection.
            if self.live.on_start is not None:
                self.live.on_start()
            self.live.feed.start()
            self.reader = LiveReader(self.live.feed, types, batch, tick_s)
        elif self.blocks:
            self.reader = BlockReader(self.source, self.display_path, types, block_lines_for(self.capacity))
        else:
            self.reader = InputReader(self.source, self.display_path, [s.name for s in self.program.streams],
                                      types, batch, want_events=self.on_input_event is not None)
        self.router.attach(self.reader)

    def _loop(self) -> None:
        router = self.router
        reader = self.reader
        assert router is not None and reader is not None
        merger = self.merger
        outputs = self.outputs
        if self.draining:
            router.end_input()
        readable = set(range(len(outputs)))  # what the last wait found readable (at first: try all)
        while True:
            self._tick_service()
            self._dispatch_signals()
            self._check_drain_deadline()
            self._check_children()
            for i, rcv in enumerate(outputs):
                if i not in readable:
                    continue
                for _ in range(64):
                    data = rcv.try_recv()
                    if data is None:
                        break
                    merger.handle(i, data)
            self._check_failures()
            self._release()
            if router.flush_origin is not None and merger.all_ended() and all(merger.done):
                return
            router.pump()
            if router.reading:
                router.feed()
            fds = [reader.wake.fd] if router.reading and router.idle() else []
            busy = router.busy()
            readable, room, _ = wait(outputs, [router.senders[w] for w in busy], fds, POLL_S)
            router.writable([busy[k] for k in room])

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

    # -- workers -------------------------------------------------------------------------------

    def _check_failures(self) -> None:
        for i, message in self.merger.failures.items():
            raise RuntimeFailure(f"context '{self.workers[i].spec.name}' worker failed: {message}")

    def _check_children(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_child_check < POLL_S:
            return
        self.last_child_check = now
        for i, w in enumerate(self.workers):
            if w.status is None:
                try:
                    pid, status = os.waitpid(w.pid, os.WNOHANG)
                except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): its status is lost
                    pid, status = w.pid, 0
                if pid == 0:
                    continue
                w.status = status
                w.exited_at = now
            if w.status == 0 and (self.merger.done[i] or now - w.exited_at < EXIT_GRACE_S):
                continue
            self._drain_failure_messages()
            detail = self.merger.failures.get(i)
            text = f"context '{w.spec.name}' worker {_describe_status(w.status)}"
            raise RuntimeFailure(f"{text}: {detail}" if detail else text)

    def _drain_failure_messages(self) -> None:
        # A worker that failed on purpose said why just before exiting.
        for i, rcv in enumerate(self.outputs):
            for _ in range(1000):
                data = rcv.try_recv()
                if data is None:
                    break
                try:
                    self.merger.handle(i, data)
                except Exception:  # noqa: BLE001 - the failure being reported matters more
                    break

    def _dispatch_signals(self) -> None:
        while self.signals:
            signum = self.signals.pop(0)
            self.signal_count += 1
            if self.signal_count == 1:
                self.interrupted_by = signum
                self.handle_drain()
            else:
                self.handle_hard_stop()

    def handle_drain(self) -> None:
        """First SIGTERM/SIGINT: stop reading and drain as at the end of input (within the live
        run's drain deadline, if it has one)."""
        self.draining = True  # before every worker is ready, the loop starts the drain at once
        self.notifier.stopping()
        if self.live is not None and self.live.drain_timeout_s is not None:
            self.drain_deadline = time.monotonic() + self.live.drain_timeout_s
            # systemd waits for the whole drain and the hard stop after it, whatever TimeoutStopSec says.
            self.notifier.extend_timeout(int((self.live.drain_timeout_s + TERM_GRACE_S + EXIT_GRACE_S) * 1e6))
        if self.router is not None:
            self.router.end_input()

    def handle_hard_stop(self, why: str = "stopped by a second signal") -> None:
        """Second signal (or a drain past its deadline): end the unfinished workers (TERM, then
        KILL) and say which did not finish."""
        unfinished = [w for i, w in enumerate(self.workers)
                      if w.status is None and not (self.merger.done[i] if self.merger.done else False)]
        self._terminate(unfinished)
        name = unfinished[0].spec.name if unfinished else self.workers[0].spec.name
        raise RuntimeFailure(f"{why} before context '{name}' finished")

    def _tick_service(self) -> None:
        """systemd's watchdog ping and STATUS line (runtime/notify.py), from this loop: a stuck
        supervisor stops pinging, a hung worker does not stop it."""
        if not self.notifier.enabled:
            return
        self.notifier.tick(time.monotonic(), lambda: self.status_line(
            time.monotonic(), self.router.events if self.router is not None else 0,
            [f"{sum(w.status is None for w in self.workers)}/{len(self.workers)} contexts up"]))

    def _check_drain_deadline(self) -> None:
        if self.drain_deadline is not None and time.monotonic() > self.drain_deadline:
            assert self.live is not None and self.live.drain_timeout_s is not None
            self.handle_hard_stop(f"the drain took longer than --drain-timeout {self.live.drain_timeout_s:g}s")

    def _stop_workers(self) -> None:
        """Every worker has finished: let them close their sockets and exit."""
        router = self.router
        assert router is not None
        for box in router.outbox:
            box.append(wire.encode([(wire.STOP,)]))
        deadline = time.monotonic() + EXIT_GRACE_S
        while not router.idle():
            router.pump()
            self._check_children()
            if time.monotonic() > deadline:
                raise RuntimeFailure("a worker did not take its stop message")
            busy = router.busy()
            router.writable([busy[k] for k in wait([], [router.senders[w] for w in busy], [], POLL_S)[1]])

    def _await_exits(self) -> None:
        deadline = time.monotonic() + EXIT_GRACE_S
        for w in self.workers:
            while w.status is None:
                pid, status = os.waitpid(w.pid, os.WNOHANG)
                if pid:
                    w.status = status
                    break
                if time.monotonic() > deadline:
                    raise RuntimeFailure(f"context '{w.spec.name}' worker did not exit after it finished")
                time.sleep(0.005)
            if w.status != 0:
                raise RuntimeFailure(f"context '{w.spec.name}' worker {_describe_status(w.status)}")

    def _terminate(self, workers: list[_Worker]) -> None:
        """TERM, then KILL after a grace period; reap them all."""
        for w in workers:
            if w.status is None:
                try:
                    os.kill(w.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + TERM_GRACE_S
        for w in workers:
            while w.status is None:
                pid, status = os.waitpid(w.pid, os.WNOHANG)
                if pid:
                    w.status = status
                elif time.monotonic() > deadline:
                    try:
                        os.kill(w.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    w.status = os.waitpid(w.pid, 0)[1]
                else:
                    time.sleep(0.005)

    def _cleanup(self) -> None:
        """Whatever happened: no worker left running or unreaped, no socket, no run directory."""
        try:
            if self.reader is not None:
                self.reader.stop()
            self._terminate([w for w in self.workers if w.status is None])
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
