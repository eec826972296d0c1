"""Per event type, the line shape a worker learned, to parse the router's blocks in one match.

The router sends a worker its lines grouped by event type, so a block usually holds one shape.
The reader's own fast path only builds its combined pattern after lines went the slow way, which
one-type blocks never do; so a worker learns the shape of each type's first accepted line and
matches whole blocks with it. A block the shape does not cover entirely goes to the reader as
before (the only source of diagnostics); a type that misses too often stops trying.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from varpulis_mp.io.evt_fast import ShapeSet, compile_shape, fast_kinds, shape_set
from varpulis_mp.io.readers import Event, EventParser

MAX_MISSES = 3  # blocks of a type its learned shape did not cover before that type stops trying it

Rows = list[tuple[str, ...]]


class LearnedShapes:
    def __init__(self) -> None:
        self._shapes: dict[str, ShapeSet | None] = {}  # None: not fast-path material
        self._misses: dict[str, int] = {}

    def rows(self, type_name: str, text: str) -> Rows | None:
        """The rows of every line of `text` when the learned shape covers them all, else None."""
        shape = self._shapes.get(type_name)
        if shape is None:
            return None
        rows: Rows = shape.pattern.findall(text)
        if len(rows) == text.count("\n") + 1:
            return rows
        self._misses[type_name] = misses = self._misses.get(type_name, 0) + 1
        if misses >= MAX_MISSES:
            self._shapes[type_name] = None
        return None

    def events(self, type_name: str, rows: Rows, now: Callable[[], int]) -> Iterator[Event]:
        """The events of rows from `rows`, numbered by their index in the block."""
        shape = self._shapes[type_name]
        assert shape is not None
        return shape.run(rows, 0, now)

    def feed(self, type_name: str, rows: Rows, idx: list[int], first: int, now: Callable[[], int],
             push: Callable[[int, int, dict[str, object]], None]) -> None:
        """`push(first + idx[k], ts, fields)` for the k-th row of `rows`, building no Event."""
        shape = self._shapes[type_name]
        assert shape is not None and shape.feed is not None
        shape.feed(rows, idx, first, now, push)

    def learn(self, parser: EventParser, type_name: str, text: str) -> None:
        """Learn, once per type, the shape of a block's first line, which the parser has accepted."""
        if type_name in self._shapes:
            return
        first = text.split("\n", 1)[0]
        event = parser.parse_line(first, 0)
        if event is None or event.type != type_name:
            return  # not a line of the type (a comment, say): learn from a later block
        names = tuple(event.fields)
        kinds = fast_kinds(type_name, names, first)
        self._shapes[type_name] = None if kinds is None else shape_set((compile_shape(type_name, names, kinds),))

    def column(self, type_name: str, field: str) -> int | None:
        """Where a row of the learned shape holds `field`'s text (None: no shape, or no such field)."""
        shape = self._shapes.get(type_name)
        if shape is None or len(shape.shapes) != 1 or field not in shape.shapes[0].names:
            return None
        return 3 + shape.shapes[0].names.index(field)  # after the time, its unit and the type name
