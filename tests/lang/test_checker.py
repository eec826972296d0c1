"""The rules of `check` (VPL.md §3, §5-§9, §13): each error and warning with its message and position."""

from __future__ import annotations

import textwrap

import pytest

from varpulis_mp.errors import Diagnostic, ProgramError
from varpulis_mp.lang.checked import DEFAULT_CONTEXT, CheckedProgram, Duration, WindowSpec
from varpulis_mp.lang.checker import check_program
from varpulis_mp.lang.parser import parse_program


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def check(text: str) -> CheckedProgram:
    return check_program(parse_program(src(text), "p.vpl"))


def diagnostics(text: str) -> list[Diagnostic]:
    """Every diagnostic of a program, errors or not, in the order they are printed."""
    try:
        return list(check(text).warnings)
    except ProgramError as err:
        return list(err.diagnostics)


def lines(text: str) -> list[str]:
    return [f"{d.pos.line}:{d.pos.col}: {d.severity}: {d.message}" for d in diagnostics(text)]


def only(text: str) -> Diagnostic:
    found = diagnostics(text)
    assert len(found) == 1, [d.render() for d in found]
    return found[0]


def error_at(text: str, where: str, message: str) -> Diagnostic:
    """Assert the program's only diagnostic is an error `message` at `where` (line:col)."""
    d = only(text)
    assert (f"{d.pos.line}:{d.pos.col}", d.severity, d.message) == (where, "error", message)
    return d


def warning_at(text: str, where: str, message: str) -> Diagnostic:
    d = only(text)
    assert (f"{d.pos.line}:{d.pos.col}", d.severity, d.message) == (where, "warning", message)
    return d


# ---------------------------------------------------------------- contexts (§3.1)


def test_duplicate_context_at_second_name() -> None:
    d = error_at(
        """
        context a
        context a
        stream S = E .context(a)
        """,
        "2:9",
        "context 'a' is already declared",
    )
    assert d.width == 1 and d.source_line == "context a"


def test_default_context_is_reserved() -> None:
    error_at("context default\nstream S = E\n", "1:9", "the context name 'default' is reserved")


def test_unknown_context_option() -> None:
    error_at("context a (policy: [1])\nstream S = E .context(a)\n", "1:12", "unknown context option 'policy'")


@pytest.mark.parametrize(
    ("decl", "where"),
    [("context a (cores: [])", "1:19"), ("context a (cores: [0, 0])", "1:23"), ("context a (cores: [1, -1])", "1:23")],
)
def test_cores_must_be_distinct_non_negative(decl: str, where: str) -> None:
    error_at(
        decl + "\nstream S = E .context(a)\n",
        where,
        "cores must be a non-empty list of distinct non-negative integers",
    )


def test_cores_are_recorded_but_not_checked_against_the_machine() -> None:
    checked = check("context a (cores: [4096, 2])\nstream S = E .context(a)\n")
    (ctx,) = checked.contexts
    assert (ctx.name, ctx.cores, [(p.line, p.col) for p in ctx.core_pos]) == ("a", (4096, 2), [(1, 20), (1, 26)])


def test_context_without_streams_warns() -> None:
    d = warning_at("context idle\nstream S = E\n", "1:9", "context 'idle' holds no streams")
    assert d.width == 4


def _contexts_with_streams(n: int) -> str:
    return "".join(f"context c{i}\nstream S{i} = E .context(c{i})\n" for i in range(n))


def test_at_most_64_contexts_hold_streams() -> None:
    assert len(check(_contexts_with_streams(64)).contexts) == 64
    d = error_at(_contexts_with_streams(66), "129:9", "more than 64 contexts hold streams")
    assert d.width == 3 and d.source_line == "context c64" and d.hint


