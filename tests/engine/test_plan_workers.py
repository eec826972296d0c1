"""The plan's worker pools (RUN.md §7): each context's workers and their cores, the strategy of each
stream of a pool, the process numbers, and all of it as plain data that msgpack carries."""

from __future__ import annotations

import pytest

from tests.lang.test_checker import check
from varpulis_mp.engine.plan import ContextPlan, Plan, build_plan, worker_cores
from varpulis_mp.runtime import wire

PROGRAM = """
    context ingest (cores: [0, 1])
    context heavy (cores: [2, 3, 4, 5], workers: 4)
    context wide (cores: [6, 7], workers: 5)
    context loose (workers: 2)

    stream Clean = Reading.context(ingest).where(value > 0)
    stream Stats = Clean.context(heavy).partition_by(zone).window(10s).aggregate(zone: zone, n: count())
    stream Scaled = Clean.context(heavy).select(zone, v: value * 2)
    stream Keyed = Clean.context(heavy).partition_by(zone).where(v > 1)
    stream Totals = Clean.context(heavy).window(10).aggregate(n: count())
    stream Spread = Clean.context(wide).where(value > 1)
    stream Free = Clean.context(loose).partition_by(zone).window(session: 5s).aggregate(n: count())
    stream Main = Clean.window(5).aggregate(n: count())
"""


def plan() -> Plan:
    return build_plan(check(PROGRAM))


def test_each_context_has_its_workers() -> None:
    p = plan()
    assert [(c.name, c.workers) for c in p.contexts] == [
        ("ingest", 1), ("heavy", 4), ("wide", 5), ("loose", 2), ("default", 1)]
    assert p.worker_processes() == 13


def test_one_worker_is_pinned_to_every_listed_core() -> None:
    p = plan()
    assert p.context("ingest").worker_cores == [[0, 1]]
    assert p.context("default").worker_cores == [None]


def test_worker_n_of_a_pool_is_pinned_to_the_nth_core_the_list_reused_in_turn() -> None:
    p = plan()
    assert p.context("heavy").worker_cores == [[2], [3], [4], [5]]
    assert p.context("wide").worker_cores == [[6], [7], [6], [7], [6]]
    assert p.context("loose").worker_cores == [None, None]
    assert p.context("heavy").cores == [2, 3, 4, 5]  # the listed cores stay as written


@pytest.mark.parametrize(
    ("cores", "workers", "expected"),
    [(None, 1, [None]), ([3], 1, [[3]]), ([1, 2, 3], 1, [[1, 2, 3]]), ([1, 2, 3], 2, [[1], [2]]),
     ([9], 3, [[9], [9], [9]]), (None, 3, [None, None, None])],
)
def test_worker_cores(cores: list[int] | None, workers: int, expected: list[list[int] | None]) -> None:
    assert worker_cores(cores, workers) == expected


def test_each_stream_of_a_pool_gets_its_strategy_from_its_operations() -> None:
    p = plan()
    assert p.context("heavy").strategies == {
        "Stats": "consistent_hash",  # a window with .partition_by
        "Scaled": "round_robin",  # no window
        "Keyed": "round_robin",  # no window: the key is never read (VPL.md §6.5)
        "Totals": "single",  # a window without .partition_by
    }
    assert p.context("wide").strategies == {"Spread": "round_robin"}
    assert p.context("loose").strategies == {"Free": "consistent_hash"}


def test_streams_of_a_single_process_have_no_strategy() -> None:
    p = plan()
    assert p.context("ingest").strategies == {}
    assert p.context("default").strategies == {}


def test_processes_are_numbered_in_a_row_per_context() -> None:
    assert plan().first_process() == {"ingest": 0, "heavy": 1, "wide": 5, "loose": 10, "default": 12}


def test_workers_cores_and_strategies_travel_as_plain_data() -> None:
    p = plan()
    (data,) = wire.decode(wire.encode([p.to_data()]))  # msgpack, as between processes
    heavy = next(c for c in data["contexts"] if c["name"] == "heavy")
    assert (heavy["workers"], heavy["worker_cores"]) == (4, [[2], [3], [4], [5]])
    assert heavy["strategies"]["Totals"] == "single"
    back = Plan.from_data(data)
    assert back == p
    assert isinstance(back.context("heavy"), ContextPlan)


def test_a_program_without_pools_plans_as_before() -> None:
    p = build_plan(check("context a (cores: [1])\nstream S = R.context(a).window(3).aggregate(n: count())\n"))
    (ctx,) = p.contexts
    assert (ctx.workers, ctx.worker_cores, ctx.strategies, p.worker_processes()) == (1, [[1]], {}, 1)
