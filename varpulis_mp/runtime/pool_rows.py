"""A pool worker's share of its input lines, taken before they are parsed (RUN.md §7, speed).

Owns the shortcut of a pool's worker: for an event type whose readers in the worker keep windows
by a key field and need nothing of the other keys' records (engine/pool.py `row_owner`: count
windows, no operation before the window), a block's lines of the type are sorted out by the text
of their key field before the rest of them is even matched, and only those of keys this worker
owns are parsed and pushed. The key texts come from the learned layout cut after the key
(io/evt_layout.py `Layout.keys`, one short match per line); when it does not read every line, the
rows the whole shape matched are sorted out the same way, by their key column. A key's text is
decided once (its value as the row would build it, then hashed, `lang/key_hash.py`); the lines of
other keys cost a dict lookup.

Each line is thus fully matched by one worker, the owner of its key, which is also the one that
reports it if it is bad (its match misses, and the parser reads the block); the merger takes the
first bad line any worker found, so the run stops where one process would.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress
from typing import Any

from varpulis_mp.runtime.shapes import LearnedShapes, Rows

__all__ = ["OwnedRows"]


class OwnedRows:
    """The rows, or before any parse the lines, of the keys this worker owns (see the module docstring)."""

    def __init__(self, shapes: LearnedShapes, owners: dict[str, tuple[str, Callable[[Any], bool]]]) -> None:
        self.shapes = shapes
        self.owners = owners  # event type -> (key field, owns(key value))
        self.decided: dict[str, dict[str, bool]] = {t: {} for t in owners}  # type -> key text -> owned

    def mine(self, type_name: str, lines: list[str], idx: list[int], text: str) -> tuple[list[int], str] | None:
        """Of the candidate `lines` of a block (their indexes `idx`, `text` them joined): the indexes
        and the joined text of the lines of keys this worker owns, when the learned layout reads
        the key text of every line; None when it does not (the block goes the usual way)."""
        owner = self.owners.get(type_name)
        if owner is None:
            return None
        keys = self.shapes.keys(type_name, owner[0], text, len(lines))
        if keys is None:
            return None
        flags = self._flags(type_name, keys)
        if all(flags):
            return idx, text
        return list(compress(idx, flags)), "\n".join(compress(lines, flags))

    def keep(self, type_name: str, rows: Rows, idx: list[int]) -> tuple[Rows, list[int]]:
        """Of the rows the learned shape matched (their line indexes `idx`): those of keys this
        worker owns."""
        owner = self.owners.get(type_name)
        if owner is None:
            return rows, idx
        col = self.shapes.column(type_name, owner[0])
        if col is None:
            return rows, idx
        flags = self._flags(type_name, [row[col] for row in rows])
        if all(flags):
            return rows, idx
        return list(compress(rows, flags)), list(compress(idx, flags))

    def _flags(self, type_name: str, texts: list[str]) -> list[bool]:
        """Whether this worker owns each key text; a text is decided once, from its value as the
        row would build it."""
        decided = self.decided[type_name]
        flags: list[Any] = list(map(decided.get, texts))
        if None in flags:
            field, owns = self.owners[type_name]
            value = self.shapes.value_of(type_name, field)
            assert value is not None  # the texts came from the learned shape, which has the field
            for k, flag in enumerate(flags):
                if flag is None:
                    text = texts[k]
                    found = decided.get(text)
                    if found is None:
                        found = decided[text] = owns(value(text))
                    flags[k] = found
        return flags
