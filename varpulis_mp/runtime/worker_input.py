"""A worker's incoming side: raw lines, blocks and records, and what it took of each channel.

Owns `WorkerInput`, the part of a worker (runtime/worker.py) that parses the raw input lines the
router forwards (a block at a time through the learned shapes, line by line from a bad line on),
takes whole input blocks (block ingress, runtime/blocks.py), pushes the records of upstream
contexts, and keeps the loss accounting of a live run's numbered channels (RUN.md §6): the last
record number taken on each (`CONSUMED`, reported with each message toward the merger, after the
outputs it made), the first numbers this process got (`RESUMED`), and records of a shape only a
dead predecessor knew (`LOST`, never a crash).
"""

from __future__ import annotations

from typing import Any

from varpulis_mp.errors import EventFileError
from varpulis_mp.io.readers import EventParser
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.blocks import BlockTaker
from varpulis_mp.runtime.pool_input import PooledStream
from varpulis_mp.runtime.shapes import LearnedShapes
from varpulis_mp.runtime.transport import Outbox
from varpulis_mp.runtime.worker_output import ENDED, MERGER, WorkerOutput

__all__ = ["WorkerInput"]


class WorkerInput(WorkerOutput):
    # The worker's state this side reads and moves (set by runtime/worker.py's `_Worker`).
    types: frozenset[str]
    parser: EventParser
    shapes: LearnedShapes
    batch_time: int
    taker: BlockTaker | None
    taken: dict[str, dict[str, int]]
    reported: dict[str, dict[str, int]]
    received: dict[str, dict[str, int]]
    senders: dict[str, int | None]  # channel -> the sending process whose numbering `taken` follows
    pooled: dict[str, PooledStream]

    def _seq(self, channel: str, counts: dict[str, int], sender: int | None) -> bool:
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
        merger = self.dests[MERGER]
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

    def _report_taken(self, merger: Outbox) -> None:
        for channel in self.taken:
            self._report_channel(merger, channel)

    def _report_channel(self, merger: Outbox, channel: str) -> None:
        taken = self.taken[channel]
        if taken != self.reported[channel]:
            self.reported[channel] = dict(taken)
            merger.add((wire.CONSUMED, channel, self.reported[channel], dict(self.received[channel])))

    def _lines(self, frame: list[Any]) -> None:
        """Parse and push a LINES frame's raw lines: one block for the parser's fast path, each event
        found again by its index in the block."""
        _, type_name, origin_base, line_base, batch_time, idx, text = frame
        limit = self.err_origin
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
        push = self.flow.push_event
        route = self._route
        emitted = self.emitted
        batch = self.batch
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

    def _block(self, frame: list[Any]) -> None:
        _, first, last, checker, odd, text = frame
        taker = self.taker
        if taker is None:
            raise wire.WireError("a BLOCK frame reached a worker without block ingress")
        taker.take(first, checker == self.spec.index, odd, text)
        progress = self.progress
        for src in self.spec.event_types:
            if progress.get(src, ENDED) < last:
                progress[src] = last

    def _one_by_one(self, type_name: str, origins: list[int], linenos: list[int], texts: list[str]) -> None:
        parse = self.parser.parse_line
        for origin, lineno, text in zip(origins, linenos, texts, strict=True):
            try:
                event = parse(text, lineno)
            except EventFileError as exc:
                self._bad_line(origin, exc)
                return
            if event is not None and type_name in self.types:
                self.flow.push_event(origin, type_name, event.ts, event.fields)

    def _set_batch_time(self, t: int) -> None:
        # The parser keeps the BATCH time the router saw before this line; replaying a BATCH
        # line is the parser's own way to set it.
        self.parser.line_type_at(f"BATCH {t}", 0)
        self.batch_time = t

    def _bad_line(self, origin: int, exc: EventFileError) -> None:
        if origin < self.err_origin:
            self.err_origin = origin
            self._route()
            merger = self.dests[MERGER]
            merger.add((wire.ERROR, origin, wire.encode_diagnostic(exc.diagnostics[0])))

    def _records(self, frame: list[Any], dec: wire.ShapeDecoder, channel: str) -> None:
        _, stream, sid, times, origins, rows = frame
        # Numbered channels: the record number taken moves with the outputs routed, so that what
        # the merger is told was consumed always comes with (after) the outputs it made.
        taken = self.taken.get(channel)
        base = taken.get(stream, 0) if taken is not None else 0
        names = dec.names.get(sid)
        if names is None:
            # Announced to a predecessor of this process only (it was restarted): counted, not read.
            if taken is not None:
                taken[stream] = base + len(rows)
            self.dests[MERGER].add((wire.LOST, channel, stream, len(rows)))
            return
        pooled = self.pooled.get(stream)
        if pooled is not None:  # from a pool: held until every worker of it has moved on
            pooled.add(times, origins, names, rows)
            received = self.received.get(channel)
            if taken is not None and received is not None:
                taken[stream] = base + len(rows)
                received[stream] = received.get(stream, 0) + len(rows)
            return
        push = self.flow.push_record
        limit = self.err_origin
        route = self._route
        emitted = self.emitted
        batch = self.batch
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
            self._eos(stream, flush_origin)

    def _release_pooled(self, stream: str, upto: int) -> None:
        push = self.flow.push_record
        limit = self.err_origin
        emitted = self.emitted
        for origin, _key, _n, ts, fields in self.pooled[stream].take(upto):
            if origin >= limit:
                continue
            push(origin, stream, ts, fields)
            if len(emitted) >= self.batch:
                self._route()
        if upto != ENDED and self.progress.get(stream, ENDED) < upto:
            self.progress[stream] = upto
