"""One context's worker process: what runs in the child after the fork.

Owns `WorkerSpec` (what the supervisor computes for each worker before forking), `worker_main` and
a worker's life (`_Worker`): first pin its cores and arrange to die with its parent, then make its
own ZeroMQ context, bind its inputs (ingress from the router, one channel per upstream context)
and its output toward the merger, build the `Dataflow` of its streams, its sinks and its
subscriptions, and report ready; a failure is reported where the supervisor listens. It exits 0
once every stream it hosts has ended and everything it sent has been delivered (DESIGN.md §2-§4).

The worker holds one part per responsibility, each composed, none inherited:

* runtime/worker_loop.py: the loop (what it reads when, backpressure) and the drain until STOP;
* runtime/worker_frames.py: what each incoming frame means, the supervisor's control frames
  (START, STOP, COMMIT, RESEND) included;
* runtime/worker_input.py: the incoming side: raw lines parsed, blocks, records of upstream
  contexts, and what was taken of each numbered channel (`SEQ`, `CONSUMED`, `RESUMED`, `LOST`);
* runtime/worker_output.py: the streams and the outgoing side: outputs routed toward the merger,
  the reading contexts and the sinks, progress and ends in band after the data they cover;
* runtime/worker_reports.py: what it tells the supervisor: READY, heartbeats (RUN.md §6: at least
  once a second, also while it waits on a full channel), FAIL, the final counters.

`VARPULIS_MP_WORKER_PROFILE=DIR` runs each worker under cProfile and writes DIR/worker-NAME.prof.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from varpulis_mp.io.ports import Sink, Source
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.child import prepare_child
from varpulis_mp.runtime.relay import WorkerSubscriptions
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.transport import Outbox, Transport, ingress_hwm_for
from varpulis_mp.runtime.worker_frames import WorkerFrames
from varpulis_mp.runtime.worker_input import WorkerInput
from varpulis_mp.runtime.worker_loop import WorkerLoop
from varpulis_mp.runtime.worker_output import MERGER, WorkerOutput
from varpulis_mp.runtime.worker_reports import WorkerReports

if TYPE_CHECKING:
    from varpulis_mp.engine.pool import PoolPart

__all__ = ["MERGER", "WorkerSpec", "worker_main"]


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


class _Worker:
    """A worker's life: its start-up and its fail path; the rest is done by the parts it holds."""

    def __init__(self, program: CheckedProgram, spec: WorkerSpec, run_dir: RunDir, parent: int) -> None:
        self.program = program
        self.spec = spec
        self.run_dir = run_dir
        self.outgoing = WorkerOutput(program, spec)
        self.incoming = WorkerInput(program, spec, self.outgoing)
        self.subs = WorkerSubscriptions(spec.subscriptions)
        self.reports = WorkerReports(spec, self.incoming, self.outgoing)
        self.frames = WorkerFrames(spec, run_dir, self.incoming, self.outgoing, self.subs)
        self.loop = WorkerLoop(spec, parent, self.frames, self.outgoing, self.reports, self.subs)

    def run(self) -> int:
        spec = self.spec
        rd = self.run_dir
        out = self.outgoing
        transport = Transport(spec.capacity)
        self.reports.ctl = transport.sender(rd.control(), bind=False, hwm=16)
        try:
            ingress = transport.receiver(rd.ingress(spec.index), bind=True, hwm=ingress_hwm_for(spec.capacity))
            upstream = sorted({src for srcs in spec.inputs_from.values() for src in srcs})
            peers = {src: transport.receiver(rd.peer(spec.index, src), bind=True) for src in upstream}
            sender = transport.sender(rd.output(spec.index), bind=True)
            # Every message toward the merger says what was taken for the outputs it carries.
            out.dests[MERGER] = Outbox(sender, out.batch, on_seal=self.reports.report)
            for dst in sorted({d for dsts in spec.outputs_to.values() for d in dsts}):
                # Connected on START, once every worker is ready; numbered in a live run (RUN.md §6).
                out.dests[dst] = Outbox(None, out.batch, numbered=spec.prompt)
            # Imported here, in the child: the supervisor never runs streams, so the engine's import
            # stays off the serial start of a run and the workers pay it in parallel.
            from varpulis_mp.engine.dataflow import Dataflow

            out.flow = Dataflow(self.program, out.emitted.append, hosted=spec.streams, pool=spec.pool())
            out.sessions = out.flow.has_sessions
            if spec.block_ingress and spec.event_types:
                self.incoming.take_blocks()
            # Ready means the sinks' clients exist too (RUN.md §6); a broker that is down is retried.
            # In a pool each worker has its own clients, whose ids carry its index (RUN.md §1.2).
            out.sinks = {name: [d.build(spec.worker, spec.workers) for d in descriptions]
                         for name, descriptions in spec.sinks.items()}
            self.subs.start()
            connectors = self.reports.connectors
            for name, descriptions in spec.sinks.items():
                connectors.update((d.name, part) for d, part in zip(descriptions, out.sinks[name], strict=True))
            connectors.update(self.subs.partitions())
            # A pool's worker says which event types it reads by a key field alone: the router may
            # then send it only the lines of its keys (runtime/key_routes.py).
            taker = self.incoming.taker
            owned = taker.owned if taker is not None else None
            self.reports.say_ready({t: field for t, (field, _) in owned.owners.items()} if owned is not None else {})
            self.loop.run(transport, ingress, peers)
            self.loop.drain(ingress, transport)
        except BaseException as exc:
            self.reports.fail(exc)
            transport.close(2000)  # long enough for the failure report on a busy machine, never a hang
            raise
        # STOP means every worker finished: whatever a live peer was sent, it received. What is
        # still queued can only be for a process the run gave up on, and must not hold the exit.
        transport.close(STOPPED_LINGER_MS)
        return 0
