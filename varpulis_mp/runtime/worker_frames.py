"""What a worker does with each frame it reads: data to its sides, control frames handled here.

Owns `WorkerFrames`, the dispatch of a worker's (runtime/worker.py) incoming messages: raw lines,
blocks, records, numbering, progress and ends go to its incoming side (runtime/worker_input.py),
ticks and `RESEND` to its outgoing side (runtime/worker_output.py); the control frames from the
supervisor are handled here: `START` (every worker is ready: the channels toward the reading
contexts connect), `COMMIT` (a relayed batch's acknowledgement, runtime/relay.py) and, once every
hosted stream has ended, `STOP` (every worker finished: the worker may exit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from varpulis_mp.runtime import wire
from varpulis_mp.runtime.relay import WorkerSubscriptions
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.transport import Transport
from varpulis_mp.runtime.worker_input import WorkerInput
from varpulis_mp.runtime.worker_output import WorkerOutput

if TYPE_CHECKING:
    from varpulis_mp.runtime.worker import WorkerSpec

__all__ = ["WorkerFrames"]


class WorkerFrames:
    def __init__(self, spec: WorkerSpec, run_dir: RunDir, incoming: WorkerInput, outgoing: WorkerOutput,
                 subs: WorkerSubscriptions) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.incoming = incoming
        self.outgoing = outgoing
        self.subs = subs
        self.started = False  # START came: every worker is ready

    def handle(self, frames: list[list[Any]], dec: wire.ShapeDecoder, transport: Transport, channel: str) -> None:
        """One message read on `channel` (`dec`: the shapes its sender announced), then what it
        made goes out with the progress it allows."""
        incoming = self.incoming
        out = self.outgoing
        for frame in frames:
            kind = frame[0]
            if kind == wire.BLOCK:
                incoming.block(frame)
            elif kind == wire.LINES:
                incoming.lines(frame)
            elif kind == wire.RECORDS:
                incoming.records(frame, dec, channel)
            elif kind == wire.SEQ:
                if not incoming.seq(channel, frame[1], frame[2] if len(frame) > 2 else None):
                    break  # a replaced sender's late message
            elif kind == wire.SHAPE:
                dec.learn(frame)
            elif kind == wire.PROGRESS:
                incoming.progress_frame(frame, channel)
            elif kind == wire.EOS:
                incoming.end_frame(frame, channel)
            elif kind == wire.TICK:
                out.tick(frame[1], frame[2])
            elif kind == wire.START:
                self.start(transport)
            elif kind == wire.COMMIT:
                self.subs.commit(frame[1], frame[2])
            elif kind == wire.RESEND:
                out.resend(frame[1])
            else:
                raise wire.WireError(f"unexpected frame kind {kind!r} on a worker's input")
        out.route()
        out.pass_progress()

    def handle_drained(self, frames: list[list[Any]], transport: Transport) -> bool:
        """A message on the ingress once every hosted stream has ended: only the supervisor's
        control frames still matter. True when it says STOP."""
        stopped = False
        for frame in frames:
            if frame[0] == wire.STOP:
                stopped = True
            elif frame[0] == wire.START:
                # Every stream may end before START is read (an upstream context's records and end
                # came first): the channels toward readers open now, or what waits for them would
                # never go.
                self.start(transport)
            elif frame[0] == wire.COMMIT:  # the last batches' acknowledgements
                self.subs.commit(frame[1], frame[2])
            elif frame[0] == wire.RESEND:  # a context this one feeds was restarted
                self.outgoing.resend(frame[1])
                self.outgoing.seal_all()
        return stopped

    def start(self, transport: Transport) -> None:
        self.started = True
        self.outgoing.open_readers(transport, self.run_dir)
