"""A pool worker's share of its input rows, taken before they are parsed (RUN.md §7, speed).

Owns the one shortcut of a pool's worker: for an event type whose readers in the worker keep
windows by a key field and need nothing of the other keys' records (engine/pool.py `row_owner`:
count windows, no operation before the window), the rows the learned shape matched are sorted
out by the text of their key field, before any value is built, and only those of keys this worker
owns are parsed and pushed. A key's text is decided once (parsed as the event would be, then
hashed, `lang/key_hash.py`); the rows of other keys cost a dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress
from typing import Any

from varpulis_mp.runtime.shapes import LearnedShapes, Rows

__all__ = ["OwnedRows"]


class OwnedRows:
    """`keep(type, rows, idx, now)`: the rows (and their line indexes) of keys this worker owns."""

    def __init__(self, shapes: LearnedShapes, owners: dict[str, tuple[str, Callable[[Any], bool]]]) -> None:
        self.shapes = shapes
        self.owners = owners  # event type -> (key field, owns(key value))
        self.decided: dict[str, dict[str, bool]] = {t: {} for t in owners}  # type -> key text -> owned

    def keep(self, type_name: str, rows: Rows, idx: list[int], now: Callable[[], int]) -> tuple[Rows, list[int]]:
        owner = self.owners.get(type_name)
        if owner is None:
            return rows, idx
        col = self.shapes.column(type_name, owner[0])
        if col is None:
            return rows, idx
        decided = self.decided[type_name]
        flags: list[bool | None] = list(map(decided.get, [row[col] for row in rows]))
        if None in flags:
            for k, flag in enumerate(flags):
                if flag is None:
                    text = rows[k][col]
                    flags[k] = decided.get(text)
                    if flags[k] is None:
                        flags[k] = decided[text] = self._owns(type_name, rows[k], owner, now)
        if all(flags):
            return rows, idx
        return list(compress(rows, flags)), list(compress(idx, flags))

    def _owns(self, type_name: str, row: tuple[str, ...], owner: tuple[str, Callable[[Any], bool]],
              now: Callable[[], int]) -> bool:
        found: list[dict[str, object]] = []
        self.shapes.feed(type_name, [row], [0], 0, now, lambda _o, _ts, fields: found.append(fields))
        return owner[1](found[0].get(owner[0]))
