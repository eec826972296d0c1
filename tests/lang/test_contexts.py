"""Context options (VPL.md §3.1, RUN.md §7): `cores` and `workers`, each diagnostic with its message,
position and width; the warning for a pool's windowed stream without `.partition_by`; the limit on
worker processes (VPL.md §13)."""

from __future__ import annotations

import pytest

from tests.lang.test_checker import check, error_at, lines, only, warning_at
from varpulis_mp.lang.check_contexts import CORES_MESSAGE, OPTIONS_HINT, WORKERS_HINT, WORKERS_MESSAGE

HOLDS = "\nstream S = E .context(c)\n"


# ---------------------------------------------------------------- options


def test_unknown_option_takes_any_value_and_names_the_options() -> None:
    for value in ("2", "[1]", '"x"', "a + b", "5s"):
        d = error_at(f"context c (foo: {value})" + HOLDS, "1:12", "unknown context option 'foo'")
        assert (d.width, d.hint) == (3, OPTIONS_HINT)
    assert OPTIONS_HINT == "the context options are cores and workers"


@pytest.mark.parametrize("decl", ["context c (workers: 2, workers: 3)", "context c (cores: [1], workers: 2, cores: [2])"])
def test_an_option_given_twice_is_an_error_at_the_second(decl: str) -> None:
    name = "workers" if decl.count("workers") == 2 else "cores"
    d = only(decl + HOLDS)
    assert (d.pos.col, d.severity, d.message) == (decl.rindex(name) + 1, "error", f"the option '{name}' is given twice")
    assert d.width == len(name)


def test_options_in_any_order_and_with_a_trailing_comma() -> None:
    (ctx,) = check("context c (workers: 3, cores: [4, 5],)" + HOLDS).contexts
    assert (ctx.cores, ctx.workers) == ((4, 5), 3)


# ---------------------------------------------------------------- cores


@pytest.mark.parametrize(
    ("value", "col", "width"),
    [("5", 19, 1), ("x", 19, 1), ('"0,1"', 19, 5), ("1 + 2", 19, 1), ("[]", 19, 1), ("[0, 0]", 23, 1),
     ("[1, -1]", 23, 1), ("[1.5]", 20, 3), ("[c0]", 20, 2), ("[[0]]", 20, 1), ("[0, 2 * 2]", 23, 1)],
)
def test_cores_must_be_a_list_of_distinct_non_negative_integers(value: str, col: int, width: int) -> None:
    d = error_at(f"context c (cores: {value})" + HOLDS, f"1:{col}", CORES_MESSAGE)
    assert d.width == width
    assert (d.hint is not None) == (not value.startswith("["))  # "write the cores as a list"


def test_cores_in_parentheses_are_cores() -> None:
    (ctx,) = check("context c (cores: ([(3), 1]))" + HOLDS).contexts
    assert ctx.cores == (3, 1)
    assert [(p.line, p.col) for p in ctx.core_pos] == [(1, 21), (1, 26)]


# ---------------------------------------------------------------- workers


def test_workers_default_to_one() -> None:
    (ctx,) = check("context c (cores: [1])" + HOLDS).contexts
    assert ctx.workers == 1


@pytest.mark.parametrize(
    ("program", "workers"),
    [("context c (workers: 4)", 4), ("context c (workers: (2))", 2), ("const N = 3\ncontext c (workers: N)", 3),
     ("context c (workers: N)\nconst N = 2 * 3", 6), ("context c (workers: 1)", 1)],
)
def test_workers_take_an_int_literal_or_an_int_constant(program: str, workers: int) -> None:
    (ctx,) = check(program + HOLDS).contexts
    assert ctx.workers == workers


@pytest.mark.parametrize(
    ("value", "col", "width", "message"),
    [
        ("0", 21, 1, "workers must be positive"),
        ("-2", 21, 1, "workers must be positive"),
        ("2.0", 21, 3, "workers must be an Int, not a Float"),
        ('"4"', 21, 3, "workers must be an Int, not a String"),
        ("true", 21, 4, "workers must be an Int, not a Bool"),
        ("null", 21, 4, "workers must be an Int, not null"),
        ("5s", 21, 2, "workers must be an Int, not a Duration"),
        ("[2]", 21, 1, "workers must be an Int, not a List"),
        ("2 * 2", 21, 1, WORKERS_MESSAGE),
        ("max(2, 3)", 21, 3, WORKERS_MESSAGE),
        ("-N", 21, 1, WORKERS_MESSAGE),
        ("F", 21, 1, "workers must be an Int, not a Float"),
        ("Z", 21, 1, "workers must be positive"),
        ("D", 21, 1, "workers must be an Int, not a Duration"),
    ],
)
def test_wrong_workers_at_the_value(value: str, col: int, width: int, message: str) -> None:
    consts = "const N = 2\nconst F = 2.5\nconst Z = 0\nconst D = 10s\n"
    d = only(f"context c (workers: {value})" + HOLDS + consts)
    assert (d.pos.line, d.pos.col, d.severity, d.message, d.width) == (1, col, "error", message, width)
    assert (d.hint == WORKERS_HINT) == (message == WORKERS_MESSAGE)