def test_contexts_without_streams_do_not_count_towards_the_limit() -> None:
    found = lines("context idle\n" + _contexts_with_streams(64))
    assert found == ["1:9: warning: context 'idle' holds no streams"]
    found = lines("context idle\n" + _contexts_with_streams(65))
    assert found == ["1:9: warning: context 'idle' holds no streams",
                     "130:9: error: more than 64 contexts hold streams"]


def test_too_many_contexts_is_reported_with_the_other_errors() -> None:
    found = lines(_contexts_with_streams(70) + "stream Lost = E .context(nowhere)\n")
    assert found == ["129:9: error: more than 64 contexts hold streams",
                     "141:26: error: unknown context 'nowhere'"]


# ---------------------------------------------------------------- constants (§3.2, §5.8)


def test_constants_evaluated_in_order() -> None:
    checked = check(
        """
        let A = 7
        const B = A * 2 + 1
        let C = [A, "x", 1.5, null, true]
        const GAP = 30s
        let W = (GAP)
        let D = if A > 5 and false or true then upper("ok") else "no"
        let E = coalesce(null, A % 4)
        let F = false and 1 / 0 > 1
        stream S = E
        """
    )
    assert checked.constants == {
        "A": 7, "B": 15, "C": [7, "x", 1.5, None, True], "GAP": Duration(30000),
        "W": Duration(30000), "D": "OK", "E": 3, "F": False,
    }


def test_duplicate_constant() -> None:
    error_at("let A = 1\nconst A = 2\nstream S = E\n", "2:7", "'A' is already declared")


def test_unknown_name_in_constant_must_be_earlier() -> None:
    error_at("let A = B + 1\nlet B = 2\nstream S = E\n", "1:9", "unknown name 'B' in a constant")


def test_cannot_evaluate_constant_at_its_name() -> None:
    d = error_at("let A = 1\nlet ZERO = A / 0\nstream S = E\n", "2:5", "cannot evaluate constant 'ZERO': division by zero")
    assert d.width == 4


def test_broken_constant_does_not_cascade() -> None:
    assert lines("let A = 1 / 0\nlet B = A + 1\nstream S = E .where(x > B)\n") == [
        "1:5: error: cannot evaluate constant 'A': division by zero"
    ]


def test_aggregate_function_in_constant() -> None:
    error_at("let A = avg(3)\nstream S = E\n", "1:9", "aggregate function 'avg' is only allowed inside .aggregate(...)")


@pytest.mark.parametrize(
    ("decl", "where"),
    [("let W = 2 * 30s", "1:11"), ("let W = 1m + 1", "1:12"), ("let W = -30s", "1:9"), ("let W = not 1s", "1:9"),
     ("let W = 1s is null", "1:12")],
)
def test_durations_cannot_be_combined(decl: str, where: str) -> None:
    error_at(decl + "\nstream S = E\n", where, "durations cannot be combined with operators")


def test_two_durations_in_one_operator_are_two_errors() -> None:
    assert lines("let W = 1m + 30s\nstream S = E\n") == [
        "1:12: error: durations cannot be combined with operators",
        "1:12: error: durations cannot be combined with operators",
    ]


@pytest.mark.parametrize(
    ("decl", "where"), [("let W = [30s]", "1:10"), ("let W = abs(1s)", "1:13"), ("let W = if true then 1s else 2s", "1:22")]
)
def test_durations_only_as_window_sizes_in_constants(decl: str, where: str) -> None:
    assert lines(decl + "\nstream S = E\n")[0] == f"{where}: error: durations can only be used as window sizes"


# ---------------------------------------------------------------- streams and the graph (§3.3)


def test_duplicate_stream() -> None:
    error_at("stream S = E\nstream S = F\n", "2:8", "stream 'S' is already declared")


def test_stream_sources_resolve_in_any_order() -> None:
    checked = check("stream B = A .where(x > 1)\nstream A = Event\n")
    assert [(s.index, s.name, s.source_is_stream) for s in checked.streams] == [(0, "B", True), (1, "A", False)]


