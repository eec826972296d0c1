"""Random small programs and inputs give the same `simulate --output jsonl` bytes in every process
layout: one worker process per context (or a pool of random size, RUN.md §7), `--inline`, and the
same program with its contexts removed (VPL.md §9.1, §10.3; OUTPUT.md §1).

The programs are generated from a model (contexts, streams, operations, the fields each stream
outputs), so that every one passes `check`: downstream streams read fields that exist, windows,
aggregates and `.emit` come in the allowed order, sources form no cycle. The model renders the
program twice, with and without its contexts, which is exactly the deletion §10.3 describes.
"""

from __future__ import annotations

import difflib
import os
import random
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.conftest import varpulis_command

RUN_TIMEOUT_S = 30.0
EVENT_TYPES = ("A", "B")
# Key values as written in `.evt` text: strings, Ints and a Float equal to an Int key (VPL.md §6.5).
KEY_LITERALS = ('"a"', '"b"', "a", "1", "2", "1.0")
JSON_KEYS = {"a": '"a"'}
KEY_CONSTANTS = ('"a"', '"b"', "1", "2")
NUMBER_LITERALS = ("0", "1", "2", "3", "5", "8", "-1", "-4", "13", "0.5", "1.25", "-2.5", "7.75", "0.1")
DURATIONS = ("50ms", "100ms", "250ms", "300ms", "500ms", "1s", "2s")
DURATION_MS = {"50ms": 50, "100ms": 100, "250ms": 250, "300ms": 300, "500ms": 500, "1s": 1000, "2s": 2000}
SESSION_GAPS = ("50ms", "150ms", "400ms", "1s")
# Steps between event times: mostly forward, sometimes back (a late or out-of-order event).
FORWARD_STEPS = (0, 10, 40, 90, 150, 250, 400, 700)
STEPS = (*FORWARD_STEPS, *FORWARD_STEPS, *FORWARD_STEPS, -30, -300, -1200)

# A field's kind decides which expressions read it: keys are compared with `==`, numbers with `>`.
KEY = "key"
NUM = "num"
Fields = dict[str, str]
EVENT_FIELDS: Fields = {"k": KEY, "v": NUM}


# --------------------------------------------------------------------------- program model

@dataclass
class Emit:
    """`.emit(...)`: an optional `context:` target and field items (none: records pass unchanged)."""

    target: str | None
    items: list[tuple[str, str]]

    def render(self, with_contexts: bool) -> str:
        parts = [f"context: {self.target}"] if with_contexts and self.target is not None else []
        parts += [f"{name}: {expr}" for name, expr in self.items]
        return f".emit({', '.join(parts)})"


@dataclass
class Stream:
    name: str
    source: str
    context: str | None          # None: no `.context(...)`, the implicit `default` context
    context_at: int              # index in `ops` before which `.context(...)` is written
    ops: list[str]
    fields: Fields               # the fields of the stream's output records
    emit: Emit | None = None

    def render(self, with_contexts: bool) -> str:
        lines = [f"stream {self.name} = {self.source}"]
        for i, op in enumerate([*self.ops, ""]):
            if with_contexts and self.context is not None and i == self.context_at:
                lines.append(f"    .context({self.context})")
            if op:
                lines.append(f"    {op}")
        if self.emit is not None:
            lines.append(f"    {self.emit.render(with_contexts)}")
        return "\n".join(lines)


@dataclass(repr=False)
class Program:
    contexts: list[str]
    streams: list[Stream] = field(default_factory=list)
    workers: dict[str, int] = field(default_factory=dict)  # a context's pool size (RUN.md §7), 1 unless given

    def __repr__(self) -> str:
        # Hypothesis shows a failing example by its repr: the program text reads best.
        return f"Program(<<<\n{self.render()}>>>)"

    def by_name(self, name: str) -> Stream:
        return next(s for s in self.streams if s.name == name)

    def render(self, with_contexts: bool = True) -> str:
        parts = [f"context {c}" + (f" (workers: {self.workers[c]})" if self.workers.get(c, 1) > 1 else "")
                 for c in self.contexts] if with_contexts else []
        parts += [s.render(with_contexts) for s in self.streams]
        return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- operations

def _of_kind(fields: Fields, kind: str) -> list[str]:
    return [name for name, k in fields.items() if k == kind]


