"""The shapes an `.evt` reader learned from the lines it parsed precisely, and their alternation.

Owns `ShapeMemory`: per event type, the last few shapes (evt_fast.py) of text events the precise
parser accepted, the shape of the last line (most lines repeat it), and the block alternation
(`ShapeSet`) of the shapes learned last. The alternation is rebuilt when new shapes appear, but
only after enough lines went through the precise parser to pay for the compilation, so that
files whose shapes keep changing cost at most a small factor more than parsing them precisely.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from varpulis_mp.io.evt_fast import Shape, ShapeSet, compile_shape, fast_kinds, shape_set
from varpulis_mp.io.evt_layout import layout, layout_alternation
from varpulis_mp.io.evt_text import Event

__all__ = ["REBUILD_LINES_PER_GROUP", "ShapeMemory"]

# Shapes kept per event type and in all: bounded so that odd files cannot grow memory without end.
_SHAPES_PER_TYPE = 8
_SHAPES_TOTAL = 512
# Shapes in the block alternation: every match's row holds the groups of all of them.
_SET_SHAPES = 16
# Lines through the precise parser, per group of the alternation to build, that pay for building
# it: compiling costs about as much per group as precisely parsing this many lines.
REBUILD_LINES_PER_GROUP = 10
# Blocks the layout alternation did not cover before the reader stops trying it (the file's lines
# are not spaced alike): each such block costs one more scan.
_MAX_LAYOUT_MISSES = 3
# Only narrows the shapes to try on a line: each shape's pattern checks the whole line itself.
_TYPE_RE = re.compile(r"[ \t]*(?:@[^ \t]*[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)")


class ShapeMemory:
    """What the fast path knows. `last` is the shape of the last line a shape took (None before
    any); `slow` counts the lines that went past every pattern since the alternation was built."""

    def __init__(self) -> None:
        self.last: Shape | None = None
        self.slow = 0
        self._by_type: dict[str, list[Shape]] = {}
        self._known: set[tuple[str, tuple[str, ...], str]] = set()
        # The block alternation: the shapes learned last (oldest first), whether some of them are
        # not in it yet, and the lines `slow` must reach before it is rebuilt.
        self._recent: list[Shape] = []
        self._set: ShapeSet | None = None
        self._stale = False
        self._rebuild_at = 0
        # The first line the precise parser accepted of each shape, and the alternation of their
        # layouts (evt_layout.py) that is tried on a block before the shapes' own (None: none).
        self._samples: dict[tuple[str, tuple[str, ...], str], str] = {}
        self._layouts: re.Pattern[str] | None = None
        self._layout_misses = 0

    def rebuild_due(self) -> bool:
        """Whether new shapes have paid for rebuilding the alternation (see `alternation`)."""
        return self._stale and self.slow >= self._rebuild_at

    def alternation(self) -> ShapeSet | None:
        """The block alternation, rebuilt first when new shapes have paid for it."""
        if self.rebuild_due():
            self._set = shape_set(tuple(self._recent))
            self._stale = False
            self.slow = 0
            self._layouts = self._layout_alternation()
        return self._set

    def layouts(self) -> re.Pattern[str] | None:
        """The alternation of the layouts of the block alternation's shapes, in its order: the
        same rows for every line it matches, in about half the time (evt_layout.py). None before
        the block alternation exists, when the shapes' lines do not begin alike, or once it missed
        too many blocks."""
        return self._layouts if self._layout_misses < _MAX_LAYOUT_MISSES else None

    def layouts_missed(self) -> None:
        """A block the layouts did not cover whole (the shapes' own alternation took it)."""
        self._layout_misses += 1

    def _layout_alternation(self) -> re.Pattern[str] | None:
        found = []
        for shape in self._recent:
            sample = self._samples.get(shape.key)
            made = None if sample is None else layout(shape, sample)
            if made is None:
                return None
            found.append(made)
        return layout_alternation(tuple(found)) if found else None

    def make_known(self, text: str, lineno: int, now: Callable[[], int]) -> Event | None:
        """The event of `text` when a shape learned for its type matches it whole (that shape is
        `last` from now on); None when none does."""
        head = _TYPE_RE.match(text)
        shapes = self._by_type.get(head[1]) if head is not None else None
        if shapes:
            for shape in shapes:
                m = shape.pattern.match(text)
                if m is not None and m.end() == len(text):
                    self.last = shape
                    return shape.make(m.groups(), lineno, now)
        return None

    def learn(self, etype: str, names: tuple[str, ...], text: str) -> None:
        """The shape of `text`, a text event the precise parser accepted with these field names
        (nothing when the fast path cannot take its layout); it becomes `last`."""
        kinds = fast_kinds(etype, names, text)
        if kinds is None:
            return
        key = (etype, names, kinds)
        if key in self._known:
            return
        if len(self._known) >= _SHAPES_TOTAL:
            self._known.clear()
            self._by_type.clear()
            self.last = None
        self._known.add(key)
        if len(self._samples) >= _SHAPES_TOTAL:
            self._samples.clear()
        self._samples.setdefault(key, text)
        shapes = self._by_type.setdefault(etype, [])
        shapes.insert(0, compile_shape(etype, names, kinds))
        if len(shapes) > _SHAPES_PER_TYPE:
            dropped = shapes.pop()
            self._known.discard((dropped.etype, dropped.names, dropped.kinds))
        self.last = shapes[0]
        recent = self._recent
        if all(s.key != key for s in recent):
            recent.append(shapes[0])
            if len(recent) > _SET_SHAPES:
                del recent[0]
        self._stale = True
        self._rebuild_at = REBUILD_LINES_PER_GROUP * (2 + sum(1 + len(s.names) for s in recent))