def test_cycle_reported_once_at_first_stream() -> None:
    d = error_at(
        """
        stream C = B
        stream A = C
        stream B = A
        stream D = A
        """,
        "1:12",
        "streams form a cycle: C -> B -> A -> C",
    )
    assert d.width == 1


def test_self_cycle() -> None:
    error_at("stream Loop = Loop .where(x > 1)\n", "1:15", "streams form a cycle: Loop -> Loop")


# ---------------------------------------------------------------- operations (§6)


def test_unknown_context_with_hint() -> None:
    d = error_at(
        "context ingest\ncontext alert\nstream S = E .context(ingest)\nstream T = E .context(analytic)\n"
        "stream U = E .context(alert)\n",
        "4:23",
        "unknown context 'analytic'",
    )
    assert d.hint == "declared contexts are ingest, alert" and d.width == 8


def test_unknown_context_without_declared_contexts() -> None:
    d = error_at("stream S = E .context(x)\n", "1:23", "unknown context 'x'")
    assert d.hint == "no contexts are declared"


def test_default_context_may_be_named() -> None:
    checked = check("stream S = E .context(default) .emit(context: default)\n")
    assert checked.streams[0].context == DEFAULT_CONTEXT


def test_only_one_operation_per_stream() -> None:
    error_at("stream S = E .window(2) .window(3)\n", "1:26", "only one .window per stream")


def test_emit_must_be_last_with_hint() -> None:
    d = error_at("stream S = E .emit(v: v) .where(v > 1)\n", "1:15", ".emit must be the last operation of a stream")
    assert d.hint == "read the stream from a new stream to process its records further" and d.width == 4


def test_context_after_emit_is_allowed() -> None:
    context = "context c\nstream S = E .emit(v: v) .context(c)\n"
    assert check(context).streams[0].context == "c"


@pytest.mark.parametrize(
    ("ops", "where", "message"),
    [
        (".aggregate(n: count())", "1:15", ".aggregate needs a .window before it"),
        (".window(2) .where(x > 1) .aggregate(n: count())", "1:40", ".aggregate must directly follow .window"),
        (".having(x > 1)", "1:15", ".having needs an .aggregate before it"),
        (".window(2) .partition_by(k)", "1:26", ".partition_by must come before .window"),
        (".partition_by(k, j)", "1:31", "partition_by expects one field name"),
        (".partition_by(k + 1)", "1:28", "partition_by expects one field name"),
    ],
)
def test_operation_order_rules(ops: str, where: str, message: str) -> None:
    error_at("stream S = E " + ops + "\n", where, message)


def test_field_appears_twice() -> None:
    assert lines("stream S = E .select(a, b: 1, a) .emit(x: a, x: b)\nstream T = E .window(2) .aggregate(n: count(), n: sum(v))\n") == [
        "1:31: error: field 'a' appears twice",
        "1:46: error: field 'x' appears twice",
        "2:48: error: field 'n' appears twice",
    ]


def test_emit_context_must_be_a_name() -> None:
    error_at('context c\nstream S = E .context(c) .emit(context: "c")\n', "2:41", "context: expects a context name")


def test_emit_unknown_context() -> None:
    d = error_at("context c\nstream S = E .context(c) .emit(context: d)\n", "2:41", "unknown context 'd'")
    assert d.hint == "declared contexts are c"


def test_stream_info() -> None:
    checked = check(
        """
        context a
        context b
        stream S = E
            .where(x > 1)
            .context(a)
            .partition_by(k)
            .window(5, sliding: 2)
            .aggregate(k: k, n: count())
            .emit(context: b, k: k, n: n)
        stream T = S .context(b)
        """
    )
    s = checked.stream("S")
    assert [type(op).__name__ for op in s.ops] == ["Where", "PartitionBy", "Window", "Aggregate", "Emit"]
    emit = s.ops[-1]
    assert [item.name for item in emit.items] == ["k", "n"]  # type: ignore[union-attr]
    assert (s.context, s.emit_target, s.window, s.partition_key, s.has_aggregate) == (
        "a", "b", WindowSpec("count", 5, 2), "k", True
    )
    t = checked.stream("T")
    assert (t.source_is_stream, t.context, t.emit_target, t.window, t.has_aggregate) == (True, "b", None, None, False)


