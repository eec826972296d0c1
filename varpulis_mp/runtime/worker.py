"""One context's worker process: what runs in the child after the fork.

Owns a worker's life (its input and output sides are runtime/worker_input.py and
runtime/worker_output.py): first pin its cores and arrange to die with its parent, then make its own
ZeroMQ context, bind its inputs (ingress from the router, one channel per upstream context) and its
output toward the merger, build the `Dataflow` of its streams and report ready. Then it parses the
raw lines the router forwards, pushes records from upstream contexts, and sends its outputs with
per-stream progress to the merger and its records to the contexts reading them, with progress and
end-of-stream in band after the data they cover (DESIGN.md §2-§4). Lines of event types no stream
reads may be sent to it too, only to be checked. It exits 0 once every stream it
hosts has ended and everything it sent has been delivered.

Backpressure: while any of its outgoing channels is full the worker stops reading its ingress and
the channels of upstream contexts outside its own cycle of contexts, so a slow consumer stops the
router. Channels from contexts in the same cycle (`default -> worker -> default`) keep being read,
since two contexts waiting for each other would otherwise wait forever; the stream graph has no
cycle, so what they buffer is bounded by what entered the cycle before it filled.

Supervision (RUN.md §6): the worker heartbeats on the control socket at least once a second,
also while it waits on a full channel. In a live run its input channels are numbered (`SEQ`):
it reports in band, toward the merger, the last record number it took on each (`CONSUMED`) and
the first numbers a process got (`RESUMED`), so that the supervisor knows exactly what a restart
lost; records of a shape announced only to a dead predecessor are counted (`LOST`), never a crash.
A `RESEND` from the supervisor says a context it feeds was restarted: the shapes, progress and
ends of the streams it reads are sent again on that channel.

`VARPULIS_MP_WORKER_PROFILE=DIR` runs each worker under cProfile and writes DIR/worker-NAME.prof.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from varpulis_mp.engine.output import Output
from varpulis_mp.io.ports import Sink, SinkPartition, Source
from varpulis_mp.io.readers import EventParser
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.blocks import BlockTaker
from varpulis_mp.runtime.child import prepare_child
from varpulis_mp.runtime.pool_input import PooledStream
from varpulis_mp.runtime.pool_rows import OwnedRows
from varpulis_mp.runtime.relay import WorkerSubscriptions
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.shapes import LearnedShapes
from varpulis_mp.runtime.transport import Outbox, Receiver, Transport, batch_size_for, wait
from varpulis_mp.runtime.worker_input import WorkerInput
from varpulis_mp.runtime.worker_meter import WorkerMeter
from varpulis_mp.runtime.worker_output import ENDED, FLUSH_S, MERGER

if TYPE_CHECKING:
    from varpulis_mp.engine.pool import PoolPart

__all__ = ["MERGER", "WorkerSpec", "worker_main"]

HEARTBEAT_S = 0.25  # at most this long between heartbeats while the loop turns (RUN.md §6: 1 s)
INGRESS = "in"  # the channel key of the router's input (an upstream worker's: p<index>)


@dataclass
class WorkerSpec:
    """Everything a worker needs besides the program, computed by the supervisor before forking."""

    index: int
    name: str
    cores: list[int] | None  # None: run unpinned
    streams: list[str]
    event_types: list[str]
    inputs_from: dict[str, list[int]]  # stream hosted elsewhere -> the processes sending it
    outputs_to: dict[str, list[int]]  # hosted stream -> the processes of other contexts reading it
    cycle_peers: set[int] = field(default_factory=set)  # upstream processes in a cycle with this one
    capacity: int = 1000
    display_path: str = "<events>"
    # Block ingress (see runtime/blocks.py): whole input blocks, and each event type read by some
    # worker with the lowest-numbered such worker.
    block_ingress: bool = False
    owners: dict[str, int] = field(default_factory=dict)
    # Records for the merger already written as JSON Lines (the output is JSON Lines).
    jsonl_out: bool = False
    # A live run's `.to` sinks of hosted streams (descriptions; built here, after the fork).
    sinks: dict[str, list[Sink]] = field(default_factory=dict)
    # A live run's subscriptions declared by hosted streams (runtime/relay.py).
    subscriptions: list[Source] = field(default_factory=list)
    # A live run: what is gathered for the merger leaves as soon as the inputs are drained.
    prompt: bool = False
    # A pool (RUN.md §7): this process is worker `worker` of `workers`, with each hosted stream's
    # role (engine/pool.py); `silent` streams it runs whole but another worker emits.
    worker: int = 0
    workers: int = 1
    roles: dict[str, str] = field(default_factory=dict)
    silent: list[str] = field(default_factory=list)

    @property
    def process_name(self) -> str:
        """The worker's name in logs and `ps` (RUN.md §6): the context, `-<n>` in a pool."""
        return self.name if self.workers == 1 else f"{self.name}-{self.worker}"

    def emits(self) -> list[str]:
        """The hosted streams whose outputs this process sends."""
        return [s for s in self.streams if s not in self.silent]

    def pool(self) -> PoolPart | None:
        """The engine's view of this worker's share of its pool (None outside pools). Imported
        here: the supervisor, which never runs streams, keeps the engine's import off its start."""
        if self.workers == 1:
            return None
        from varpulis_mp.engine.pool import PoolPart

        return PoolPart(self.worker, self.workers, dict(self.roles))  # type: ignore[arg-type]


