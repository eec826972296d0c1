"""The program-size limits (VPL.md §13, §13.1's family): how many processes a program may ask for.

A program runs one process per context that holds streams, so a program with thousands of
contexts would fork thousands. Unlike the input limits (the lexer's sizes, `limits`' nesting),
these stop nothing: each is one `check` error, reported with the other errors, at the first
context that passes it, in declaration order.

Each limit is one `ProcessLimit`: what a context holding streams counts towards it and the most
the program may hold; `PROCESS_LIMITS` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Final

from varpulis_mp.lang.check_report import Reporter
from varpulis_mp.lang.checked import ContextInfo

MAX_CONTEXTS_WITH_STREAMS: Final = 64


@dataclass(frozen=True, slots=True)
class ProcessLimit:
    """At most `most` in all of what `counts` gives per context holding streams."""

    most: int
    message: str
    hint: str
    counts: Callable[[ContextInfo], int]


PROCESS_LIMITS: Final = (
    ProcessLimit(
        MAX_CONTEXTS_WITH_STREAMS,
        f"more than {MAX_CONTEXTS_WITH_STREAMS} contexts hold streams",
        "each context holding streams runs in a process of its own; put more streams in one context",
        lambda _context: 1,
    ),
)


def check_program_size(contexts: Sequence[ContextInfo], holding: Collection[str | None], rep: Reporter) -> None:
    """Report each limit of `PROCESS_LIMITS` once, at the first context (of those whose name is in
    `holding`) that passes it."""
    for limit in PROCESS_LIMITS:
        total = 0
        for ctx in contexts:
            if ctx.name not in holding:
                continue
            total += limit.counts(ctx)
            if total > limit.most:
                rep.error(ctx.pos, limit.message, len(ctx.name), limit.hint)
                break