# ---------------------------------------------------------------- windows (§8.1)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("10", WindowSpec("count", 10)),
        ("10, sliding: 3", WindowSpec("count", 10, 3)),
        ("30s", WindowSpec("time", 30000)),
        ("tumbling 1m", WindowSpec("time", 60000)),
        ("tumbling(500ms)", WindowSpec("time", 500)),
        ("10s, sliding: 5s", WindowSpec("time", 10000, 5000)),
        ("session: 5s", WindowSpec("session", 5000)),
        ("N", WindowSpec("count", 4)),
        ("GAP, sliding: GAP", WindowSpec("time", 2000, 2000)),
        ("session: GAP", WindowSpec("session", 2000)),
    ],
)
def test_window_forms(spec: str, expected: WindowSpec) -> None:
    checked = check(f"const N = 4\nconst GAP = 2s\nstream S = E .window({spec}) .aggregate(n: count())\n")
    assert checked.streams[0].window == expected


@pytest.mark.parametrize(
    "spec",
    ["5.5", '"1m"', "UNKNOWN", "FLOAT", "tumbling 10", "10, sliding: 5s", "30s, sliding: 2", "session: 5",
     "sliding: 5", "1s, 2s", "(10)"],
)
def test_invalid_window(spec: str) -> None:
    d = error_at(f"const FLOAT = 1.5\nstream S = E .window({spec})\n", "2:22", "invalid window")
    assert d.hint is not None and ".window(session: G)" in d.hint


def test_empty_window_points_after_paren() -> None:
    error_at("stream S = E .window()\n", "1:22", "invalid window")


@pytest.mark.parametrize(
    ("spec", "where", "message"),
    [
        ("0", "1:22", "window size must be positive"),
        ("0s", "1:22", "window size must be positive"),
        ("-5", "1:22", "window size must be positive"),
        ("5, sliding: 0", "1:34", "window size must be positive"),
        ("5, sliding: 6", "1:34", "slide must not be larger than the window"),
        ("10s, sliding: 1m", "1:36", "slide must not be larger than the window"),
    ],
)
def test_window_sizes(spec: str, where: str, message: str) -> None:
    error_at(f"stream S = E .window({spec})\n", where, message)


# ---------------------------------------------------------------- aggregate items (§7.2)


def test_bare_field_in_aggregate() -> None:
    d = error_at(
        "stream S = E .partition_by(zone) .window(1m) .aggregate(zone: zone, s: sensor, a: avg(v))\n",
        "1:72",
        "'sensor' must be inside an aggregate function",
    )
    assert d.hint == "use last(sensor) or first(sensor)" and d.width == 6


def test_aggregate_items_may_use_key_constants_and_expressions() -> None:
    checked = check(
        "const K = 1000\nstream S = E .partition_by(z) .window(3)\n"
        "  .aggregate(z: z, l: \"z=\" + z, r: max(p) - min(p), k: avg(q) / K, b: sum(if q > 10 then 1 else 0))\n"
    )
    assert checked.streams[0].has_aggregate


def test_nested_aggregate_calls() -> None:
    error_at("stream S = E .window(3) .aggregate(a: sum(avg(x)))\n", "1:43", "aggregate calls cannot be nested")


def test_aggregate_function_outside_aggregate() -> None:
    error_at("stream S = E .where(avg(x) > 1)\n", "1:21", "aggregate function 'avg' is only allowed inside .aggregate(...)")


def test_ema_needs_an_int_count() -> None:
    error_at("stream S = E .window(3) .aggregate(e: ema(x, 0))\n", "1:46",
             "ema(x, n) needs n to be an Int literal or constant of at least 1")


