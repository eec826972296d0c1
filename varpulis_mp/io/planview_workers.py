"""Worker processes and stream strategies in `varpulis-mp plan` (RUN.md §7).

Owns how the processes of a context are named (`process 2`, `processes 2-5`), which cores each
worker of a pool is pinned to, and how each stream of a pool is split among its workers, in the
three formats `planview` renders. A context of one worker shows as it always has: one process with
all its cores, and no strategy.
"""

from __future__ import annotations

from typing import Any

from varpulis_mp.engine.plan import ContextPlan
from varpulis_mp.lang.checked import CheckedProgram


def processes_text(first: int, workers: int) -> str:
    """`process 2` for one worker, `processes 2-5` for a pool; `first` is the 0-based number of the
    context's worker 0, shown from 1."""
    if workers == 1:
        return f"process {first + 1}"
    return f"processes {first + 1}-{first + workers}"


def is_pinned(ctx: ContextPlan, available: list[int]) -> bool:
    """Whether the context's processes will be pinned here: a core list, all of it available (else
    `simulate` runs the context unpinned, VPL.md §3.1)."""
    return ctx.cores is not None and all(c in available for c in ctx.cores)


def _worker_cores_text(cores: list[int] | None, pinned: bool) -> str:
    if cores is None:
        return "any core"
    listed = ("core " if len(cores) == 1 else "cores ") + ",".join(str(c) for c in cores)
    return listed if pinned else f"{listed}, runs unpinned here"


def worker_rows(ctx: ContextPlan, first: int, available: list[int]) -> list[dict[str, Any]]:
    """The `workers` member of a process row of `plan --json`: one entry per worker process."""
    pinned = is_pinned(ctx, available)
    return [
        {"worker": n, "process": first + n, "cores": cores, "pinned": pinned and cores is not None}
        for n, cores in enumerate(ctx.worker_cores)
    ]


def worker_lines(ctx: ContextPlan, first: int, available: list[int]) -> list[str]:
    """`worker N: process P (CORES)` for each worker of a pool; nothing for a single process, whose
    cores its own line shows."""
    if ctx.workers == 1:
        return []
    pinned = is_pinned(ctx, available)
    return [
        f"  worker {n}: process {first + n + 1} ({_worker_cores_text(cores, pinned)})"
        for n, cores in enumerate(ctx.worker_cores)
    ]


def strategy_text(checked: CheckedProgram, ctx: ContextPlan, stream: str) -> str:
    """`consistent_hash by KEY`, `round_robin` or `single` for a stream of a pool; "" otherwise."""
    strategy = ctx.strategies.get(stream)
    if strategy is None:
        return ""
    if strategy == "consistent_hash":
        return f"consistent_hash by {checked.stream(stream).partition_key}"
    return strategy


def streams_text(checked: CheckedProgram, ctx: ContextPlan) -> str:
    """The streams of a context, each of a pool followed by its strategy."""
    return ", ".join(
        f"{name} ({strategy_text(checked, ctx, name)})" if name in ctx.strategies else name for name in ctx.streams
    )


def dot_worker_lines(ctx: ContextPlan) -> str:
    """The lines of a pool's cluster label that list its workers and their cores."""
    if ctx.workers == 1:
        return ""
    return "".join(f"\nworker {n}: {_worker_cores_text(cores, True)}" for n, cores in enumerate(ctx.worker_cores))
