"""A worker's incoming side: raw lines, blocks and records, and what it took of each channel.

Owns `WorkerInput`, the part of a worker (runtime/worker.py) that parses the raw input lines the
router forwards (a block at a time through the learned shapes, line by line from a bad line on),
takes whole input blocks (block ingress, runtime/blocks.py), pushes the records of upstream
contexts (a pool's merged back into one order, runtime/pool_input.py) and moves the progress and
ends they carry, and keeps the loss accounting of a live run's numbered channels (RUN.md §6): the
last record number taken on each (`CONSUMED`, reported with each message toward the merger, after
the outputs it made), the first numbers this process got (`RESUMED`), and records of a shape only
a dead predecessor knew (`LOST`, never a crash). What the streams emit goes out through the
worker's `WorkerOutput` (runtime/worker_output.py), which this side holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from varpulis_mp.errors import EventFileError
from varpulis_mp.io.readers import EventParser
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.blocks import BlockTaker
from varpulis_mp.runtime.pool_input import PooledStream
from varpulis_mp.runtime.pool_rows import OwnedRows
from varpulis_mp.runtime.shapes import LearnedShapes
from varpulis_mp.runtime.transport import Outbox
from varpulis_mp.runtime.worker_output import ENDED, MERGER, WorkerOutput

if TYPE_CHECKING:
    from varpulis_mp.runtime.worker import WorkerSpec

__all__ = ["WorkerInput"]


class WorkerInput:
    def __init__(self, program: CheckedProgram, spec: WorkerSpec, outgoing: WorkerOutput) -> None:
        self.spec = spec
        self.outgoing = outgoing
        self.types = frozenset(spec.event_types)
        self.parser = EventParser(spec.display_path, [s.name for s in program.streams])
        self.shapes = LearnedShapes()
        self.batch_time = 0
        self.taker: BlockTaker | None = None  # block ingress (`take_blocks`)
        # Numbered input channels (a live run): channel -> stream -> last record number taken.
        self.taken: dict[str, dict[str, int]] = {}
        self.reported: dict[str, dict[str, int]] = {}  # what CONSUMED last said
        self.received: dict[str, dict[str, int]] = {}  # channel -> stream -> records this process read
        # channel -> the sending process whose numbering `taken` follows
        self.senders: dict[str, int | None] = {}
        # Streams that the workers of a pool send: merged back into one order (runtime/pool_input.py).
        self.pooled = {name: PooledStream(srcs) for name, srcs in spec.inputs_from.items() if len(srcs) > 1}

    def take_blocks(self) -> None:
        """Block ingress: whole input blocks, matched with the learned shapes and pushed as rows
        (runtime/blocks.py); a type whose rows one pool worker owns by key is matched for those."""
        spec = self.spec
        out = self.outgoing
        flow = out.flow
        pushers = {t: flow.pusher(t) for t in spec.event_types}
        self.taker = BlockTaker(spec.index, spec.event_types, spec.owners, self.parser, flow.push_event, pushers,
                                out.stop_at, out.emitted, out.batch, out.route)
        owned = {t: found for t in spec.event_types if (found := flow.owner_of_rows(t)) is not None}
        if owned:
            self.taker.owned = OwnedRows(self.taker.shapes, owned)

    def progress_frame(self, frame: list[Any], channel: str) -> None:
        """PROGRESS: the sources named have passed origin `n` (a pool's: once all its workers have)."""
        progress = self.outgoing.progress
        n = frame[2]
        for src in frame[1]:
            if src in self.pooled:
                self._pool_progress(src, channel, n)
            elif progress.get(src, ENDED) < n:
                progress[src] = n

    def end_frame(self, frame: list[Any], channel: str) -> None:
        """EOS: a stream read here has ended (a pool's: once all its workers have ended it)."""
        if frame[1] in self.pooled:
            # A given-up pool worker's end comes from the supervisor, naming the worker.
            self._pool_end(frame[1], f"p{frame[3]}" if len(frame) > 3 else channel, frame[2])
        else:
            self.outgoing.eos(frame[1], frame[2])

    def seq(self, channel: str, counts: dict[str, int], sender: int | None) -> bool:
        """A numbered message: its records follow `counts` records of each stream that the sending
        process `sender` (when it made the channel: a later process has a larger one) sent on the
        channel. False: a message of a process already replaced here, dropped unread (what it
        carries the supervisor counted lost)."""
        taken = self.taken.get(channel)
        current = self.senders.get(channel)
        if taken is not None and sender == current:
            taken.update(counts)
            return True
        if current is not None and sender is not None and sender < current:
            return False  # ZeroMQ reads a dead sender's connection and its replacement's in turn
        merger = self.outgoing.dests[MERGER]
        if taken is not None:
            # A restarted sender numbers from 0 again. What its predecessor's messages gave this
            # process is final now: said first, so the supervisor knows what that one sent in vain.
            self._report_channel(merger, channel)
        merger.add((wire.RESUMED, channel, counts, sender))
        self.taken[channel] = dict(counts)
        self.senders[channel] = sender
        self.reported[channel] = {}
        self.received.setdefault(channel, {})
        return True

    def report_taken(self, merger: Outbox) -> None:
        for channel in self.taken:
            self._report_channel(merger, channel)

    def _report_channel(self, merger: Outbox, channel: str) -> None:
        taken = self.taken[channel]
        if taken != self.reported[channel]:
            self.reported[channel] = dict(taken)
            merger.add((wire.CONSUMED, channel, self.reported[channel], dict(self.received[channel])))

    def lines(self, frame: list[Any]) -> None:
        """Parse and push a LINES frame's raw lines: one block for the parser's fast path, each event
        found again by its index in the block."""
        _, type_name, origin_base, line_base, batch_time, idx, text = frame
        out = self.outgoing
        limit = out.err_origin
        if not idx or origin_base + idx[0] >= limit:
            return  # none after a bad line is processed
        if batch_time != self.batch_time:
            self._set_batch_time(batch_time)
        shapes = self.shapes
        rows = shapes.rows(type_name, text)
        if type_name not in self.types:
            # Events no stream reads, sent here to be checked: only a bad line matters.
            if rows is not None:
                return  # every line matched a shape the parser accepted: all valid
            try:
                self.parser.count_block(text, 0)
            except EventFileError:
                self._one_by_one(type_name, [origin_base + i for i in idx], [line_base + i for i in idx],
                                 text.split("\n"))
                return
            shapes.learn(self.parser, type_name, text)
            return
        push = out.flow.push_event
        route = out.route
        emitted = out.emitted
        batch = out.batch
        parser = self.parser
        done = 0  # lines handled so far
        try:
            if rows is not None:
                events = shapes.events(type_name, rows, lambda: parser.batch_time)
            else:
                events = parser.parse_block(text, 0)
            for event in events:
                k = event.line
                origin = origin_base + idx[k]
                if origin >= limit:
                    return
                push(origin, type_name, event.ts, event.fields)
                done = k + 1
                if len(emitted) >= batch:
                    route()
        except EventFileError:
            # Positions in a block are indexes into it: go on line by line from the first line not
            # handled, so the bad line is reported at its own line and origin.
            rest = idx[done:]
            texts = text.split("\n")[done:]
            self._one_by_one(type_name, [origin_base + i for i in rest], [line_base + i for i in rest], texts)
            return
        shapes.learn(parser, type_name, text)

    def block(self, frame: list[Any]) -> None:
        _, first, last, checker, odd, text, groups = frame
        taker = self.taker
        if taker is None:
            raise wire.WireError("a BLOCK frame reached a worker without block ingress")
        taker.take(first, checker == self.spec.index, odd, text, groups)
        progress = self.outgoing.progress
        for src in self.spec.event_types:
            if progress.get(src, ENDED) < last:
                progress[src] = last

    def _one_by_one(self, type_name: str, origins: list[int], linenos: list[int], texts: list[str]) -> None:
        parse = self.parser.parse_line
        push = self.outgoing.flow.push_event
        read = type_name in self.types
        for origin, lineno, text in zip(origins, linenos, texts, strict=True):
            try:
                event = parse(text, lineno)
            except EventFileError as exc:
                self.outgoing.stop_at(origin, exc)
                return
            if event is not None and read:
                push(origin, type_name, event.ts, event.fields)

    def _set_batch_time(self, t: int) -> None:
        # The parser keeps the BATCH time the router saw before this line; replaying a BATCH
        # line is the parser's own way to set it.
        self.parser.line_type_at(f"BATCH {t}", 0)
        self.batch_time = t

    def records(self, frame: list[Any], dec: wire.ShapeDecoder, channel: str) -> None:
        _, stream, sid, times, origins, rows = frame
        out = self.outgoing
        # Numbered channels: the record number taken moves with the outputs routed, so that what
        # the merger is told was consumed always comes with (after) the outputs it made.
        taken = self.taken.get(channel)
        base = taken.get(stream, 0) if taken is not None else 0
        names = dec.names.get(sid)
        if names is None:
            # Announced to a predecessor of this process only (it was restarted): counted, not read.
            if taken is not None:
                taken[stream] = base + len(rows)
            out.dests[MERGER].add((wire.LOST, channel, stream, len(rows)))
            return
        pooled = self.pooled.get(stream)
        if pooled is not None:  # from a pool: held until every worker of it has moved on
            pooled.add(times, origins, names, rows)
            received = self.received.get(channel)
            if taken is not None and received is not None:
                taken[stream] = base + len(rows)
                received[stream] = received.get(stream, 0) + len(rows)
            return
        push = out.flow.push_record
        limit = out.err_origin
        route = out.route
        emitted = out.emitted
        batch = out.batch
        received = self.received.get(channel)
        got = received.get(stream, 0) if received is not None else 0
        for k, (ts, origin, row) in enumerate(zip(times, origins, rows, strict=True)):
            if origin >= limit:
                continue
            push(origin, stream, ts, dict(zip(names, row, strict=False)))
            if len(emitted) >= batch:
                if taken is not None and received is not None:
                    taken[stream] = base + k + 1
                    received[stream] = got + k + 1
                route()
        if taken is not None and received is not None:
            taken[stream] = base + len(rows)
            received[stream] = got + len(rows)

    def _pool_progress(self, stream: str, channel: str, n: int) -> None:
        """A pool's worker says where it stands on `stream`: release what every worker passed."""
        upto = self.pooled[stream].moved(channel, n)
        if upto is not None:
            self._release_pooled(stream, upto)

    def _pool_end(self, stream: str, channel: str, flush_origin: int) -> None:
        """A pool's worker has ended `stream`; once all have, the stream ends here."""
        upto = self.pooled[stream].moved(channel, ENDED)
        if upto is None:
            return
        self._release_pooled(stream, upto)
        if upto == ENDED:
            self.outgoing.eos(stream, flush_origin)

    def _release_pooled(self, stream: str, upto: int) -> None:
        out = self.outgoing
        push = out.flow.push_record
        limit = out.err_origin
        emitted = out.emitted
        batch = out.batch
        for origin, _key, _n, ts, fields in self.pooled[stream].take(upto):
            if origin >= limit:
                continue
            push(origin, stream, ts, fields)
            if len(emitted) >= batch:
                out.route()
        if upto != ENDED and out.progress.get(stream, ENDED) < upto:
            out.progress[stream] = upto
