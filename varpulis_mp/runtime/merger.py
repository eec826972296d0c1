"""The output merger: canonical order out of many workers (DESIGN.md §3).

Owns what the supervisor does with the workers' output channels. Each worker sends its Outputs
(records and window lines) followed, in band, by the progress of its streams (`PROGRESS s n`: every
item of stream s with origin <= n has been sent) and, at the end, `EOS s`, its counters and any bad
line it found. The merger holds the Outputs of origins not yet complete and releases origin k, sorted
by (origin, stream index, seq), once every stream's progress has reached k; the end-of-input flush
(origin N+1) once every stream has ended. When the workers write their records as JSON Lines
themselves (`LINES_OUT`), the merger only orders those lines and hands them to `on_lines`. Progress is per stream, not per worker, because contexts
may feed each other in a cycle while streams never do; a stream that the N workers of a pool emit
has a progress per worker (RUN.md §7), and its items sort by the order keys the workers give
them in place of `seq` (engine/pool.py).

A worker that dies and is restarted (runtime/supervision.py) does not stall the merger: its
replacement's progress moves its streams on, and the origins in between are released with what
arrived. The loss accounting frames a worker sends in band (`CONSUMED`, `RESUMED`, `LOST`, `SENT`) go to
`on_accounting`, in the order they came with the outputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from operator import attrgetter, itemgetter
from typing import Any

from varpulis_mp.engine.output import NO_KEY, Counters, Output
from varpulis_mp.errors import Diagnostic
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.pool_input import take_upto

__all__ = ["ENDED", "Merger"]

ENDED = wire.ENDED
_ACCOUNTING = frozenset({wire.CONSUMED, wire.RESUMED, wire.LOST, wire.SENT})


# Within one origin the canonical order is (stream index, seq); attrgetter keeps the sort in C.
_ORDER_IN_ORIGIN = attrgetter("stream_index", "seq")


class Merger:
    """Collects worker messages and hands complete origins to `on_origin_complete`, in order."""

    def __init__(self, stream_names: list[str], n_workers: int, cross_fanout: dict[str, int],
                 on_origin_complete: Callable[[list[Output]], None], skip_empty: bool = False,
                 on_lines: Callable[[list[str]], None] | None = None,
                 pools: dict[str, list[int]] | None = None) -> None:
        self.stream_names = stream_names
        self.on_origin_complete = on_origin_complete
        self.on_lines = on_lines
        # Told of the lines `on_lines` just got, with their origins (the metrics' latency).
        self.on_lines_released: Callable[[list[tuple[int, int, int, str]]], None] | None = None
        self.lines: list[tuple[int, int, int, str]] = []  # (origin, stream index, seq, line)
        self.skip_empty = skip_empty
        # Records of stream index i count fanout[i] cross-context events each.
        self.fanout = [cross_fanout.get(name, 0) for name in stream_names]
        self.any_fanout = any(self.fanout)
        self.progress: dict[str, int] = {name: 0 for name in stream_names}
        # A stream that several workers of a pool emit has a progress per worker (RUN.md §7): an
        # origin is complete once each of them passed it. Keyed by (worker, stream).
        self.slots: dict[tuple[int, str], str] = {}
        for name, workers in (pools or {}).items():
            del self.progress[name]
            for w in workers:
                slot = self.slots[(w, name)] = f"{name}@{w}"
                self.progress[slot] = 0
        self.ended = 0
        self.pending: dict[int, list[Output]] = {}
        self.released = 0  # every origin up to this one has been handed over
        self.decoders = [wire.ShapeDecoder() for _ in range(n_workers)]
        self.counters = Counters()
        self.events = 0  # events counted by the workers (block ingress)
        self.unread = 0
        self.done = [False] * n_workers  # sent its final counters
        self.errors: list[tuple[int, Diagnostic]] = []
        self.failures: dict[int, str] = {}
        self.cross = 0
        self.flush_origin: int | None = None
        self.held = 0  # outputs held now (for tests and metrics)
        self.dead_letters = 0  # records the workers' sinks dead-lettered
        # A live run's subscriptions held by workers: their batches go to the live feed (runtime/relay.py).
        self.on_relayed: Callable[[int, list[Any]], None] | None = None
        self.on_accounting: Callable[[int, list[Any]], None] | None = None
        # Output records by worker and stream, counted when asked (a run that restarts workers:
        # a dead worker's exact counts for the metrics, runtime/restarts.py).
        self.records_by: list[Counter[str]] | None = None

    def handle(self, worker: int, data: bytes) -> None:
        dec = self.decoders[worker]
        for frame in wire.decode(data):
            kind = frame[0]
            if kind == wire.LINES_OUT:
                self._lines_out(frame, worker)
            elif kind == wire.OUTPUTS:
                self._outputs(frame, dec, worker)
            elif kind == wire.PROGRESS:
                progress = self.progress
                n = frame[2]
                slots = self.slots
                for name in frame[1]:
                    if slots:
                        name = slots.get((worker, name), name)
                    if progress[name] < n:
                        progress[name] = n
            elif kind == wire.SHAPE:
                dec.learn(frame)
            elif kind == wire.EOS:
                self._end(self.slots.get((worker, frame[1]), frame[1]))
                self.flush_origin = frame[2]
            elif kind == wire.STATS:
                _, expression_errors, late_events, sessions_closed, events, unread = frame[:6]
                self.dead_letters += frame[6] if len(frame) > 6 else 0
                self.counters.add(Counters(expression_errors, late_events, sessions_closed))
                self.events += events
                self.unread += unread
                self.done[worker] = True
            elif kind == wire.ERROR:
                self.errors.append((frame[1], wire.decode_diagnostic(frame[2])))
            elif kind == wire.FAIL:
                self.failures.setdefault(worker, str(frame[1]))
            elif kind == wire.RELAYED and self.on_relayed is not None:
                self.on_relayed(worker, frame)
            elif kind in _ACCOUNTING:
                if self.on_accounting is not None:
                    self.on_accounting(worker, frame)
            else:
                raise wire.WireError(f"unexpected frame kind {kind!r} from a worker")

    def _outputs(self, frame: list[Any], dec: wire.ShapeDecoder, worker: int) -> None:
        flat = frame[1]
        if self.records_by is not None:
            streams = self.stream_names
            self.records_by[worker].update(streams[i] for i, code in zip(flat[1::8], flat[3::8], strict=True)
                                           if code == 0)
        names = dec.names
        codes = wire.OUTPUT_KINDS
        stream_names = self.stream_names
        pending = self.pending
        released = self.released
        fanout = self.fanout
        cross = 0
        last = -1
        lst: list[Output] = []
        it = iter(flat)
        # zip over one iterator eight times walks the flat list eight items at a time, without slicing.
        for origin, sidx, seq, code, ts, sid, values, key in zip(it, it, it, it, it, it, it, it, strict=True):
            if origin != last:  # outputs of one origin come together: one lookup per run
                if origin <= released:
                    raise wire.WireError(f"output of stream '{stream_names[sidx]}' for origin {origin} "
                                         f"arrived after that origin was complete")
                found = pending.get(origin)
                if found is None:
                    found = pending[origin] = []
                lst = found
                last = origin
            kind, keyed = codes[code]
            lst.append(Output(origin, sidx, seq, stream_names[sidx], kind, ts,
                              dict(zip(names[sid], values, strict=False)), key if keyed else NO_KEY))
            # Counted on arrival: every output that arrives is released, unless the run stops
            # at a bad line, and then no summary is given.
            if code == 0:
                cross += fanout[sidx]
        self.cross += cross
        self.held += len(flat) // wire.OUTPUT_STRIDE

    def _lines_out(self, frame: list[Any], worker: int) -> None:
        flat = frame[1]
        if not flat:
            return
        if self.records_by is not None:
            self.records_by[worker].update(map(self.stream_names.__getitem__, flat[1::4]))
        # Everything per record happens in C: (origin, stream index, seq, line) tuples, sorted at
        # release time.
        if min(flat[0::4]) <= self.released:
            raise wire.WireError("an output arrived after its origin was complete")
        it = iter(flat)
        self.lines += zip(it, it, it, it, strict=True)
        if self.any_fanout:
            self.cross += sum(map(self.fanout.__getitem__, flat[1::4]))
        self.held += len(flat) // 4

    def restarted(self, worker: int) -> None:
        """Worker `worker` has a new process: no final counters, no failure yet. Its shapes are
        kept: a late message of the dead process still reads, and the new one announces its own."""
        self.done[worker] = False
        self.failures.pop(worker, None)

    def _end(self, slot: str) -> None:
        if self.progress[slot] != ENDED:
            self.progress[slot] = ENDED
            self.ended += 1

    def give_up(self, streams: list[str], flush_origin: int, worker: int | None = None) -> None:
        """The streams of a context (of its process `worker` in a pool) given up on end here:
        nothing more of them will come."""
        for name in streams:
            self._end(self.slots.get((worker, name), name) if worker is not None else name)
        if self.flush_origin is None:
            self.flush_origin = flush_origin

    def complete(self) -> int:
        """The largest origin every stream has progressed to (ENDED once all streams ended)."""
        return min(self.progress.values()) if self.progress else ENDED

    def all_ended(self) -> bool:
        return self.ended == len(self.progress)

    def first_error(self) -> tuple[int, Diagnostic] | None:
        return min(self.errors, key=lambda e: e[0]) if self.errors else None

    def release(self, upto: int) -> None:
        """Hand over every origin up to `upto` (inclusive), each once, in order; empty ones too unless
        `skip_empty`."""
        pending = self.pending
        emit = self.on_origin_complete
        k = self.released
        if k >= upto:
            return
        if self.on_lines is not None:
            self._release_lines(upto)
            return
        if self.skip_empty:
            # Only origins with outputs are handed over: a run of empty ones costs nothing.
            ready = [o for o in pending if o <= upto] if len(pending) else []
            ready.sort()
            for o in ready:
                out = pending.pop(o)
                if len(out) > 1:
                    out.sort(key=_ORDER_IN_ORIGIN)
                self.held -= len(out)
                self.released = o
                emit(out)
            self.released = upto
            return
        while k < upto:
            k += 1
            if k not in pending:
                self.released = k
                emit([])
                continue
            out = pending.pop(k)
            if len(out) > 1:
                out.sort(key=_ORDER_IN_ORIGIN)
            self.held -= len(out)
            self.released = k
            emit(out)

    def _release_lines(self, upto: int) -> None:
        """JSON Lines records: every origin up to `upto`, in order, handed over in one call."""
        self.released = upto
        held = self.lines
        if not held:
            return
        # Mostly in order already (each worker sends its origins in order), so the sort is cheap.
        taken = take_upto(held, upto)
        if not taken:
            return
        self.held -= len(taken)
        assert self.on_lines is not None
        self.on_lines(list(map(itemgetter(3), taken)))
        if self.on_lines_released is not None:
            self.on_lines_released(taken)
