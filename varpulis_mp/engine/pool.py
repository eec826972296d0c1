"""One worker's share of a pool: which records it keeps, and the order keys of what it emits.

Owns the engine's side of RUN.md §7. Every worker of a pool receives everything its context
receives and runs the operations of its streams, but keeps state only for what it owns, by the
stream's *role*:

* `hash` (a `consistent_hash` stream fed whole): the operations before the window run everywhere,
  so every worker sees every record's time and the watermark is the global one; only the worker
  `key_hash` gives a key keeps its windows (late records are counted there too). The errors of the
  operations before the window are counted by worker 0 alone, which sees every record as the
  others do.
* `origin` (a `round_robin` stream fed whole): worker `origin % N` takes all records of an origin,
  so their order within the origin holds.
* `first` (a `single` stream fed whole): worker 0 takes everything.
* `pass`: the stream reads a stream of the same worker that is split already; it has no window
  (see `pool_roles`) and takes what it gets.
* `replicated`: a same-pool reader needs the stream whole (a window downstream), so every worker
  runs it whole; worker 0 alone emits it and counts its errors.

Order: one process emits a stream's items at one origin in its own order (`seq`). A `hash` stream's
items get the key `(input index within the origin, result time, first position of the key, n)`,
the order of simultaneous closes (VPL.md §8.7) written so that workers agree without talking: a
key's place is the position (origin, input index) of its first record that reached the window,
which only its owner needs to know. A `pass` stream's record carries the key of the record that
caused it. The merger and the reading contexts sort by (origin, stream, key).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal

from varpulis_mp.engine.operators import StreamRunner
from varpulis_mp.engine.output import Counters
from varpulis_mp.engine.plan import topo_order
from varpulis_mp.engine.window_base import Closed
from varpulis_mp.engine.window_count import CountWindow, SlidingCountWindow
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.lang.key_hash import worker_for_key
from varpulis_mp.lang.values import ExprError, key_of

__all__ = ["PoolPart", "Role", "pool_roles", "row_owner"]

Role = Literal["hash", "origin", "first", "replicated", "pass"]
_BY_STRATEGY: dict[str, Role] = {"consistent_hash": "hash", "round_robin": "origin", "single": "first"}


def pool_roles(program: CheckedProgram, streams: Collection[str], strategies: dict[str, str]) -> dict[str, Role]:
    """The role of each stream of a pool (see the module docstring), from the plan's strategies."""
    hosted = set(streams)
    info = {s.name: s for s in program.streams if s.name in hosted}
    order = [name for name in topo_order(program) if name in hosted]  # sources first
    readers: dict[str, list[str]] = {}
    for name in order:
        if info[name].source in hosted:
            readers.setdefault(info[name].source, []).append(name)
    # needs_whole[s]: s, or a same-pool stream downstream of it through streams without windows,
    # keeps state across records, so s must see every record of its source (readers first).
    needs_whole: dict[str, bool] = {}
    for name in reversed(order):
        needs_whole[name] = info[name].window is not None or any(needs_whole[r] for r in readers.get(name, ()))
    roles: dict[str, Role] = {}
    for name in order:
        src = info[name].source
        if src in hosted and roles[src] != "replicated":
            roles[name] = "pass"
        elif any(needs_whole[r] for r in readers.get(name, ())):
            roles[name] = "replicated"
        else:
            roles[name] = _BY_STRATEGY[strategies[name]]
    return roles


@dataclass
class _Track:
    """Where a stream stands: the origin and input index of the record being handled, the order
    key of what it emits now, and the last key it gave (for `pass` readers)."""

    origin: int = -1
    idx: int = 0
    sub: tuple[Any, ...] = (0, 0, 0, 0)
    last: Any = None

    def arrive(self, origin: int) -> None:
        if origin == self.origin:
            self.idx += 1
        else:
            self.origin = origin
            self.idx = 0
        self.sub = (self.idx, 0, 0, 0)


