"""Records of a stream that a pool's workers send, put back into one process's order (RUN.md §7).

Owns the receiving side of a pool's stream: a process reading a stream that N workers of a pool
emit gets N channels of it, each in its sender's order. Each record comes with its order key
(`[origin, key]`, engine/pool.py); the records are held until every sender's in-band progress has
passed their origin, then handed on sorted by (origin, key): the sequence one process would have
produced. The stream ends once every sender has said so. `take_upto` is the ordered release the
supervisor's merger uses too.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

__all__ = ["PooledStream", "take_upto"]


def take_upto(held: list[tuple[Any, ...]], upto: int) -> list[tuple[Any, ...]]:
    """Remove and return, sorted, the items of `held` (tuples led by their origin) with origin <=
    `upto`. Each sender's items come in order, so the sort merges a few runs."""
    if not held:
        return []
    held.sort()
    cut = bisect_left(held, (upto + 1,))
    if not cut:
        return []
    out = held[:cut]
    del held[:cut]
    return out


class PooledStream:
    """One stream read from the processes `senders` (channel keys `p<index>`)."""

    __slots__ = ("progress", "held", "arrived")

    def __init__(self, senders: list[int]) -> None:
        self.progress: dict[str, int] = {f"p{s}": 0 for s in senders}
        # (origin, order key, arrival number, time, fields); the arrival number keeps two records
        # from ever comparing their fields.
        self.held: list[tuple[Any, ...]] = []
        self.arrived = 0

    def add(self, times: list[int], keys: list[list[Any]], names: list[str], rows: list[list[Any]]) -> None:
        held = self.held
        n = self.arrived
        for ts, (origin, key), row in zip(times, keys, rows, strict=True):
            n += 1
            held.append((origin, key, n, ts, dict(zip(names, row, strict=False))))
        self.arrived = n

    def moved(self, channel: str, n: int) -> int | None:
        """Sender `channel` has sent everything up to origin `n`: the origin now complete from
        every sender, or None when that did not move."""
        before = self.progress.get(channel)
        if before is None or n <= before:
            return None
        old = min(self.progress.values())
        self.progress[channel] = n
        new = min(self.progress.values())
        return new if new > old else None

    def take(self, upto: int) -> list[tuple[Any, ...]]:
        return take_upto(self.held, upto)
