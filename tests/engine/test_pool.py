"""A pool's workers, run side by side in one process, give one process's outputs (RUN.md §7).

Every stream of a program is treated as one pool of N workers: N `Dataflow`s each get every event,
keep what they own, and their outputs sorted by (origin, stream, order key) must be exactly the
outputs of one `Dataflow`, counters included. The conformance suite's programs and a generated
input with every window kind, late events and sessions are the cases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import conformance_cases, needs_shared
from tests.runtime.test_random_programs import big_events
from varpulis_mp.engine.dataflow import Dataflow
from varpulis_mp.engine.output import Counters, Output
from varpulis_mp.engine.plan import stream_strategy
from varpulis_mp.engine.pool import PoolPart, pool_roles
from varpulis_mp.io.readers import read_events
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.lang.frontend import load_program

Row = tuple[int, str, str, int, dict[str, Any], Any]


def _rows(outputs: list[Output]) -> list[Row]:
    return [(o.origin, o.stream, o.kind, o.ts, o.fields, o.key) for o in outputs]


def _drive(program: CheckedProgram, events: list[Any], pool: PoolPart | None) -> tuple[list[Output], Counters]:
    out: list[Output] = []
    flow = Dataflow(program, out.append, pool=pool)
    for origin, event in enumerate(events, 1):
        flow.push_event(origin, event.type, event.ts, event.fields)
    flow.end_all(len(events) + 1)
    return out, flow.counters


def run_pool(program: CheckedProgram, events: list[Any], workers: int) -> tuple[list[Row], Counters]:
    strategies: dict[str, str] = {s.name: stream_strategy(s) for s in program.streams}
    roles = pool_roles(program, [s.name for s in program.streams], strategies)
    merged: list[Output] = []
    counters = Counters()
    for n in range(workers):
        out, c = _drive(program, events, PoolPart(n, workers, roles))
        merged += out
        counters.add(c)
    merged.sort(key=lambda o: (o.origin, o.stream_index, o.seq))
    return _rows(merged), counters


def assert_pool_matches(program: CheckedProgram, events: list[Any]) -> None:
    one, counters = _drive(program, events, None)
    one.sort(key=lambda o: (o.origin, o.stream_index, o.seq))  # the canonical order (VPL.md §10.3)
    for workers in (1, 2, 3, 4):
        rows, pooled = run_pool(program, events, workers)
        assert rows == _rows(one), f"{workers} workers"
        assert pooled == counters, f"{workers} workers"


@needs_shared
@pytest.mark.parametrize("case", conformance_cases("records"), ids=lambda p: p.name)
def test_conformance_programs_as_one_pool(case: Path) -> None:
    program = load_program((case / "program.vpl").read_text(encoding="utf-8"), "program.vpl")
    events = list(read_events(str(case / "events.evt"), "events.evt", [s.name for s in program.streams]))
    assert_pool_matches(program, events)


EVERY_WINDOW = """
stream Clean = A.where(v is not null and v > -3).select(k, v, w: v * 2)
stream Tumble = Clean.partition_by(k).window(500ms).aggregate(k: k, n: count(), s: sum(v), a: avg(w))
stream Slide = Clean.partition_by(k).window(1s, sliding: 250ms).aggregate(k: k, n: count(), a: avg(v))
stream Counts = Clean.window(7).aggregate(n: count(), s: sum(v))
stream CountSlide = B.partition_by(k).window(4, sliding: 3).aggregate(k: k, s: sum(v), m: max(v))
stream Sessions = B.where(v is not null).partition_by(k).window(session: 300ms).aggregate(k: k, n: count())
stream Held = A.partition_by(k).window(2s).where(v > 4)
stream HeldCount = B.partition_by(k).window(3, sliding: 2)
stream Alerts = Tumble.where(s > 10 or n > 4).emit(k: k, peak: s)
stream Back = Alerts.partition_by(k).window(3).aggregate(k: k, n: count(), p: max(peak))
stream Rolled = Slide.window(2s).aggregate(n: count(), a: avg(a))
stream Again = Sessions.partition_by(k).window(session: 1s).aggregate(k: k, n: sum(n))
"""


def test_every_window_kind_as_one_pool(tmp_path: Path) -> None:
    program = load_program(EVERY_WINDOW, "every.vpl")
    evt = tmp_path / "events.evt"
    evt.write_text(big_events(4000, 20261202), encoding="utf-8")
    events = list(read_events(str(evt), "events.evt", [s.name for s in program.streams]))
    assert_pool_matches(program, events)


def test_roles_follow_what_readers_need() -> None:
    program = load_program(EVERY_WINDOW, "every.vpl")
    roles = pool_roles(program, [s.name for s in program.streams],
                       {s.name: stream_strategy(s) for s in program.streams})
    # Clean feeds windows: every worker needs it whole. Tumble feeds Alerts, which feeds a window.
    assert roles["Clean"] == "replicated"
    assert roles["Tumble"] == "replicated" and roles["Alerts"] == "replicated"
    assert roles["Back"] == "hash" and roles["Counts"] == "first" and roles["Held"] == "hash"
    assert roles["Slide"] == "replicated" and roles["Rolled"] == "first"
