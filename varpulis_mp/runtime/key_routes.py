"""Block ingress for a pool: each worker gets only the lines of its keys (RUN.md §7, speed).

Owns `KeyRoutes`, the router's split of a piece of raw input among the workers of a pool. A pool's
worker says, when it is ready, which of its event types it reads by a key field alone (count
windows with no operation before them: engine/pool.py `row_owner`); when every worker of the pool
says the same, every event type the pool reads is such a type and no process outside the pool
reads it, the router takes over the sorting that each worker would otherwise repeat on every
line of every piece:

* it finds each such type's candidate lines (those that name the type, as the workers do), reads
  their key text with the learned layout cut after the key field (io/evt_layout.py, the workers'
  own shortcut, runtime/pool_rows.py), and decides once per key text which worker owns it, by the
  same stable hash as the workers' windows (lang/key_hash.py);
* each worker of the pool gets, per type, the line numbers and the text of its own keys' lines, and
  the piece's checker also the lines no read type names (the lines nobody reads), so a worker's
  cost follows its share of the input instead of the whole of it.

A piece goes whole to every reader, as without this split, whenever the split cannot be exact: a
type's layout does not read the key of every candidate (a line spaced another way, a bad line, a
line naming two types), a key that is not a string or a number, a piece with a BATCH line or a
backslash (the router already says so: `odd`). The workers then sort it out themselves as before.
Each line of a split piece is thus handled by exactly one worker, which also counts it and reports
it if it is bad; the results are those of one process, as for every pool (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import contains, eq, not_, or_
from typing import Any

from varpulis_mp.errors import EventFileError
from varpulis_mp.io.readers import EventParser
from varpulis_mp.lang.key_hash import worker_for_key
from varpulis_mp.runtime.shapes import LearnedShapes

__all__ = ["KeyRoutes", "PoolRoute", "REST"]

# The group of a split piece that holds the lines nobody reads (no event type has this name).
REST = ""
# Pieces of a type whose keys the layout could not read before the router stops trying to split.
_MAX_MISSES = 3
_KEY_TYPES = (str, int, float)

Group = list[Any]  # [event type or REST, line indexes in the piece, the lines joined]


@dataclass(frozen=True)
class PoolRoute:
    """A pool whose lines the router splits: its processes (worker 0 first) and, per event type
    it reads, the key field."""

    workers: tuple[int, ...]
    fields: dict[str, str]


class KeyRoutes:
    """Splits pieces of raw input among the workers of pools (see the module docstring)."""

    def __init__(self, pools: list[PoolRoute], read_types: Sequence[str], parser: EventParser) -> None:
        self.pools = pools
        self.read_types = sorted(read_types)  # every event type some worker reads
        self.parser = parser
        self.shapes = LearnedShapes()
        self.decided: dict[str, dict[str, int]] = {t: {} for pool in pools for t in pool.fields}
        self.misses = 0

    @classmethod
    def plan(cls, worker_types: Sequence[Sequence[str]], pools: Sequence[Sequence[int]],
             key_fields: dict[int, dict[str, str]], parser: EventParser) -> KeyRoutes | None:
        """The routes of the `pools` (process indexes, worker 0 first) whose lines can be split, from
        what each worker reads (`worker_types`) and the key fields each said it reads by; None
        when there are none."""
        routes = []
        for workers in pools:
            fields = key_fields.get(workers[0]) or {}
            types = set(worker_types[workers[0]])
            if not fields or set(fields) != types:
                continue  # the pool reads a type that every worker must see whole
            if any(key_fields.get(w) != fields or set(worker_types[w]) != types for w in workers):
                continue
            outside = {t for w, ts in enumerate(worker_types) if w not in workers for t in ts}
            if types & outside:
                continue
            routes.append(PoolRoute(tuple(workers), dict(fields)))
        if not routes:
            return None
        return cls(routes, sorted({t for ts in worker_types for t in ts}), parser)

    def workers(self) -> frozenset[int]:
        return frozenset(w for pool in self.pools for w in pool.workers)

    def split(self, text: str, checker: int) -> dict[int, list[Group]] | None:
        """Per worker of the pools: its groups of the piece `text` (its own keys' lines per type, in
        the types' name order, then the lines nobody reads if it is the `checker`); None when the
        piece must go whole to every reader."""
        if self.misses >= _MAX_MISSES:
            return None
        lines = text.split("\n")
        n = len(lines)
        masks = {t: list(map(contains, lines, repeat(t))) for t in self.read_types}
        out: dict[int, list[Group]] = {w: [] for pool in self.pools for w in pool.workers}
        for pool in self.pools:
            size = len(pool.workers)
            for t in sorted(pool.fields):
                idx = list(compress(range(n), masks[t]))
                if not idx:
                    continue
                candidates = list(map(lines.__getitem__, idx))
                owners = self._owners(t, pool.fields[t], size, candidates)
                if owners is None:
                    self.misses += 1
                    return None
                for k, w in enumerate(pool.workers):
                    mine = list(map(eq, owners, repeat(k)))
                    at = list(compress(idx, mine))
                    if at:
                        out[w].append([t, at, "\n".join(compress(candidates, mine))])
        if checker in out:
            claimed: Any = None
            for mask in masks.values():
                claimed = mask if claimed is None else map(or_, claimed, mask)
            rest = list(range(n)) if claimed is None else list(compress(range(n), map(not_, claimed)))
            # Empty lines are no events and no errors: the checker's one-call check skips them.
            rest = list(compress(rest, map(lines.__getitem__, rest)))
            if rest:
                out[checker].append([REST, rest, "\n".join(map(lines.__getitem__, rest))])
        return out

    def _owners(self, t: str, field: str, size: int, candidates: list[str]) -> list[int] | None:
        """The pool worker (0..size-1) of each candidate line of `t`, by its key text; None when the
        learned layout does not read every key, or a key is no string or number."""
        text = "\n".join(candidates)
        keys = self.shapes.keys(t, field, text, len(candidates))
        if keys is None:
            try:
                self.shapes.learn(self.parser, t, text)
            except EventFileError:
                return None  # a bad first line: the workers report it
            keys = self.shapes.keys(t, field, text, len(candidates))
            if keys is None:
                return None
        decided = self.decided[t]
        owners: list[Any] = list(map(decided.get, keys))
        if None in owners:
            value = self.shapes.value_of(t, field)
            if value is None:
                return None
            for k, owner in enumerate(owners):
                if owner is None:
                    key = keys[k]
                    owner = decided.get(key)
                    if owner is None:
                        v = value(key)
                        if type(v) not in _KEY_TYPES:
                            return None
                        owner = decided[key] = worker_for_key(v, size)
                    owners[k] = owner
        return owners