# ---------------------------------------------------------------- functions, null, durations, conditions


def test_unknown_function_and_argument_counts() -> None:
    assert lines("stream S = E .emit(a: frob(x), b: abs(), c: coalesce())\nstream T = E .window(2) .aggregate(n: count(1, 2))\n") == [
        "1:23: error: unknown function 'frob'",
        "1:35: error: function 'abs' takes 1 argument(s)",
        "1:45: error: function 'coalesce' takes at least 1 argument(s)",
        "2:39: error: function 'count' takes 0 or 1 argument(s)",
    ]


def test_comparison_with_null_literal() -> None:
    d = error_at("stream S = E .where(x != null)\n", "1:23", "comparison with null is always null")
    assert d.hint == "use x is null or x is not null" and d.width == 2


def test_durations_in_streams() -> None:
    assert lines("const GAP = 5s\nstream S = E .where(gap < 30s) .emit(d: GAP, l: [1s])\n") == [
        "2:25: error: durations cannot be combined with operators",
        "2:41: error: durations can only be used as window sizes",
        "2:50: error: durations can only be used as window sizes",
    ]


@pytest.mark.parametrize(
    ("cond", "where"), [("1", "2:21"), ("null", "2:21"), ('"yes"', "2:21"), ("[x]", "2:21"), ("(LIMIT)", "2:22"),
                        ("30s", "2:21"), ("GAP", "2:21")],
)
def test_condition_must_be_boolean(cond: str, where: str) -> None:
    error_at(f"const LIMIT = 10\nstream S = E .where({cond})\nconst GAP = 1s\n", where,
             "condition must be a boolean expression")


def test_boolean_constant_condition_is_accepted() -> None:
    assert check("const ON = true\nstream S = E .where(ON) .window(2) .aggregate(n: count()) .having(n > 1)\n").warnings == ()


# ---------------------------------------------------------------- name warnings (§5.1, §6.9)


def test_unknown_name_only_where_fields_are_known() -> None:
    assert lines("stream S = E .where(anything > 1) .select(a, b: c) .where(d > 1) .emit(x: a)\n") == [
        "1:59: warning: unknown name 'd'"
    ]


def test_fields_flow_from_stream_to_stream() -> None:
    assert lines("stream T = S .emit(a: a, b: b)\nstream S = E .emit(a: 1)\n") == ["1:29: warning: unknown name 'b'"]


def test_aggregate_call_arguments_read_incoming_fields() -> None:
    d = warning_at("stream R = E .emit(data: data)\nstream S = R .window(1m) .aggregate(avg: avg(value))\n",
                   "2:46", "unknown name 'value'")
    assert d.width == 5


def test_constant_used_as_field_name() -> None:
    assert lines(
        """
        const K = 1
        stream S = E .select(K, v: 2) .where(K > v) .partition_by(K) .window(2) .aggregate(K: count())
        stream T = E .emit(K: 3)
        """
    ) == [
        "2:22: warning: constant 'K' is also used as a field name",
        "2:38: warning: constant 'K' is also used as a field name",
        "2:59: warning: constant 'K' is also used as a field name",
        "2:84: warning: constant 'K' is also used as a field name",
        "3:20: warning: constant 'K' is also used as a field name",
    ]


def test_event_field_named_like_constant_gives_no_warning() -> None:
    assert check("const LIMIT = 5\nstream S = E .where(weight > LIMIT) .emit(w: weight)\n").warnings == ()


# ---------------------------------------------------------------- routing warnings (§9.3)


def test_emit_target_without_reader() -> None:
    warning_at(
        "context a\ncontext b\nstream S = E .context(a) .emit(context: b)\nstream T = S .context(a)\n"
        "stream U = E .context(b)\n",
        "3:41",
        "context 'b' has no stream that reads 'S'",
    )