def condition_atom(draw: st.DrawFn, fields: Fields) -> str:
    nums, keys = _of_kind(fields, NUM), _of_kind(fields, KEY)
    choices = (["num"] * 3 if nums else []) + (["key"] if keys else []) + ["null"]
    kind = draw(st.sampled_from(choices))
    if kind == "num":
        name = draw(st.sampled_from(nums))
        op = draw(st.sampled_from((">", ">=", "<", "<=", "!=")))
        return f"{name} {op} {draw(st.sampled_from(NUMBER_LITERALS))}"
    if kind == "key":
        name = draw(st.sampled_from(keys))
        form = draw(st.sampled_from(("==", "!=", "in")))
        if form == "in":
            return f'{name} in ["a", 2]'
        return f"{name} {form} {draw(st.sampled_from(KEY_CONSTANTS))}"
    name = draw(st.sampled_from(sorted(fields)))
    return f"{name} is {draw(st.sampled_from(('null', 'not null')))}"


def condition(draw: st.DrawFn, fields: Fields) -> str:
    shape = draw(st.sampled_from(("atom", "atom", "and", "or", "not")))
    first = condition_atom(draw, fields)
    if shape == "atom":
        return first
    if shape == "not":
        return f"not ({first})"
    return f"{first} {shape} {condition_atom(draw, fields)}"


def numeric_expr(draw: st.DrawFn, name: str) -> str:
    return draw(st.sampled_from((name, f"{name} * 2", f"{name} + 1", f"{name} / 2", f"{name} % 3",
                                 f"-{name}", f"abs({name})", f"coalesce({name}, 0)")))


def field_items(draw: st.DrawFn, fields: Fields, pool: Sequence[str]) -> tuple[list[tuple[str, str]], Fields]:
    """Items `name: expr` for `.select` or `.emit`, and the fields they make."""
    names = sorted(fields)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True)) \
        if names else []
    items: list[tuple[str, str]] = []
    out: Fields = {}
    for name in chosen:
        kind = fields[name]
        target = name if draw(st.booleans()) else draw(st.sampled_from([p for p in pool if p not in out]))
        if target in out:
            continue
        expr = numeric_expr(draw, name) if kind == NUM else name
        items.append((target, expr))
        out[target] = kind
    if not items or draw(st.integers(0, 4)) == 0:
        extra = next(p for p in pool if p not in out)
        items.append((extra, draw(st.sampled_from(('"tag"', "7", "2.5")))))
        out[extra] = KEY if items[-1][1] == '"tag"' else NUM
    return items, out


def window_spec(draw: st.DrawFn) -> str:
    """Any window form of VPL.md §8.1: count, sliding count, time, sliding time, session."""
    kind = draw(st.sampled_from(("count", "count_sliding", "time", "time_sliding", "session")))
    if kind == "count":
        return str(draw(st.integers(1, 5)))
    if kind == "count_sliding":
        n = draw(st.integers(1, 5))
        return f"{n}, sliding: {draw(st.integers(1, n))}"
    if kind == "time":
        d = draw(st.sampled_from(DURATIONS))
        return draw(st.sampled_from((d, d, f"tumbling {d}", f"tumbling({d})")))
    if kind == "time_sliding":
        # At most five windows per record, so that outputs stay small.
        d = draw(st.sampled_from(DURATIONS[2:]))
        slides = [s for s in DURATIONS if DURATION_MS[d] <= 5 * DURATION_MS[s] <= 5 * DURATION_MS[d]]
        return f"{d}, sliding: {draw(st.sampled_from(slides))}"
    return f"session: {draw(st.sampled_from(SESSION_GAPS))}"


def aggregate_items(draw: st.DrawFn, fields: Fields, key: str | None) -> tuple[str, Fields]:
    """`.aggregate(...)` over the incoming fields (numbers preferred) and the fields it makes; the
    partition key may appear bare (VPL.md §7.2), other keys only inside `first`/`last`."""
    nums = _of_kind(fields, NUM) or sorted(fields)
    items: list[tuple[str, str]] = []
    if key is not None and draw(st.integers(0, 3)) > 0:
        items.append((key, key))
    elif draw(st.booleans()) and _of_kind(fields, KEY):
        items.append(("k", f"{draw(st.sampled_from(('last', 'first')))}({_of_kind(fields, KEY)[0]})"))
    calls = {"n": "count()", "s": "sum({})", "m": "max({})", "a": "avg({})", "lo": "min({})"}
    picked = draw(st.lists(st.sampled_from(sorted(calls)), min_size=1, max_size=len(calls), unique=True))
    taken = {name for name, _ in items}
    for name in picked:
        if name in taken:
            continue
        arg = draw(st.sampled_from(nums))
        items.append((name, calls[name].format(arg)))
    out: Fields = {name: (KEY if name == key or expr.startswith(("last", "first")) else NUM)
                   for name, expr in items}
    return ".aggregate(" + ", ".join(f"{n}: {e}" for n, e in items) + ")", out


