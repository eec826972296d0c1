"""The program-size limits (VPL.md §13, §13.1's family): how many processes a program may ask for.

A program runs one process per context that holds streams, and `workers: N` processes for a pool
(RUN.md §7), so a program with thousands of contexts or workers would fork thousands. Unlike the
input limits (the lexer's sizes, `limits`' nesting), these stop nothing: each is one `check`
error, reported with the other errors, at the first context that passes it, in declaration order.

Each limit is one `ProcessLimit`: what a context holding streams counts towards it and the most
the program may hold; `PROCESS_LIMITS` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Final

from varpulis_mp.lang.check_report import Reporter
from varpulis_mp.lang.checked import DEFAULT_CONTEXT, ContextInfo

MAX_CONTEXTS_WITH_STREAMS: Final = 64
MAX_WORKER_PROCESSES: Final = 256


@dataclass(frozen=True, slots=True)
class ProcessLimit:
    """At most `most` in all of what `counts` gives per declared context holding streams, plus
    `default_counts` when the implicit `default` context holds streams (it has no declaration to
    point at, so it is counted first)."""

    most: int
    message: str
    hint: str
    counts: Callable[[ContextInfo], int]
    default_counts: int = 0


PROCESS_LIMITS: Final = (
    ProcessLimit(
        MAX_CONTEXTS_WITH_STREAMS,
        f"more than {MAX_CONTEXTS_WITH_STREAMS} contexts hold streams",
        "each context holding streams runs in a process of its own; put more streams in one context",
        lambda _context: 1,
    ),
    ProcessLimit(
        MAX_WORKER_PROCESSES,
        "too many worker processes",
        f"a program runs at most {MAX_WORKER_PROCESSES} worker processes: one per context holding streams "
        "(default included), workers: N for a pool; give the pools fewer workers",
        lambda context: context.workers,
        default_counts=1,
    ),
)


def check_program_size(contexts: Sequence[ContextInfo], holding: Collection[str | None], rep: Reporter) -> None:
    """Report each limit of `PROCESS_LIMITS` once, at the first context (of those whose name is in
    `holding`) that passes it. `holding` names the contexts holding streams: the implicit one as
    None (a stream without `.context`) or `default` (`.context(default)`)."""
    default_holds = None in holding or DEFAULT_CONTEXT in holding
    for limit in PROCESS_LIMITS:
        total = limit.default_counts if default_holds else 0
        for ctx in contexts:
            if ctx.name not in holding:
                continue
            total += limit.counts(ctx)
            if total > limit.most:
                rep.error(ctx.pos, limit.message, len(ctx.name), limit.hint)
                break