def test_implicit_cross_context_edge() -> None:
    assert lines("context w\nstream P = E .emit(c: c)\nstream C = P .context(w) .where(c > 1)\nstream D = C\n") == [
        "3:12: warning: 'P' is sent from context 'default' to context 'w' without .emit(context: w)",
        "4:12: warning: 'C' is sent from context 'w' to context 'default' without .emit(context: default)",
    ]


def test_parallelism_example_has_three_warnings() -> None:
    assert lines(
        """
        context ingest (cores: [0, 1])
        context analyze (cores: [2, 3])
        context alert (cores: [4])

        stream RawEvents = Sensor
            .context(ingest)
            .emit(context: analyze, data: data)

        stream Stats = RawEvents
            .context(analyze)
            .window(1m)
            .aggregate(avg: avg(value))
            .emit(context: alert, avg: avg)
        """
    ) == [
        "3:9: warning: context 'alert' holds no streams",
        "12:25: warning: unknown name 'value'",
        "13:20: warning: context 'alert' has no stream that reads 'Stats'",
    ]


# ---------------------------------------------------------------- all at once, sorted (§13)


def test_all_errors_at_once_sorted_with_warnings() -> None:
    text = """
        context a
        context a
        stream S = E .context(b) .where(x == null) .emit(v: frob(1)) .select(v)
        stream T = S .select(q) .where(r > 1)
        """
    with pytest.raises(ProgramError) as info:
        check(text)
    assert [f"{d.pos.line}:{d.pos.col}: {d.severity}: {d.message}" for d in info.value.diagnostics] == [
        "1:9: warning: context 'a' holds no streams",
        "2:9: error: context 'a' is already declared",
        "3:23: error: unknown context 'b'",
        "3:35: error: comparison with null is always null",
        "3:45: error: .emit must be the last operation of a stream",
        "3:53: error: unknown function 'frob'",
        "4:22: warning: unknown name 'q'",
        "4:32: warning: unknown name 'r'",
    ]


def test_errors_sort_before_warnings_at_the_same_position() -> None:
    found = diagnostics("const K = 1\nstream S = E .select(K, K)\n")
    assert [(d.pos.col, d.severity) for d in found] == [(22, "warning"), (25, "error"), (25, "warning")]


# ---------------------------------------------------------------- more operation details


def test_second_context_operation_and_second_context_item() -> None:
    assert lines("context a\nstream S = E .context(a) .context(a) .emit(context: a, context: a)\nstream T = S .context(a)\n") == [
        "2:27: error: only one .context per stream",
        "2:56: error: only one context: per .emit",
    ]


def test_emit_with_only_a_context_keeps_known_fields() -> None:
    assert lines("context c\nstream S = E .select(a) .emit(context: c)\nstream T = S .context(c) .where(b > a)\n") == [
        "3:33: warning: unknown name 'b'"
    ]


def test_constant_named_like_the_key_warns_once_at_the_key() -> None:
    assert lines("const zone = 1\nstream S = E .partition_by(zone) .window(2) .aggregate(z: zone, n: count())\n") == [
        "2:28: warning: constant 'zone' is also used as a field name"
    ]


def test_malformed_partition_by_does_not_blame_aggregate_names() -> None:
    assert lines("stream S = E .partition_by(1) .window(2) .aggregate(k: k)\n") == [
        "1:28: error: partition_by expects one field name"
    ]


def test_warnings_are_sorted_on_success() -> None:
    checked = check("context z\ncontext a\nstream S = E .select(q) .where(w > 1 and v > 1)\n")
    assert [(w.pos.line, w.pos.col, w.message) for w in checked.warnings] == [
        (1, 9, "context 'z' holds no streams"),
        (2, 9, "context 'a' holds no streams"),
        (3, 32, "unknown name 'w'"),
        (3, 42, "unknown name 'v'"),
    ]


def test_constant_is_not_an_unknown_name_and_is_read_not_the_field() -> None:
    assert lines("const T = 5\nstream S = E .select(a) .where(a > T)\n") == []