def where_select(draw: st.DrawFn, fields: Fields, count: int) -> tuple[list[str], Fields]:
    """`count` operations, each a `.where` or a `.select`, and the fields after them."""
    ops: list[str] = []
    for _ in range(count):
        if draw(st.integers(0, 2)) < 2:
            ops.append(f".where({condition(draw, fields)})")
        else:
            items, fields = field_items(draw, fields, ("k", "v", "w", "x", "y", "z", "k2"))
            ops.append(".select(" + ", ".join(n if n == e else f"{n}: {e}" for n, e in items) + ")")
    return ops, fields


@st.composite
def stream_body(draw: st.DrawFn, fields: Fields) -> tuple[list[str], Fields]:
    """The operations of one stream (without `.context` and `.emit`) and its output fields."""
    shape = draw(st.sampled_from(("plain", "window_agg", "window_agg", "window", "partition_only")))
    ops, fields = where_select(draw, fields, draw(st.integers(0 if shape != "plain" else 1, 2)))
    if shape == "partition_only":
        ops.append(f".partition_by({draw(st.sampled_from(sorted(fields)))})")
        more, fields = where_select(draw, fields, draw(st.integers(0, 1)))
        return ops + more, fields
    if shape == "plain":
        return ops, fields
    key: str | None = None
    if draw(st.integers(0, 3)) > 0:
        keys = _of_kind(fields, KEY)
        key = draw(st.sampled_from(keys if keys and draw(st.integers(0, 4)) > 0 else sorted(fields)))
        ops.append(f".partition_by({key})")
    ops.append(f".window({window_spec(draw)})")
    if shape == "window":
        more, fields = where_select(draw, fields, draw(st.integers(0, 1)))
        return ops + more, fields
    agg, fields = aggregate_items(draw, fields, key)
    ops.append(agg)
    if draw(st.integers(0, 3)) == 0:
        ops.append(f".having({condition(draw, fields)})")
    more, fields = where_select(draw, fields, draw(st.integers(0, 1)))
    return ops + more, fields


@st.composite
def programs(draw: st.DrawFn) -> Program:
    """1-4 declared contexts and 2-6 streams; a stream reads A, B or an earlier stream (chains and
    fan-outs, never a cycle) and lives in a declared context, in `default` by name, or nowhere
    named (the implicit `default`)."""
    contexts = [f"c{i}" for i in range(draw(st.integers(1, 4)))]
    # Pools of random sizes: their results do not depend on the size (RUN.md §7).
    program = Program(contexts, workers={c: draw(st.sampled_from((1, 1, 2, 3, 4))) for c in contexts})
    placements: list[str | None] = [*contexts, "default", None, None]
    for i in range(draw(st.integers(2, 6))):
        earlier = [s.name for s in program.streams]
        source = draw(st.sampled_from([*EVENT_TYPES, *earlier, *earlier]))
        fields = EVENT_FIELDS if source in EVENT_TYPES else program.by_name(source).fields
        ops, fields = draw(stream_body(fields))
        stream = Stream(f"S{i}", source, draw(st.sampled_from(placements)),
                        draw(st.integers(0, len(ops))), ops, fields)
        form = draw(st.sampled_from(("none", "none", "plain", "items")))
        if form == "plain":
            stream.emit = Emit(None, [])
        elif form == "items":
            items, stream.fields = field_items(draw, fields, ("k", "v", "w", "x", "y", "k2"))
            stream.emit = Emit(None, items)
        program.streams.append(stream)
    # `context:` targets, chosen once the readers are known: a reader's context (explicit edge),
    # any context (a target without reader: a warning) or none (an implicit edge when a reader
    # lives elsewhere).
    for stream in program.streams:
        readers = [s.context or "default" for s in program.streams if s.source == stream.name]
        target = draw(st.sampled_from(["none", "none", "reader", "reader", "any"]))
        if target == "none" or (target == "reader" and not readers):
            continue
        name = draw(st.sampled_from(readers if target == "reader" else [*contexts, "default"]))
        if stream.emit is None:
            stream.emit = Emit(name, [])
        else:
            stream.emit.target = name
    return program


