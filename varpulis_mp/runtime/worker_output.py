"""A worker's outgoing side: routing what its streams emit, progress, ends and its channels.

Owns `WorkerOutput`, the part of a worker (runtime/worker.py) that holds the worker's streams (its
`Dataflow`) and its outgoing channels: it hands what the streams emit to the merger and to the
contexts reading them, to its `.to` sinks, and the progress and end-of-stream that follow them in
band; it decides when the outgoing messages are sealed (at once in a live run whenever the inputs
are drained, else per batch or per `FLUSH_S`) and sends what the channels take; and `RESEND`: a
context it feeds was restarted, so the shapes, progress and ends of the streams it reads go again
on that channel. A bad input line (`stop_at`) caps everything that follows at its origin.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from varpulis_mp.engine.output import Output
from varpulis_mp.errors import EventFileError
from varpulis_mp.io.jsonl import jsonl_line
from varpulis_mp.io.ports import SinkPartition
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.transport import Outbox, Transport, batch_size_for
from varpulis_mp.runtime.worker_meter import WorkerMeter

if TYPE_CHECKING:
    from varpulis_mp.engine.dataflow import Dataflow
    from varpulis_mp.runtime.worker import WorkerSpec

__all__ = ["ENDED", "FLUSH_S", "MERGER", "WorkerOutput"]

ENDED = wire.ENDED  # progress of a source that has ended
MERGER = -1  # destination key of the channel toward the merger
# Outputs and progress toward the merger wait at most this long for more to travel with them (a
# message per input message would cost the merger more than the outputs themselves). In a live
# run (`WorkerSpec.prompt`) they leave at once whenever the worker has read everything waiting
# for it: an idle worker adds no delay, a loaded one still batches.
FLUSH_S = 0.01
_DEFERRABLE = frozenset({wire.PROGRESS, wire.LINES_OUT, wire.OUTPUTS, wire.SHAPE, wire.CONSUMED, wire.RESUMED,
                         wire.LOST, wire.SENT})


class WorkerOutput:
    flow: Dataflow  # the worker's streams, built by the worker once its sockets exist

    def __init__(self, program: CheckedProgram, spec: WorkerSpec) -> None:
        self.spec = spec
        self.batch = batch_size_for(spec.capacity)
        self.emitted: list[Output] = []  # what the streams emitted since the last `route`
        self.sessions = False  # whether the streams have session windows (closed by a live run's ticks)
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
        self.err_origin = ENDED  # the first bad line's origin: nothing from it on goes out
        self.flushing = False  # the end-of-input flush is being handed out
        self.flush_origin = ENDED
        self.last_tick = 0  # origin of the last live tick handled
        self.merger_sealed = 0.0  # when the merger's channel last got a message
        self.sinks: dict[str, list[SinkPartition]] = {}
        # A live run's counters for the metrics, sent with the heartbeats (runtime/worker_meter.py).
        sources = {s.name: s.source for s in program.streams if s.name in hosted}
        self.meter = WorkerMeter(spec.streams, sources) if spec.prompt else None
        self.attested: dict[int, dict[str, int]] = {}  # dst -> what the last SENT toward the merger said
        # The channels: toward the merger (MERGER) and toward each reading process, opened by the worker.
        self.dests: dict[int, Outbox] = {}
        self.readers: dict[str, list[int]] = {name: list(dsts) for name, dsts in spec.outputs_to.items()}

    def open_readers(self, transport: Transport, run_dir: RunDir) -> None:
        """START: every worker is ready, so the channels toward the reading contexts connect now."""
        for dst, dest in self.dests.items():
            if dst != MERGER and dest.sender is None:
                dest.sender = transport.sender(run_dir.peer(dst, self.spec.index), bind=False)

    def stop_at(self, origin: int, exc: EventFileError) -> None:
        """A bad input line at `origin`: what it caused and everything after it never goes out."""
        if origin < self.err_origin:
            self.err_origin = origin
            self.route()
            self.dests[MERGER].add((wire.ERROR, origin, wire.encode_diagnostic(exc.diagnostics[0])))

    def tick(self, origin: int, now_ms: int) -> None:
        """A live run's wall-clock tick, from the router or from an upstream context (the first
        to arrive counts): close the idle sessions, then pass it on ahead of any progress."""
        if origin <= self.last_tick:
            return
        self.last_tick = origin
        self.route()
        if self.sessions:
            self.flow.expire_sessions(now_ms, origin)
            self.route()
        for dst, dest in self.dests.items():
            if dst != MERGER:
                dest.add((wire.TICK, origin, now_ms))

    def eos(self, source: str, flush_origin: int) -> None:
        if self.progress.get(source) == ENDED:
            return
        self.route()
        self.progress[source] = ENDED
        self.flush_origin = flush_origin
        ended = self.flow.end(source, flush_origin)
        self.flushing = True
        self.route()
        for name in ended:
            self.ended.add(name)
            self.sent[name] = ENDED
            if name in self.spec.silent:
                continue
            frame = (wire.EOS, name, flush_origin)
            self.dests[MERGER].add(frame)
            for dst in self.readers.get(name, ()):
                self.dests[dst].add(frame)

    def route(self) -> None:
        """Hand what the streams emitted to the merger and to the contexts reading them."""
        emitted = self.emitted
        if not emitted:
            return
        if self.meter is not None:
            self.meter.observe(emitted)
        # The reading contexts' records first: a message toward the merger sealed here says, with
        # its outputs, how many records went toward each reader (`SENT`), these included.
        readers = self.readers
        if readers:
            dests = self.dests
            for o in emitted:
                dsts = readers.get(o.stream)
                if dsts is None or o.kind != "record":
                    continue
                # A pool's records carry their order key: the reader merges the pool's workers.
                origin = o.origin if self.spec.workers == 1 else [o.origin, o.seq]
                for dst in dsts:
                    dests[dst].add_record(o.stream, o.ts, origin, o.fields)
        merger = self.dests[MERGER]
        batch = self.batch
        if self.spec.jsonl_out:
            # Only records are printed; written here, they cost the merger nothing but ordering.
            flat: list[Any] = []
            for o in emitted:
                if o.kind == "record":
                    flat += (o.origin, o.stream_index, o.seq, jsonl_line(o))
            if flat:
                merger.add((wire.LINES_OUT, flat))
                merger.count += len(flat) // 4
                if merger.count >= batch:
                    merger.seal()
        else:
            for start in range(0, len(emitted), batch):
                chunk = emitted[start:start + batch]
                wire.encode_outputs(chunk, merger.shapes, merger.frames)
                merger.count += len(chunk)
                if merger.count >= batch:
                    merger.seal()
        if self.sinks:
            self._to_sinks(emitted)
        emitted.clear()

    def report_sent(self, merger: Outbox) -> None:
        """With a message toward the merger: the records each numbered channel toward a reader has
        taken so far, the outputs this message carries included. If this process dies, what a
        reader did not get of them is lost, and the supervisor counts it (RUN.md §6)."""
        attested = self.attested
        for dst, box in self.dests.items():
            if box.numbered:
                produced = box.produced()
                if produced != attested.get(dst):
                    attested[dst] = produced
                    merger.add((wire.SENT, dst, produced, box.born))

    def _to_sinks(self, emitted: list[Output]) -> None:
        """Each hosted stream's records to its `.to` sinks, in the stream's order."""
        grouped: dict[str, list[Output]] = {}
        for o in emitted:
            if o.kind == "record" and o.stream in self.sinks:
                grouped.setdefault(o.stream, []).append(o)
        for name, records in grouped.items():
            for part in self.sinks[name]:
                part.write_batch(records, self.flushing)

    def close_sinks(self) -> int:
        """Every hosted stream has ended: the sinks deliver what they hold before the worker says so.
        Returns how many records this process's sinks dead-lettered (counted here, after the fork)."""
        sinks, self.sinks = self.sinks, {}
        for parts in sinks.values():
            for part in parts:
                part.close()
        counters = {id(c): c for ds in self.spec.sinks.values() for d in ds
                    if (c := getattr(d, "dead_letters", None)) is not None and hasattr(c, "total")}
        return sum(int(c.total) for c in counters.values())

    def pass_progress(self) -> None:
        """Pass on the progress of every hosted stream whose source moved on."""
        progress = self.progress
        sent = self.sent
        cap = self.err_origin - 1
        moved: dict[int, list[str]] = {}
        for name, root in self.root.items():
            if name in self.ended:
                continue
            n = min(progress[root], cap)
            if n > sent[name]:
                sent[name] = n
                moved.setdefault(n, []).append(name)
        for n, names in moved.items():
            frame = (wire.PROGRESS, names, n)
            self.dests[MERGER].add(frame)
            by_dst: dict[int, list[str]] = {}
            for name in names:
                for dst in self.readers.get(name, ()):
                    by_dst.setdefault(dst, []).append(name)
            for dst, lst in by_dst.items():
                self.dests[dst].add((wire.PROGRESS, lst, n))

    def resend(self, dst: int) -> None:
        """Context `dst` was restarted: shapes again, then where the streams it reads stand."""
        dest = self.dests.get(dst)
        if dest is None:
            return
        dest.reshape()
        moving: dict[int, list[str]] = {}
        for name, dsts in self.readers.items():
            if dst not in dsts:
                continue
            if name in self.ended:
                dest.add((wire.EOS, name, self.flush_origin))
            elif self.sent[name]:
                moving.setdefault(self.sent[name], []).append(name)
        for n, names in moving.items():
            dest.add((wire.PROGRESS, names, n))

    def pump(self) -> None:
        """Send what the channels take. In a live run the merger's message goes first: a record
        reaches a reading context only after the message toward the merger that accounts for it
        (its outputs, what was taken to make them) has gone, so a death never makes the two differ."""
        merger = self.dests[MERGER]
        merger.pump()
        if merger.outbox and self.spec.prompt:
            return
        for d in self.dests.values():
            if d is not merger:
                d.pump()

    def seal_all(self) -> None:
        for d in self.dests.values():
            d.seal()
        self.merger_sealed = time.monotonic()

    def seal_turn(self) -> None:
        merger = self.dests[MERGER]
        now = time.monotonic()
        if (merger.frames and merger.count < self.batch and now - self.merger_sealed < FLUSH_S
                and all(frame[0] in _DEFERRABLE for frame in merger.frames)):
            peers = [d for key, d in self.dests.items() if key != MERGER]
            if not self.spec.prompt:
                for d in peers:
                    d.seal()
                return
            # A live run: no reading context gets records ahead of the merger's message that
            # accounts for them (exact loss accounting), so they wait together, unless a full
            # batch toward a reader is ready to go: then everything goes, the merger's first.
            if not any(d.outbox for d in peers):
                return
        self.seal_all()
