"""What every window kind shares: the types of window state and closes, the `Window` interface,
and the stream's key order (VPL.md §8.7) that sorts simultaneous closes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

Fields = dict[str, Any]
NewState = Callable[[], Any]
AddFn = Callable[[Any, Fields], None] | None
Closed = tuple[Any, int, Any]  # (key value of the instance's first record, result time, state)


class _KeyOrder:
    """The stream's key order (§8.7): the rank of each key's first non-late arrival at the window."""

    __slots__ = ("rank",)

    def __init__(self) -> None:
        self.rank: dict[Hashable, int] = {}

    def place(self, tag: Hashable) -> int:
        r = self.rank.get(tag)
        if r is None:
            r = self.rank[tag] = len(self.rank)
        return r


class Window:
    """Common interface; `advance` is a no-op for count windows (they ignore time)."""

    time_based = False

    def advance(self, ts: int) -> list[Closed]:
        return []

    def add(self, tag: Hashable, key_value: Any, ts: int, fields: Fields) -> list[Closed]:
        raise NotImplementedError

    def flush(self) -> list[Closed]:
        raise NotImplementedError

    def inline_add(self, ns: dict[str, Any], add: list[str] | None, new_state: str) -> list[str] | None:
        """`add` as unindented statements for a generated arrival function (None: no inline form,
        call `add`). The function has the locals `origin ts f tag kv` (`kv` the key value); `add`
        is the statements adding `f` to the state in the local `S` (None: keep the records),
        `new_state` the source of a new state. The statements either return None or, for a count
        window, fall through when an instance closes, with its key value in `ckv` and its state in
        `S` (result time `ts`). Names they use are put in `ns`; locals used: `_w*`, `inst`, `S`."""
        return None


def _add_or_keep(add: list[str] | None) -> list[str]:
    return add if add is not None else ["S.append((ts, f))"]