def strip_contexts(source: str) -> str:
    """VPL.md §10.3's deletion done on the text: every `context` declaration, every `.context(...)`
    and every `context:` item of an `.emit` removed."""
    lines = []
    for line in source.splitlines():
        if re.fullmatch(r"context \w+( \(workers: \d+\))?|\s*\.context\(\w+\)", line):
            continue
        lines.append(re.sub(r"context: \w+(, )?", "", line))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- events

def event_line(etype: str, ts: int, key: str | None, value: str | None, as_json: bool) -> str:
    """One `.evt` line; `key` and `value` are text-event literals, None leaves the field out."""
    if as_json:
        members = [f'"type": "{etype}"']
        if key is not None:
            members.append(f'"k": {JSON_KEYS.get(key, key)}')
        if value is not None:
            members.append(f'"v": {value}')
        return f"@{ts} {{{', '.join(members)}}}"
    items = ([f"k: {key}"] if key is not None else []) + ([f"v: {value}"] if value is not None else [])
    return f"@{ts} {etype} {{ {', '.join(items)} }}"


@st.composite
def event_files(draw: st.DrawFn) -> str:
    """0-60 events of types A and B, times mostly increasing with a few steps back (late events)."""
    lines = ["# generated"]
    ts = draw(st.integers(0, 400))
    for _ in range(draw(st.integers(0, 60))):
        step = draw(st.sampled_from(STEPS))
        ts = max(0, ts + step)
        key = draw(st.sampled_from([*KEY_LITERALS, *KEY_LITERALS, None]))
        value = draw(st.sampled_from([*NUMBER_LITERALS, "null", None]))
        as_json = draw(st.integers(0, 7)) == 0
        lines.append(event_line(draw(st.sampled_from(EVENT_TYPES)), ts, key, value, as_json))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- running

@dataclass
class Outcome:
    returncode: int
    stdout: bytes
    stderr: str