def test_workers_naming_an_unknown_constant() -> None:
    d = error_at("context c (workers: W)" + HOLDS, "1:21", "unknown constant 'W'")
    assert (d.width, d.hint) == (1, "no constants are declared")
    d = error_at("const A = 1\ncontext c (workers: WORKERS)" + HOLDS, "2:21", "unknown constant 'WORKERS'")
    assert (d.width, d.hint) == (7, "declared constants are A")


def test_workers_naming_a_broken_constant_add_no_error() -> None:
    assert lines("const W = 1 / 0\ncontext c (workers: W)" + HOLDS) == [
        "1:7: error: cannot evaluate constant 'W': division by zero"
    ]


def test_every_wrong_option_of_a_declaration_is_reported() -> None:
    assert lines("context c (cores: 1, workers: 0, foo: [])" + HOLDS) == [
        f"1:19: error: {CORES_MESSAGE}",
        "1:31: error: workers must be positive",
        "1:34: error: unknown context option 'foo'",
    ]


# ---------------------------------------------------------------- a pool's windowed streams


POOL = "context heavy (cores: [2, 3, 4, 5], workers: 4)\n"


def test_windowed_stream_without_partition_by_in_a_pool_warns_at_its_window() -> None:
    d = warning_at(
        POOL + "stream Totals = Reading\n    .context(heavy)\n    .window(10s)\n    .aggregate(n: count())\n",
        "4:6",
        "stream Totals has a window without partition_by: one of heavy's 4 workers runs it",
    )
    assert d.width == len("window") and d.hint is not None and "partition_by" in d.hint


@pytest.mark.parametrize(
    "stream",
    [
        "stream S = R.context(heavy).partition_by(zone).window(10s).aggregate(n: count())",
        "stream S = R.context(heavy).where(v > 1)",
        "stream S = R.context(heavy).partition_by(zone).select(zone)",
        "stream S = R.window(10s).aggregate(n: count())",
    ],
)
def test_no_warning_for_keyed_windows_streams_without_windows_or_outside_pools(stream: str) -> None:
    assert lines(POOL + stream + "\nstream T = R.context(heavy)\n") == []


def test_no_warning_in_a_context_of_one_worker() -> None:
    program = "context one (workers: 1)\nstream S = R.context(one).window(5).aggregate(n: count())\n"
    assert lines(program) == []


# ---------------------------------------------------------------- at most 256 worker processes


def _pools(*workers: int) -> str:
    return "".join(f"context p{i} (workers: {n})\nstream S{i} = E .context(p{i})\n" for i, n in enumerate(workers))


def test_at_most_256_worker_processes() -> None:
    assert [c.workers for c in check(_pools(200, 56)).contexts] == [200, 56]
    d = error_at(_pools(200, 50, 7, 1), "5:9", "too many worker processes")
    assert d.source_line == "context p2 (workers: 7)" and d.width == 2
    assert d.hint is not None and "256" in d.hint


def test_the_default_context_counts_one_worker_process() -> None:
    assert lines(_pools(256)) == []
    assert lines(_pools(255) + "stream D = E\n") == []
    assert lines(_pools(256) + "stream D = E\n") == ["1:9: error: too many worker processes"]
    assert lines(_pools(256) + "stream D = E.context(default)\n") == ["1:9: error: too many worker processes"]


def test_contexts_without_streams_run_no_workers() -> None:
    found = lines("context idle (workers: 300)\n" + _pools(256))
    assert found == ["1:9: warning: context 'idle' holds no streams"]


def test_too_many_workers_is_reported_with_the_other_errors() -> None:
    found = lines(_pools(300) + "stream Lost = E .context(nowhere)\n")
    assert found == ["1:9: error: too many worker processes", "3:26: error: unknown context 'nowhere'"]


def test_a_huge_workers_number_is_one_error() -> None:
    assert lines(_pools(9_223_372_036_854_775_807)) == ["1:9: error: too many worker processes"]
