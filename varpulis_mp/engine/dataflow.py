"""In-process routing between streams: the engine of one context (or of a whole program).

Owns delivery inside one process (VPL.md §9.2): an input event goes to every hosted stream whose
source is its type; every output record of a hosted stream is handed to `emit` and delivered,
exactly once and in its stream's order, to the hosted streams reading it; records of streams hosted
elsewhere come in through `push_record`. Owns the end-of-input cascade (§10.2): when a source ends,
its hosted readers flush and end, then theirs, sources before readers. Owns the engine's counters
per hosted stream (`stream_counters`: each stream's code counts into its own `Counters`, so a
count costs what it did when they were shared) and their sum (`counters`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from typing import Any

from varpulis_mp.engine.operators import StreamRunner
from varpulis_mp.engine.output import Counters, Output
from varpulis_mp.engine.plan import topo_order
from varpulis_mp.engine.pool import PoolPart, row_owner
from varpulis_mp.lang.checked import CheckedProgram

_NO_READERS: list[StreamRunner] = []

# Records are pushed depth first (a direct call per hop), but a program may chain thousands of
# streams; every this many hops along a chain the hand-over goes through a FIFO queue instead,
# drained before the call that started it returns, so the Python stack stays shallow. A FIFO keeps
# each stream's input in its source's order, as every stream has exactly one source.
CHAIN_CUT = 32


def _discard(_out: Output) -> None:
    return None


class Dataflow:
    """Runs the streams named in `hosted` (None: all) of a checked program.

    Every `Output` of a hosted stream (records and window/session lines) goes to `emit`, in that
    stream's own order. A record reaches the hosted readers of its stream before that stream
    handles anything else, and everything an input causes is done when `push_event` returns.
    `inline` false: windows through their methods only (see `StreamRunner.finalize`), for tests.
    With `pool`, the process is one worker of a pool: each stream keeps what that worker owns and
    numbers its items so that the pool's outputs merge into one process's order (engine/pool.py).
    """

    def __init__(self, program: CheckedProgram, emit: Callable[[Output], None],
                 hosted: Collection[str] | None = None, inline: bool = True,
                 pool: PoolPart | None = None) -> None:
        self.stream_counters: dict[str, Counters] = {}  # hosted stream -> its expression errors, late events...
        self.program = program
        names = [s.name for s in program.streams]
        hosted_set = set(names) if hosted is None else set(hosted)
        unknown = hosted_set.difference(names)
        if unknown:
            raise KeyError(f"unknown stream(s): {', '.join(sorted(unknown))}")
        self.runners: dict[str, StreamRunner] = {}
        for info in program.streams:
            if info.name in hosted_set:
                reported = self.stream_counters[info.name] = Counters()
                # A pool worker that keeps a stream's outputs to itself keeps its counts too.
                own = pool.counters_for(info.name, reported) if pool is not None else reported
                runner = StreamRunner(info, program.constants, own)
                runner.emit = emit if pool is None or not pool.silent(info.name) else _discard
                self.runners[info.name] = runner
        # source name (event type or stream) -> hosted runners reading it, declaration order
        self.readers_of: dict[str, list[StreamRunner]] = {}
        for runner in self.runners.values():
            self.readers_of.setdefault(runner.source, []).append(runner)
            src = self.runners.get(runner.source)
            if src is not None:
                src.readers.append(runner)
        self.queue: deque[tuple[StreamRunner, int, int, dict[str, Any]]] = deque()
        queued = self._chain_cuts()
        self.has_queue = bool(queued)
        self.pool = pool
        event_types = {s.source for s in program.streams if not s.source_is_stream}
        if pool is not None:
            for name in topo_order(program):  # a `pass` stream follows its source's keys
                if name in self.runners:
                    pool.prepare(self.runners[name], self.runners)
        for runner in self.runners.values():
            runner.finalize(self.queue.append, queued, inline)
            if pool is not None:
                pool.wrap(runner, event_types)
        stream_names = set(names)
        self._reads = frozenset(src for src in self.readers_of if src not in self.runners)
        self.event_types = frozenset(src for src in self._reads if src not in stream_names)

    @property
    def counters(self) -> Counters:
        """Every hosted stream's counters added up (a new object: read it, do not count into it)."""
        total = Counters()
        for counters in self.stream_counters.values():
            total.add(counters)
        return total

    def _chain_cuts(self) -> set[StreamRunner]:
        depth: dict[str, int] = {}

        def depth_of(name: str) -> int:
            # Iterative: walk up to a source that is not hosted, then number the way back down.
            path: list[str] = []
            cur = name
            while cur in self.runners and cur not in depth:
                path.append(cur)
                cur = self.runners[cur].source
            d = depth.get(cur, -1)
            for n in reversed(path):
                d += 1
                depth[n] = d
            return depth[name]

        return {r for name, r in self.runners.items() if depth_of(name) and depth_of(name) % CHAIN_CUT == 0}

    def owner_of_rows(self, type_name: str) -> tuple[str, Callable[[Any], bool]] | None:
        """In a pool's worker: whether it owns a key value of `type_name`'s events, when it may skip
        the events of keys it does not own before parsing them (engine/pool.py `row_owner`)."""
        if self.pool is None:
            return None
        return row_owner(self.pool, self.readers_of.get(type_name, []))

    def reads(self) -> frozenset[str]:
        """Event types and streams hosted elsewhere that hosted streams read."""
        return self._reads

    def drain(self) -> None:
        """Deliver the records waiting at chain cuts (a no-op for short chains)."""
        q = self.queue
        while q:
            runner, origin, ts, fields = q.popleft()
            runner.push(origin, ts, fields)

    def push_event(self, origin: int, type_name: str, ts: int, fields: dict[str, object]) -> None:
        for runner in self.readers_of.get(type_name, _NO_READERS):
            runner.push(origin, ts, fields)
        if self.queue:
            self.drain()

    def pusher(self, type_name: str) -> Callable[[int, int, dict[str, object]], None]:
        """`push(origin, ts, fields)` for events of `type_name`: as `push_event`, and the stream's own
        entry point when exactly one hosted stream reads the type and nothing is ever queued."""
        readers = self.readers_of.get(type_name, _NO_READERS)
        if len(readers) == 1 and not self.has_queue:
            return readers[0].push
        push_event = self.push_event

        def push(origin: int, ts: int, fields: dict[str, object]) -> None:
            push_event(origin, type_name, ts, fields)

        return push

    def push_record(self, origin: int, source_stream: str, ts: int, fields: dict[str, object]) -> None:
        for runner in self.readers_of.get(source_stream, _NO_READERS):
            runner.push(origin, ts, fields)
        if self.queue:
            self.drain()

    @property
    def has_sessions(self) -> bool:
        """Whether a hosted stream has a session window (only those need `expire_sessions`)."""
        return any(r.kind == "session" and r.window is not None for r in self.runners.values())

    def expire_sessions(self, now_ms: int, origin: int) -> None:
        """`run` only (VPL.md §8.5): close every session whose key got no record for its gap of
        wall-clock time; `now_ms` is the caller's clock (the engine never reads one), `origin` the
        origin the results carry (the latest input position). Call it at least every gap."""
        for runner in self.runners.values():
            if runner.kind == "session" and runner.window is not None:
                runner.expire_sessions(now_ms, origin)
        if self.queue:
            self.drain()

    def end(self, source: str, origin: int) -> list[str]:
        """`source` (event type or stream hosted elsewhere) has ended: flush and end its hosted
        readers, then cascade. Returns the hosted streams that ended, in the order they ended."""
        ended: list[str] = []
        todo = deque(r for r in self.readers_of.get(source, _NO_READERS) if not r.ended)
        while todo:
            runner = todo.popleft()
            if runner.ended:
                continue
            self.drain()  # every record its source produced has arrived
            runner.flush(origin)
            ended.append(runner.name)
            todo.extend(r for r in runner.readers if not r.ended)
        self.drain()
        return ended

    def end_all(self, origin: int) -> list[str]:
        """End every source read from outside (all event types first, then foreign streams)."""
        ended: list[str] = []
        for src in sorted(self._reads, key=lambda s: (s not in self.event_types, s)):
            ended.extend(self.end(src, origin))
        return ended