def worker_main(program: CheckedProgram, spec: WorkerSpec, run_dir: RunDir, parent: int) -> NoReturn:
    """Entry point in the forked child; never returns (exits with `os._exit`)."""
    code = 70
    try:
        prepare_child(spec.process_name, spec.cores, parent)
        profile_dir = os.environ.get("VARPULIS_MP_WORKER_PROFILE")
        if profile_dir:
            # Measuring only: each worker's cProfile statistics in DIR/worker-NAME.prof.
            import cProfile

            profiler = cProfile.Profile()
            code = profiler.runcall(_Worker(program, spec, run_dir, parent).run)
            profiler.dump_stats(os.path.join(profile_dir, f"worker-{spec.process_name}.prof"))
        else:
            code = _Worker(program, spec, run_dir, parent).run()
    except BaseException:
        # The supervisor reports the failure (RuntimeFailure); the traceback is for debugging only.
        if os.environ.get("VARPULIS_MP_DEBUG"):
            print(f"context '{spec.name}' worker failed:\n{traceback.format_exc()}", file=sys.stderr)
        code = 70
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)


STOPPED_LINGER_MS = 1000  # see `run`: how long a stopped worker's sockets may keep delivering


class _Worker(WorkerInput):
    def __init__(self, program: CheckedProgram, spec: WorkerSpec, run_dir: RunDir, parent: int) -> None:
        self.program = program
        self.spec = spec
        self.run_dir = run_dir
        self.parent = parent
        self.batch = batch_size_for(spec.capacity)
        self.types = frozenset(spec.event_types)
        self.stream_index = {s.name: s.index for s in program.streams}
        source = {s.name: s.source for s in program.streams}
        hosted = set(spec.streams)
        # A hosted stream's progress is that of the outside source its chain starts from.
        self.root: dict[str, str] = {}
        for name in spec.emits():  # a pool's silent streams report nothing (another worker does)
            src = source[name]
            while src in hosted:
                src = source[src]
            self.root[name] = src
        self.progress: dict[str, int] = {src: 0 for src in self.root.values()}
        self.sent: dict[str, int] = {name: 0 for name in spec.streams}
        self.ended: set[str] = set()
        self.err_origin = ENDED
        self.emitted: list[Output] = []
        self.parser = EventParser(spec.display_path, [s.name for s in program.streams])
        self.batch_time = 0
        self.started = False
        self.shapes = LearnedShapes()
        self.taker: BlockTaker | None = None
        self.merger_sealed = 0.0  # when the merger's channel last got a message
        self.last_tick = 0  # origin of the last live tick handled
        self.sinks: dict[str, list[SinkPartition]] = {}
        self.subs = WorkerSubscriptions(spec.subscriptions)
        self.flushing = False  # the end-of-input flush is being handed out
        self.flush_origin = ENDED
        self.last_heartbeat = 0.0
        self.draining = False  # every hosted stream has ended (said with each heartbeat)
        # Numbered input channels (a live run): channel -> stream -> last record number taken.
        self.taken: dict[str, dict[str, int]] = {}
        self.reported: dict[str, dict[str, int]] = {}  # what CONSUMED last said
        self.received: dict[str, dict[str, int]] = {}  # channel -> stream -> records this process read
        self.senders: dict[str, int | None] = {}
        self.attested: dict[int, dict[str, int]] = {}
        # Streams that the workers of a pool send: merged back into one order (runtime/pool_input.py).
        self.pooled = {name: PooledStream(srcs) for name, srcs in spec.inputs_from.items() if len(srcs) > 1}
        # A live run's counters for the metrics, sent with the heartbeats (runtime/worker_meter.py).
        sources = {s.name: s.source for s in program.streams if s.name in hosted}
        self.meter = WorkerMeter(spec.streams, sources) if spec.prompt else None
        self.connectors: dict[str, object] = {}  # connector name -> its partition here
        # Filled in by run() once the sockets exist.
        self.dests: dict[int, Outbox] = {}
        self.readers: dict[str, list[int]] = {name: list(dsts) for name, dsts in spec.outputs_to.items()}

    # -- life ----------------------------------------------------------------------------------

    def run(self) -> int:
        spec = self.spec
        rd = self.run_dir
        transport = Transport(spec.capacity)
        self.ctl = transport.sender(rd.control(), bind=False, hwm=16)
        self.ready = False
        try:
            ingress = transport.receiver(rd.ingress(spec.index), bind=True)
            upstream = sorted({src for srcs in spec.inputs_from.values() for src in srcs})
            peers = {src: transport.receiver(rd.peer(spec.index, src), bind=True) for src in upstream}
            out = transport.sender(rd.output(spec.index), bind=True)
            # Every message toward the merger says what was taken for the outputs it carries.
            self.dests[MERGER] = Outbox(out, self.batch, on_seal=self._report)
            for dst in sorted({d for dsts in spec.outputs_to.values() for d in dsts}):
                # Connected on START, once every worker is ready; numbered in a live run (RUN.md §6).
                self.dests[dst] = Outbox(None, self.batch, numbered=spec.prompt)
            # Imported here, in the child: the supervisor never runs streams, so the engine's import
            # stays off the serial start of a run and the workers pay it in parallel.
            from varpulis_mp.engine.dataflow import Dataflow

            self.flow = Dataflow(self.program, self.emitted.append, hosted=spec.streams, pool=spec.pool())
            self.sessions = self.flow.has_sessions
            if spec.block_ingress and spec.event_types:
                pushers = {t: self.flow.pusher(t) for t in spec.event_types}
                self.taker = BlockTaker(spec.index, spec.event_types, spec.owners, self.parser,
                                        self.flow.push_event, pushers, self._bad_line, self.emitted,
                                        self.batch, self._route)
                owned = {t: found for t in spec.event_types if (found := self.flow.owner_of_rows(t)) is not None}
                if owned:
                    self.taker.owned = OwnedRows(self.taker.shapes, owned)
            # Ready means the sinks' clients exist too (RUN.md §6); a broker that is down is retried.
            # In a pool each worker has its own clients, whose ids carry its index (RUN.md §1.2).
            self.sinks = {name: [d.build(spec.worker, spec.workers) for d in descriptions]
                          for name, descriptions in spec.sinks.items()}
            self.subs.start()
            for name, descriptions in spec.sinks.items():
                self.connectors.update((d.name, part) for d, part in zip(descriptions, self.sinks[name], strict=True))
            self.connectors.update(self.subs.partitions())
            if not self.ctl.try_send(wire.encode([(wire.READY, spec.index, os.getpid())])):
                raise RuntimeError("cannot report ready")
            self.last_heartbeat = time.monotonic()
            self.ready = True
            self._loop(transport, ingress, peers)
            self._drain(ingress, transport)
        except BaseException as exc:
            self._fail(exc)
            transport.close(2000)  # long enough for the failure report on a busy machine, never a hang
            raise
        # STOP means every worker finished: whatever a live peer was sent, it received. What is
        # still queued can only be for a process the run gave up on, and must not hold the exit.
        transport.close(STOPPED_LINGER_MS)
        return 0

    def _fail(self, exc: BaseException) -> None:
        """Say why, where the supervisor listens: on the control socket before ready, else in band."""
        message = wire.encode([(wire.FAIL, f"{type(exc).__name__}: {exc}", self.spec.index)])
        merger = self.dests.get(MERGER)
        if not self.ready:
            self.ctl.try_send(message)
        elif merger is not None and merger.sender is not None:
            merger.sender.try_send(message)

    def _loop(self, transport: Transport, ingress: Receiver, peers: dict[int, Receiver]) -> None:
        decoders: dict[int, wire.ShapeDecoder] = {src: wire.ShapeDecoder() for src in peers}
        ingress_dec = wire.ShapeDecoder()
        cycle = self.spec.cycle_peers
        dests = list(self.dests.values())
        while len(self.ended) < len(self.spec.streams):
            self._heartbeat()
            blocked = any(d.outbox for d in dests)
            readers: list[Receiver] = []
            owners: list[int | None] = []
            if not blocked or not self.started:
                readers.append(ingress)
                owners.append(None)
            for src, rcv in peers.items():
                if not blocked or src in cycle:
                    readers.append(rcv)
                    owners.append(src)
            writers = [d for d in dests if d.outbox and d.sender is not None]
            # An idle worker wakes for its next heartbeat: the counters are never older than that.
            due = self.last_heartbeat + HEARTBEAT_S - time.monotonic()
            timeout = FLUSH_S if self.dests[MERGER].frames else min(HEARTBEAT_S, max(0.0, due))
            subs = self.subs
            fds: list[int] = []
            if subs and self.started and not blocked:  # a full channel holds the brokers back too
                fds = subs.fds()
                timeout = subs.timeout(timeout)
            ready_r, _, ready_fds = wait(readers, [d.sender for d in writers if d.sender is not None], fds, timeout)
            if fds or (subs and self.started and not blocked):
                subs.take(ready_fds, self.dests[MERGER].add)
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
                        self._handle(wire.decode(data), ingress_dec, transport, INGRESS)
                    else:
                        self._handle(wire.decode(data), decoders[owner], transport, f"p{owner}")
                    if owner is None and self.started and any(d.outbox for d in dests):
                        drained = False
                        break
                else:
                    drained = False
            # One message per turn and channel: what the turn's input messages gave, together; toward
            # the merger, one per batch or per FLUSH_S (in a live run, also whenever nothing more waits).
            if drained and self.spec.prompt:
                self._seal_all()
            else:
                self._seal_turn()
            self._pump(dests)

    def _drain(self, ingress: Receiver, transport: Transport) -> None:
        """Every hosted stream has ended: send the counters, then hold the sockets open until the
        supervisor says every worker has finished (so nothing queued here can still be lost)."""
        # Draining: the sinks' close may wait on a broker for a while, which is not a hang.
        self.draining = True
        self.last_heartbeat = 0.0
        self._heartbeat()
        dead_letters = self._close_sinks()
        c = self.flow.counters
        merger = self.dests[MERGER]
        taker = self.taker
        merger.add((wire.STATS, c.expression_errors, c.late_events, c.sessions_closed,
                    taker.events if taker else 0, taker.unread if taker else 0, dead_letters))
        self._seal_all()
        dests = list(self.dests.values())
        stopped = False
        self.last_heartbeat = 0.0  # the final counters go now
        while True:
            self._heartbeat()
            self._pump(dests)
            pending = [d.sender for d in dests if d.outbox and d.sender is not None]
            # STOP means every worker finished, so every live peer has what it was sent: a channel
            # still full can only lead to a process the run gave up on, and must not hold the exit.
            if stopped and not merger.outbox:
                return
            ready, _, _ = wait([ingress], pending, [], HEARTBEAT_S)
            if ready:
                while (data := ingress.try_recv()) is not None:
                    for frame in wire.decode(data):
                        if frame[0] == wire.STOP:
                            stopped = True
                        elif frame[0] == wire.START:
                            # Every stream may end before START is read (an upstream context's
                            # records and end came first): the channels toward readers open now,
                            # or what waits for them would never go.
                            self._start(transport)
                        elif frame[0] == wire.COMMIT:  # the last batches' acknowledgements
                            self.subs.commit(frame[1], frame[2])
                        elif frame[0] == wire.RESEND:  # a context this one feeds was restarted
                            self._resend(frame[1])
                            self._seal_all()
            if stopped:
                self.subs.close()  # after the acknowledgements: a broker's DISCONNECT comes last
            if os.getppid() != self.parent:
                raise RuntimeError("the supervisor went away")

    # -- input ---------------------------------------------------------------------------------

    def _pump(self, dests: list[Outbox]) -> None:
        """Send what the channels take. In a live run the merger's message goes first: a record
        reaches a reading context only after the message toward the merger that accounts for it
        (its outputs, what was taken to make them) has gone, so a death never makes the two differ."""
        merger = self.dests[MERGER]
        merger.pump()
        if merger.outbox and self.spec.prompt:
            return
        for d in dests:
            if d is not merger:
                d.pump()

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self.last_heartbeat >= HEARTBEAT_S:
            self.last_heartbeat = now
            meter = self.meter
            counters = meter.counters(self.received, self.flow.stream_counters, self.connectors) if meter else None
            # What each numbered channel toward a context has carried: with what the receiver says
            # it took, the supervisor knows how full the channel is (the metrics' utilization).
            sent = {dst: sum(box.sent.values()) for dst, box in self.dests.items() if box.numbered}
            self.ctl.try_send(wire.encode([(wire.HEARTBEAT, self.spec.index, os.getpid(), counters, self.draining,
                                            sent)]))

    def _handle(self, frames: list[list[Any]], dec: wire.ShapeDecoder, transport: Transport, channel: str) -> None:
        for frame in frames:
            kind = frame[0]
            if kind == wire.BLOCK:
                self._block(frame)
            elif kind == wire.LINES:
                self._lines(frame)
            elif kind == wire.RECORDS:
                self._records(frame, dec, channel)
            elif kind == wire.SEQ:
                if not self._seq(channel, frame[1], frame[2] if len(frame) > 2 else None):
                    break  # a replaced sender's late message
            elif kind == wire.SHAPE:
                dec.learn(frame)
            elif kind == wire.PROGRESS:
                progress = self.progress
                n = frame[2]
                for src in frame[1]:
                    if src in self.pooled:
                        self._pool_progress(src, channel, n)
                    elif progress.get(src, ENDED) < n:
                        progress[src] = n
            elif kind == wire.EOS:
                if frame[1] in self.pooled:
                    # A given-up pool worker's end comes from the supervisor, naming the worker.
                    self._pool_end(frame[1], f"p{frame[3]}" if len(frame) > 3 else channel, frame[2])
                else:
                    self._eos(frame[1], frame[2])
            elif kind == wire.TICK:
                self._tick(frame[1], frame[2])
            elif kind == wire.START:
                self._start(transport)
            elif kind == wire.COMMIT:
                self.subs.commit(frame[1], frame[2])
            elif kind == wire.RESEND:
                self._resend(frame[1])
            else:
                raise wire.WireError(f"unexpected frame kind {kind!r} on a worker's input")
        self._route()
        self._progress()

    def _report(self, merger: Outbox) -> None:
        """What each message toward the merger says last: what was taken and sent for its outputs."""
        self._report_taken(merger)
        self._report_sent(merger)

    def _start(self, transport: Transport) -> None:
        self.started = True
        for dst, dest in self.dests.items():
            if dst != MERGER and dest.sender is None:
                dest.sender = transport.sender(self.run_dir.peer(dst, self.spec.index), bind=False)
