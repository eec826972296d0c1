"""Block ingress, a worker's side: keeping its own lines out of whole blocks of input.

With block ingress the router does no work per line: it forwards whole blocks of raw lines to
every worker that reads events (`BLOCK` frames) and each worker keeps what concerns it, so the
cutting runs in parallel too. Origins are then line numbers: events are one per line, so the
canonical order is the same, and every worker knows them without counting. Per block:

* For each event type it reads, a worker takes the *candidate* lines, those that contain the
  type's name: a text event's line holds its type's name literally, so no line of the type is
  missed. The candidates, joined, are matched with the type's learned shape in one call; when all
  of them match they are exactly the type's events. Otherwise they go through the parser, which
  classifies each: events of the type are pushed, events of types nobody reads are checked (and
  counted once: by the lowest-numbered reader of the first read type named on the line), and
  events of other read types are left to their readers.
* In a pool, for a type whose readers only need the events of this worker's keys
  (runtime/pool_rows.py), the key text of every candidate is read first, and only the candidates
  of its own keys are matched and parsed; the others are the business of the workers that own
  their keys, bad lines included. The type's owner still counts all of them.
* The block's checker (the router names one reader per block, in turn) checks the lines that are
  no read type's candidate: comments, empty lines and events of types nobody reads.
* A pool whose lines the router splits by key (runtime/key_routes.py) gets, instead of the block,
  its own groups: per type the lines of its keys with their indexes in the block, and the lines
  nobody reads for the checker. Each line is then this worker's alone: it counts it (rather than
  the type's lowest-numbered reader) and matches it without reading its key again.
* A JSON event names its type literally too, unless it spells a letter of it as a `\\u` escape.
  A block holding `BATCH` or a backslash anywhere (the router says so: `odd`) is classified line
  by line by every worker, each of which thus keeps the BATCH time itself.

A bad line stops the worker at that line (`bad`); the merger takes the first bad line any worker
found, so a line two workers both reject is reported once.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress, repeat
from operator import contains, not_, or_
from typing import Any

from varpulis_mp.errors import EventFileError
from varpulis_mp.io.readers import EventParser
from varpulis_mp.runtime.key_routes import REST
from varpulis_mp.runtime.pool_rows import OwnedRows
from varpulis_mp.runtime.shapes import Learned, LearnedShapes, Rows, learned_shape

__all__ = ["BlockTaker", "UNLIMITED"]

UNLIMITED = 1 << 62

# Blocks of lines nobody reads that the checker's learned shape did not cover, before it stops trying.
_MAX_REST_MISSES = 3

Push = Callable[[int, str, int, dict[str, Any]], None]


def _lines_at(at: list[int], text: str) -> Callable[[int], str]:
    """The line at index i of the block, for a group's lines (`text`) at indexes `at`; the table is
    made only if a line is asked for (the parser's slow path, or learning a shape)."""
    table: dict[int, str] = {}

    def line(i: int) -> str:
        if not table:
            table.update(zip(at, text.split("\n"), strict=True))
        return table[i]

    return line


class BlockTaker:
    """Takes a worker's share of each block; see the module docstring.

    `owners` maps every event type some worker reads to the lowest-numbered such worker, `me` is
    this worker's number. `push(origin, type, ts, fields)` gets this worker's events in line order
    per type (`pushers[type](origin, ts, fields)` does the same for one type), and `route()` is
    called whenever `emitted` holds `batch` outputs or more; `bad(origin, error)` gets the first
    bad line it finds. `events` and `unread` count the events
    this worker is the one to count.
    """

    def __init__(self, me: int, own_types: list[str], owners: dict[str, int], parser: EventParser,
                 push: Push, pushers: dict[str, Callable[[int, int, dict[str, Any]], None]],
                 bad: Callable[[int, EventFileError], None],
                 emitted: list[Any], batch: int, route: Callable[[], None]) -> None:
        self.me = me
        self.own = sorted(own_types)
        self.own_set = frozenset(own_types)
        self.owners = owners
        self.routed = sorted(owners)
        self.parser = parser
        self.shapes = LearnedShapes()
        self.push = push
        self.pushers = pushers  # per own type: push(origin, ts, fields), the fastest way in
        self._bad = bad
        self.emitted = emitted
        self.batch = batch
        self.route = route
        self.limit = UNLIMITED  # the origin of the first bad line found here
        self.events = 0
        self.unread = 0
        # The checker's one-call check of the lines nobody reads: the shape of the first such event.
        self.rest_shape: Learned | None = None
        self.rest_misses = 0
        self.owned: OwnedRows | None = None  # a pool's worker: only the rows of its keys are parsed

    def _now(self) -> int:
        return self.parser.batch_time

    def bad(self, origin: int, error: EventFileError) -> None:
        if origin < self.limit:
            self.limit = origin
            self._bad(origin, error)

    def take(self, first: int, checker: bool, odd: bool, text: str, groups: list[Any] | None = None) -> None:
        """Handle the block `text` whose first line is line (and origin) `first`, or, when the
        router split it among a pool's workers (runtime/key_routes.py), this worker's `groups`."""
        if first >= self.limit:
            return
        if groups is not None:
            self._groups(first, groups)
            return
        if odd:
            self._line_by_line(first, checker, text)
            return
        lines = text.split("\n")
        n = len(lines)
        masks: dict[str, list[bool]] = {}
        for t in (self.routed if checker else self.own):
            masks[t] = list(map(contains, lines, repeat(t)))
        for t in self.own:
            idx = list(compress(range(n), masks[t]))
            if idx:
                self._own_lines(t, first, idx, lines)
        if checker:
            self._check_rest(first, lines, masks)

    def _groups(self, first: int, groups: list[Any]) -> None:
        """A split piece: per type, the lines of this worker's keys with their indexes in the piece,
        in the types' name order, then the lines nobody reads when this worker is the checker.
        Every line here is this worker's alone to handle, and to count."""
        for t, at, text in groups:
            if first + at[-1] >= self.limit:
                keep = [k for k, i in enumerate(at) if first + i < self.limit]
                if not keep:
                    continue  # a later group may still hold lines before the bad one
                parts = text.split("\n")
                at = [at[k] for k in keep]
                text = "\n".join(parts[k] for k in keep)
            lines = _lines_at(at, text)
            if t == REST:
                self._check_lines(first, at, lines, text)
                continue
            rows = self.shapes.rows(t, text)
            if rows is not None:
                self.events += len(rows)
                self._feed(t, first, rows, at)
            else:
                self._parse_lines(t, first, at, lines, text, True)

    # -- the common block ------------------------------------------------------------------------

    def _own_lines(self, t: str, first: int, idx: list[int], lines: list[str]) -> None:
        if first + idx[-1] >= self.limit:
            idx = [i for i in idx if first + i < self.limit]
            if not idx:
                return
        candidates = list(map(lines.__getitem__, idx))
        text = "\n".join(candidates)
        counted = self.owners[t] == self.me
        owned = self.owned
        mine = None if owned is None else owned.mine(t, candidates, idx, text)
        if mine is not None:
            # Every candidate is a line of t whose key text is known: this worker matches the lines
            # of its own keys only, and each other line is matched (and reported, if bad) by the
            # worker that owns its key.
            own_idx, own_text = mine
            rows = self.shapes.rows(t, own_text) if own_idx else []
            if rows is not None:
                if counted:
                    self.events += len(idx)
                self._feed(t, first, rows, own_idx)
                return
            # A line of an own key that the shape does not cover: the parser reads them all.
        else:
            rows = self.shapes.rows(t, text)
            if rows is not None:
                if counted:
                    self.events += len(rows)
                if owned is not None:  # a pool's worker parses the rows of its own keys only
                    rows, idx = owned.keep(t, rows, idx)
                self._feed(t, first, rows, idx)
                return
        self._parse_lines(t, first, idx, lines.__getitem__, text, counted)

    def _feed(self, t: str, first: int, rows: Rows, idx: list[int]) -> None:
        # In slices of `batch` rows, so what they emit goes out in bounded messages.
        batch = self.batch
        direct = self.pushers[t]
        now = self._now
        feed = self.shapes.feed
        for start in range(0, len(rows), batch):
            feed(t, rows[start:start + batch], idx[start:start + batch], first, now, direct)
            if len(self.emitted) >= batch:
                self.route()

    def _parse_lines(self, t: str, first: int, idx: list[int], lines: Callable[[int], str], text: str,
                     counted: bool) -> None:
        """The candidates of t (`text`, joined; `lines(i)` is the line at index i of the block) that
        the learned shape did not cover, by the parser; `counted`: this worker counts them."""
        parser = self.parser
        done = 0  # candidates handled so far
        try:
            for event in parser.parse_block(text, 0):
                k = event.line
                origin = first + idx[k]
                if origin >= self.limit:
                    return
                self._classified(t, origin, event.type, event.ts, event.fields, lines(idx[k]), counted)
                done = k + 1
        except EventFileError:
            # Positions in the joined text are candidate indexes: go on line by line from the first
            # candidate not handled, so the bad line is reported at its own line.
            for i in idx[done:]:
                origin = first + i
                if origin >= self.limit:
                    return
                try:
                    found = parser.parse_line(lines(i), origin)
                except EventFileError as exc:
                    self.bad(origin, exc)
                    return
                if found is not None:
                    self._classified(t, origin, found.type, found.ts, found.fields, lines(i), counted)
            return
        self.shapes.learn(parser, t, text)

    def _classified(self, t: str, origin: int, etype: str, ts: int, fields: dict[str, Any], line: str,
                    counted: bool) -> None:
        """A candidate line of type `t` that the parser read as an event of type `etype`; `counted`:
        this worker counts the candidates of t."""
        if etype == t:
            self.push(origin, t, ts, fields)
            if len(self.emitted) >= self.batch:
                self.route()
            if counted:
                self.events += 1
        elif etype not in self.owners:
            # Read by nobody: counted once, in the pass of the first read type named on the line
            # (in name order) of that type's lowest-numbered reader.
            if counted and next(r for r in self.routed if r in line) == t:
                self.events += 1
                self.unread += 1

    def _check_rest(self, first: int, lines: list[str], masks: dict[str, list[bool]]) -> None:
        """The checker's share: every line that is no read type's candidate."""
        claimed: Any = None
        for mask in masks.values():
            claimed = mask if claimed is None else map(or_, claimed, mask)
        n = len(lines)
        rest = list(range(n)) if claimed is None else list(compress(range(n), map(not_, claimed)))
        limit = self.limit
        if rest and first + rest[-1] >= limit:
            rest = [i for i in rest if first + i < limit]
        if not rest:
            return
        self._check_lines(first, rest, lines.__getitem__, "\n".join(map(lines.__getitem__, rest)))

    def _check_lines(self, first: int, rest: list[int], lines: Callable[[int], str], text: str) -> None:
        """Check and count the lines nobody reads: `rest`, their indexes in the block (`lines(i)`
        the line at index i), `text` them joined."""
        parser = self.parser
        shape = self.rest_shape
        if shape is not None:
            if shape.covers(text, len(rest)):
                # Every line matched a shape the parser accepted: all are valid events.
                self.events += len(rest)
                self.unread += len(rest)
                return
            self.rest_misses += 1
        try:
            found = parser.count_block(text, 0)
        except EventFileError:
            found = 0
            for i in rest:
                try:
                    if parser.parse_line(lines(i), first + i) is not None:
                        found += 1
                except EventFileError as exc:
                    self.bad(first + i, exc)
                    break
        else:
            self._learn_rest(rest[0], lines)
        self.events += found
        self.unread += found

    def _learn_rest(self, first: int, lines: Callable[[int], str]) -> None:
        if self.rest_misses >= _MAX_REST_MISSES:
            self.rest_shape = None
            return
        if self.rest_shape is not None:
            return
        line = lines(first)
        event = self.parser.parse_line(line, 0)
        if event is not None:
            self.rest_shape = learned_shape(event, line)

    # -- blocks with BATCH lines or JSON events -----------------------------------------------------

    def _line_by_line(self, first: int, checker: bool, text: str) -> None:
        parser = self.parser
        own = self.own_set
        owners = self.owners
        me = self.me
        for k, line in enumerate(text.split("\n")):
            origin = first + k
            if origin >= self.limit:
                return
            try:
                t = parser.line_type_at(line, origin)  # keeps the BATCH time
                if t is None:
                    continue
                if t in own:
                    event = parser.parse_line(line, origin)
                    assert event is not None
                    self.push(origin, t, event.ts, event.fields)
                    if len(self.emitted) >= self.batch:
                        self.route()
                    if owners[t] == me:
                        self.events += 1
                elif checker and t not in owners:
                    parser.parse_line(line, origin)
                    self.events += 1
                    self.unread += 1
            except EventFileError as exc:
                self.bad(origin, exc)
                return