def start(program: Path, events: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*varpulis_command(), "simulate", "-p", str(program), "-e", str(events), "--immediate",
         "--output", "jsonl", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def finish(proc: subprocess.Popen[bytes], timeout: float) -> Outcome:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # The run and its worker processes form one session of their own: end them all.
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return Outcome(-1, out, err.decode(errors="replace") + "\n[timed out]")
    return Outcome(proc.returncode, out, err.decode(errors="replace"))


def run_three_ways(folder: Path, program: Program, events: str, timeout: float = RUN_TIMEOUT_S
                   ) -> dict[str, Outcome]:
    """Run the program with worker processes, `--inline`, and without contexts, side by side."""
    with_ctx = folder / "program.vpl"
    without_ctx = folder / "program_no_contexts.vpl"
    evt = folder / "events.evt"
    with_ctx.write_text(program.render(True), encoding="utf-8")
    without_ctx.write_text(program.render(False), encoding="utf-8")
    evt.write_text(events, encoding="utf-8")
    procs = {
        "processes": start(with_ctx, evt),
        "inline": start(with_ctx, evt, "--inline"),
        "no contexts": start(without_ctx, evt),
    }
    # The three run side by side, so one deadline covers them all.
    deadline = time.monotonic() + timeout
    return {name: finish(proc, max(0.1, deadline - time.monotonic())) for name, proc in procs.items()}


def _diff(a: bytes, b: bytes, a_name: str, b_name: str) -> str:
    lines = difflib.unified_diff(a.decode(errors="replace").splitlines(),
                                 b.decode(errors="replace").splitlines(), a_name, b_name, lineterm="", n=1)
    return "\n".join(list(lines)[:40])


def assert_same_everywhere(outcomes: dict[str, Outcome], program: Program) -> None:
    reference = outcomes["no contexts"]
    problems: list[str] = []
    for name, outcome in outcomes.items():
        if outcome.returncode != 0:
            problems.append(f"{name}: exit status {outcome.returncode}\n{outcome.stderr[-2000:]}")
        if "Traceback" in outcome.stderr:
            problems.append(f"{name}: traceback on standard error\n{outcome.stderr[-3000:]}")
    for name in ("inline", "processes"):
        if outcomes[name].stdout != reference.stdout:
            problems.append(f"{name} differs from no contexts:\n"
                            + _diff(reference.stdout, outcomes[name].stdout, "no contexts", name))
    if problems:
        raise AssertionError("\n\n".join(problems) + "\n\nprogram:\n" + program.render(True))


# --------------------------------------------------------------------------- tests

@pytest.mark.timeout(600)
@settings(max_examples=15, deadline=None, derandomize=True, database=None, print_blob=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(program=programs(), events=event_files())
def test_random_programs_same_output_in_every_layout(program: Program, events: str) -> None:
    note("program:\n" + program.render(True))
    note("events:\n" + events)
    assert strip_contexts(program.render(True)) == program.render(False)
    with tempfile.TemporaryDirectory(prefix="vmp-random-") as tmp:
        outcomes = run_three_ways(Path(tmp), program, events)
    for name, outcome in outcomes.items():
        note(f"stdout ({name}):\n{outcome.stdout.decode(errors='replace')}")
    assert_same_everywhere(outcomes, program)


BIG_CONTEXTS = ["ingest", "compute", "session", "alert"]


def big_program() -> Program:
    """Three contexts plus `default`, a chain, a fan-out, every window kind, partitioned and not,
    explicit and implicit cross-context edges."""
    p = Program(BIG_CONTEXTS)

    def add(name: str, source: str, context: str | None, ops: list[str], emit: Emit | None = None) -> None:
        p.streams.append(Stream(name, source, context, 0, ops, {}, emit))

    add("Clean", "A", "ingest", [".where(v is not null and v > -3)", ".select(k, v, w: v * 2)"],
        Emit("compute", []))
    add("Tumble", "Clean", "compute",
        [".partition_by(k)", ".window(500ms)", ".aggregate(k: k, n: count(), s: sum(v), m: max(v), a: avg(w))"],
        Emit("alert", []))
    add("Slide", "Clean", "compute",
        [".partition_by(k)", ".window(1s, sliding: 250ms)", ".aggregate(k: k, n: count(), a: avg(v))"])
    add("Counts", "Clean", None, [".window(7)", ".aggregate(n: count(), s: sum(v), lo: min(v))"])
    add("CountSlide", "B", "compute",
        [".partition_by(k)", ".window(4, sliding: 3)", ".aggregate(k: k, s: sum(v), m: max(v))"])
    add("Sessions", "B", "session",
        [".where(v is not null)", ".partition_by(k)", ".window(session: 300ms)",
         ".aggregate(k: k, n: count(), s: sum(v), a: avg(v))"], Emit("alert", []))
    add("Held", "A", "session", [".window(2s)", ".where(v > 4)"])
    add("HeldCount", "B", None, [".partition_by(k)", ".window(3, sliding: 2)"])
    add("Alerts", "Tumble", "alert", [".where(m > 10 or n > 4)"],
        Emit(None, [("k", "k"), ("peak", "m"), ("tag", '"hot"')]))
    add("SessionAlerts", "Sessions", "alert", [".where(n > 1)"])
    add("Back", "Alerts", None, [".window(3)", ".aggregate(n: count(), p: max(peak))"])
    add("Rolled", "Slide", "alert", [".window(2s)", ".aggregate(n: count(), a: avg(a))"])
    return p


def big_events(count: int, seed: int = 20261122) -> str:
    rng = random.Random(seed)
    lines: list[str] = []
    ts = 0
    keys = ['"a"', '"b"', "c", "1", "2", "1.0", '"d"']
    for _ in range(count):
        back = rng.random() < 0.08
        ts = max(0, ts + (rng.choice((-50, -700)) if back else rng.choice((0, 5, 20, 40, 60, 90, 150, 400))))
        value = rng.choice(("null", str(rng.randint(-5, 20)), f"{rng.randint(-50, 200) / 4}"))
        lines.append(f"@{ts} {rng.choice(EVENT_TYPES)} {{ k: {rng.choice(keys)}, v: {value} }}")
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(300)
def test_generated_5k_events_same_output_in_every_layout(tmp_path: Path) -> None:
    program = big_program()
    outcomes = run_three_ways(tmp_path, program, big_events(5000), timeout=120.0)
    assert_same_everywhere(outcomes, program)
    assert outcomes["no contexts"].stdout.count(b"\n") > 5000