@dataclass
class PoolPart:
    """Worker `worker` of a pool of `workers`, with the role of each hosted stream."""

    worker: int
    workers: int
    roles: dict[str, Role]
    _tracks: dict[str, _Track] = field(default_factory=dict)
    # Per `hash` stream: local key rank -> (origin, input index) of the key's first record at the window.
    _places: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def silent(self, name: str) -> bool:
        """Whether this worker keeps `name`'s outputs to itself (another worker emits them)."""
        return self.roles.get(name) == "replicated" and self.worker != 0

    def counters_for(self, name: str, counters: Counters) -> Counters:
        return Counters() if self.silent(name) else counters

    def prepare(self, runner: StreamRunner, runners: dict[str, StreamRunner]) -> None:
        """Before `finalize`: the key filter, the order keys, the counting of the prefix's errors."""
        role = self.roles.get(runner.name)
        if role is None:
            return
        track = self._tracks[runner.name] = _Track()
        count = itertools.count()
        if role == "hash":
            if self.worker != 0:
                runner.pre_counters = Counters()
            runner.key_filter = self._key_filter()
            runner.release_hook = self._release_hook(runner, track)

            def keyed() -> Any:
                track.last = v = (*track.sub, next(count))
                return v

            runner.next_seq = keyed
        elif role == "pass":
            up = self._tracks[runner.source]

            def caused() -> Any:
                track.last = v = (up.last, next(count))
                return v

            runner.next_seq = caused
        else:
            def counted() -> Any:
                track.last = v = next(count)
                return v

            runner.next_seq = counted

    def wrap(self, runner: StreamRunner, event_types: Collection[str]) -> None:
        """After `finalize`: the entry of the stream (who takes which record, input indexes);
        `event_types`: the sources that are input events (one record per origin)."""
        role = self.roles.get(runner.name)
        inner = runner.push
        if role == "origin":
            n, size = self.worker, self.workers

            def by_origin(origin: int, ts: int, f: dict[str, Any]) -> None:
                if origin % size == n:
                    inner(origin, ts, f)

            runner.push = by_origin
        elif role == "first" and self.worker != 0:
            runner.push = _drop
        elif role == "hash":
            self._wrap_hash(runner, inner, runner.source in event_types)

    def _wrap_hash(self, runner: StreamRunner, inner: Callable[[int, int, dict[str, Any]], None],
                   from_events: bool) -> None:
        track = self._tracks[runner.name]
        window = runner.window
        assert window is not None
        rank: dict[Any, int] = window.keys.rank  # type: ignore[attr-defined]
        places = self._places.setdefault(runner.name, [])
        arrive = track.arrive

        def push(origin: int, ts: int, f: dict[str, Any]) -> None:
            arrive(origin)
            before = len(rank)
            inner(origin, ts, f)
            if len(rank) != before:  # a key reached the window for the first time
                places.append((origin, track.idx))

        def push_event(origin: int, ts: int, f: dict[str, Any]) -> None:
            # An input event is the only record of its origin: its input index is always 0.
            before = len(rank)
            inner(origin, ts, f)
            if len(rank) != before:
                places.append((origin, 0))

        flush = runner.flush
        expire = runner.expire_sessions

        def flushed(origin: int) -> None:
            arrive(origin)
            flush(origin)

        def expired(now: int, origin: int) -> None:
            arrive(origin)
            expire(now, origin)

        runner.push = push_event if from_events else push
        runner.flush = flushed  # type: ignore[method-assign]
        runner.expire_sessions = expired  # type: ignore[method-assign]

    def _key_filter(self) -> tuple[dict[Any, bool], Callable[[Any, Any], bool]]:
        decided: dict[Any, bool] = {}
        n, size = self.worker, self.workers

        def decide(tag: Any, kv: Any) -> bool:
            mine = decided[tag] = worker_for_key(kv, size) == n
            return mine

        return decided, decide

    def _release_hook(self, runner: StreamRunner, track: _Track) -> Callable[
            [Callable[[int, list[Closed]], None]], Callable[[int, list[Closed]], None]]:
        """Each closed window is handed on alone, under its order key: count windows close in key
        order (their result time is not their place), time windows and sessions by end, then key."""
        timed = not isinstance(runner.window, (CountWindow, SlidingCountWindow))
        name = runner.name
        places = self._places

        def hook(release: Callable[[int, list[Closed]], None]) -> Callable[[int, list[Closed]], None]:
            window = runner.window
            assert window is not None
            rank: dict[Any, int] = window.keys.rank  # type: ignore[attr-defined]
            mine = places.setdefault(name, [])

            def keyed(origin: int, closed: list[Closed]) -> None:
                for one in closed:
                    kv = one[0]
                    t = type(kv)
                    r = rank[kv if t is str or t is int or t is float else key_of(kv)]
                    place = mine[r] if r < len(mine) else (origin, track.idx)  # placed just now
                    track.sub = (track.idx, one[1] if timed else 0, place[0], place[1])
                    release(origin, [one])

            return keyed

        return hook


def _drop(origin: int, ts: int, f: dict[str, Any]) -> None:
    return None


def row_owner(part: PoolPart, readers: list[StreamRunner]) -> tuple[str, Callable[[Any], bool]] | None:
    """For an input event type read only by `hash` streams with count windows, no operation before
    the window and one key field: whether this worker owns a key value, so that a line of a key it
    does not own can be left unparsed (count windows need no watermark, and the others would drop
    the record at the window anyway). Gives the key field with it; None when the type's lines
    must all be read."""
    if not readers or any(part.roles.get(r.name) != "hash" or r.runs_before_window
                          or not isinstance(r.window, (CountWindow, SlidingCountWindow)) for r in readers):
        return None
    field = readers[0].pkey
    if field is None or any(r.pkey != field for r in readers) or readers[0].key_filter is None:
        return None
    decided, decide = readers[0].key_filter

    def owns(kv: Any) -> bool:
        t = type(kv)
        if t is str or t is int or t is float:
            tag = kv
        else:
            try:
                tag = key_of(kv)
            except ExprError:
                return True  # the stream counts the error (in worker 0)
        mine = decided.get(tag)
        return decide(tag, kv) if mine is None else mine

    return field, owns
