"""Per event type, the line shape a worker learned, to parse the router's blocks in one match.

The router sends a worker its lines grouped by event type, so a block usually holds one shape.
The reader's own fast path only builds its combined pattern after lines went the slow way, which
one-type blocks never do; so a worker learns the shape of each type's first accepted line and
matches whole blocks with it. A block the shape does not cover entirely goes to the reader as
before (the only source of diagnostics); a type that misses too often stops trying.

Each learned shape is first tried with the layout of a line of it (io/evt_layout.py: the same
pattern with the spacing fixed, about twice as fast), then with the shape's own pattern; a block
that only the latter covers gives its first line's layout in place of the old one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from varpulis_mp.io.evt_fast import ShapeSet, compile_shape, fast_kinds, shape_set
from varpulis_mp.io.evt_layout import Layout, kind_value, layout
from varpulis_mp.io.readers import Event, EventParser

MAX_MISSES = 3  # blocks of a type its learned shape did not cover before that type stops trying it

Rows = list[tuple[str, ...]]


class Learned:
    """One learned shape (a set of one) and the layout of a line of it."""

    __slots__ = ("layout", "relayouts", "shape")

    def __init__(self, shape: ShapeSet, line: str) -> None:
        self.shape = shape
        self.layout: Layout | None = layout(shape.shapes[0], line)
        self.relayouts = 0

    def rows(self, text: str, n: int) -> Rows | None:
        """The rows of the `n` lines of `text` when the shape covers them all, else None."""
        lay = self.layout
        if lay is not None:
            rows: Rows = lay.pattern.findall(text)
            if len(rows) == n:
                return rows
        rows = self.shape.pattern.findall(text)
        if len(rows) != n:
            return None
        self._relayout(text)
        return rows

    def covers(self, text: str, n: int) -> bool:
        """Whether the shape covers all `n` lines of `text` (subn counts without building groups)."""
        lay = self.layout
        if lay is not None and lay.pattern.subn("", text)[1] == n:
            return True
        if self.shape.pattern.subn("", text)[1] != n:
            return False
        self._relayout(text)
        return True

    def _relayout(self, text: str) -> None:
        # The layout missed a block the shape covered: the file changed its spacing, or the first
        # line had one of its own. A few times at most: past that, the lines' spacing varies and
        # the shape's pattern alone is cheaper than trying a layout first.
        if self.relayouts < MAX_MISSES:
            self.relayouts += 1
            self.layout = layout(self.shape.shapes[0], text.partition("\n")[0])
        else:
            self.layout = None


class LearnedShapes:
    def __init__(self) -> None:
        self._shapes: dict[str, Learned | None] = {}  # None: not fast-path material
        self._misses: dict[str, int] = {}

    def rows(self, type_name: str, text: str) -> Rows | None:
        """The rows of every line of `text` when the learned shape covers them all, else None."""
        learned = self._shapes.get(type_name)
        if learned is None:
            return None
        rows = learned.rows(text, text.count("\n") + 1)
        if rows is not None:
            return rows
        self._misses[type_name] = misses = self._misses.get(type_name, 0) + 1
        if misses >= MAX_MISSES:
            self._shapes[type_name] = None
        return None

    def keys(self, type_name: str, field: str, text: str, n: int) -> list[str] | None:
        """The text of `field` in each of the `n` lines of `text`, where the learned layout reads
        it (io/evt_layout.py `Layout.keys`); None unless it reads it in every line."""
        learned = self._shapes.get(type_name)
        if learned is None or learned.layout is None or field not in learned.shape.shapes[0].names:
            return None
        keys = learned.layout.keys(learned.shape.shapes[0].names.index(field), text)
        return keys if len(keys) == n else None

    def value_of(self, type_name: str, field: str) -> Callable[[str], object] | None:
        """How a row's text of `field` becomes the field's value (None: no shape, or no such field)."""
        learned = self._shapes.get(type_name)
        if learned is None or field not in learned.shape.shapes[0].names:
            return None
        shape = learned.shape.shapes[0]
        return kind_value(shape.kinds[shape.names.index(field)])

    def events(self, type_name: str, rows: Rows, now: Callable[[], int]) -> Iterator[Event]:
        """The events of rows from `rows`, numbered by their index in the block."""
        learned = self._shapes[type_name]
        assert learned is not None
        return learned.shape.run(rows, 0, now)

    def feed(self, type_name: str, rows: Rows, idx: list[int], first: int, now: Callable[[], int],
             push: Callable[[int, int, dict[str, object]], None]) -> None:
        """`push(first + idx[k], ts, fields)` for the k-th row of `rows`, building no Event."""
        learned = self._shapes[type_name]
        assert learned is not None and learned.shape.feed is not None
        learned.shape.feed(rows, idx, first, now, push)

    def learn(self, parser: EventParser, type_name: str, text: str) -> None:
        """Learn, once per type, the shape of a block's first line, which the parser has accepted."""
        if type_name in self._shapes:
            return
        first = text.split("\n", 1)[0]
        event = parser.parse_line(first, 0)
        if event is None or event.type != type_name:
            return  # not a line of the type (a comment, say): learn from a later block
        self._shapes[type_name] = learned_shape(event, first)

    def column(self, type_name: str, field: str) -> int | None:
        """Where a row of the learned shape holds `field`'s text (None: no shape, or no such field)."""
        learned = self._shapes.get(type_name)
        if learned is None or field not in learned.shape.shapes[0].names:
            return None
        return 3 + learned.shape.shapes[0].names.index(field)  # after the time, its unit and the type name


def learned_shape(event: Event, line: str) -> Learned | None:
    """The shape of `line`, which the parser read as `event`, when it is fast-path material."""
    names = tuple(event.fields)
    kinds = fast_kinds(event.type, names, line)
    return None if kinds is None else Learned(shape_set((compile_shape(event.type, names, kinds),)), line)
