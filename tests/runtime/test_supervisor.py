"""Worker processes give exactly the single-process output: conformance cases, a big generated
input, bad event lines, pinning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import CONFORMANCE, conformance_cases, needs_shared
from varpulis_mp.errors import EventFileError
from varpulis_mp.runtime import affinity
from varpulis_mp.runtime.handover import EveryOrigin
from varpulis_mp.runtime.supervisor import FileInput, ProcessOptions, run_processes

from . import (
    BIG_PROGRAM,
    generate_events,
    load,
    run_local_file,
    run_processes_file,
    same_result,
    track_run_dirs,
    wait_no_children,
    worker_pids_by_context,
)

CASES = [p.name for p in conformance_cases("records") if (p / "expected.jsonl").exists()]


@needs_shared
@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CASES)
def test_conformance_case_matches_run_local(case: str) -> None:
    folder = CONFORMANCE / case
    program = load((folder / "program.vpl").read_text(encoding="utf-8"), str(folder / "program.vpl"))
    events = folder / "events.evt"
    expected, expected_summary = run_local_file(program, events)
    got, summary = run_processes_file(program, events, pin=False)
    assert got == expected
    assert same_result(summary, expected_summary), (summary, expected_summary)
    assert wait_no_children() == []


@pytest.fixture(scope="module")
def big_events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.evt"
    generate_events(path, 50_000)
    return path


@pytest.mark.timeout(300)
@pytest.mark.parametrize("capacity", [1000, 7])
def test_generated_50k_events_match_run_local(big_events: Path, capacity: int) -> None:
    program = load(BIG_PROGRAM)
    expected, expected_summary = run_local_file(program, big_events)
    got, summary = run_processes_file(program, big_events, channel_capacity=capacity, pin=False)
    assert not isinstance(summary, Exception), summary
    assert not isinstance(expected_summary, Exception)
    assert summary == expected_summary
    # Every kind of window closed, across contexts, and the flush produced something.
    kinds = {(o.stream, o.kind) for origin in got for o in origin}
    assert {("PerZone", "window"), ("Sessions", "session"), ("CountSlide", "window"),
            ("CountTumble", "window"), ("Sliding", "window"), ("Hot", "record")} <= kinds
    assert summary.unread_events > 0 and summary.cross_context_events > 0
    assert summary.counters.late_events > 0
    assert len(got) == len(expected) == summary.events_processed + 1
    for k, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a == b, f"origin {k + 1} differs"


BAD_PROGRAM = """
context a
context b
stream A = T.context(a).where(v > 0)
stream B = A.context(b).window(2).aggregate(n: count(), s: sum(v))
stream C = U.context(b).emit(w: w)
"""


def _lines(n: int) -> list[str]:
    out: list[str] = []
    for i in range(1, n):
        out.append(f"@{i} T {{ v: {i} }}")
        if i % 3 == 0:
            out.append(f"@{i} U {{ w: {i} }}")
        if i % 5 == 0:
            out.append(f"@{i} Z {{ q: {i} }}")
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where,bad", [
    ("worker", "@1 T { v: 1 bad }"),  # parsed in a worker
    ("router-unread", "@1 Z { v: 1 bad }"),  # a type no stream reads: parsed by the router
    ("router-time", "@x T { v: 1 }"),  # rejected while classifying the line
    ("router-stream-type", "A { v: 1 }"),  # an event type that names a stream
    ("json", '{"type": "T", "v": 1, "v": 2}'),
])
def test_bad_line_stops_after_releasing_only_earlier_origins(tmp_path: Path, where: str, bad: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _lines(2000)
    lines[1500] = bad
    path = tmp_path / "bad.evt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    program = load(BAD_PROGRAM)
    made = track_run_dirs(monkeypatch)
    expected, expected_error = run_local_file(program, path)
    got, error = run_processes_file(program, path, pin=False)
    assert isinstance(error, EventFileError), error
    assert isinstance(expected_error, EventFileError)
    assert error.diagnostics == expected_error.diagnostics
    assert got == expected
    assert wait_no_children() == []
    assert len(made) == 1 and not os.path.exists(made[0])


@pytest.mark.timeout(60)
def test_first_of_two_bad_lines_in_different_workers_wins(tmp_path: Path) -> None:
    lines = _lines(3000)
    lines[2500] = "@1 T { v: 1 bad }"  # context a
    lines[2000] = "@5 U { w: 1, w: 2 }"  # context b, earlier in the file
    path = tmp_path / "bad2.evt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    program = load(BAD_PROGRAM)
    expected, expected_error = run_local_file(program, path)
    got, error = run_processes_file(program, path, pin=False)
    assert isinstance(error, EventFileError)
    assert str(error) == str(expected_error) and "duplicate field" in str(error)
    assert got == expected


@pytest.mark.timeout(60)
def test_invalid_utf8_line(tmp_path: Path) -> None:
    lines = _lines(1000)
    data = ("\n".join(lines[:700]) + "\n").encode() + b"@5 T { v: \xff }\n" + "\n".join(lines[700:]).encode()
    path = tmp_path / "utf.evt"
    path.write_bytes(data)
    program = load(BAD_PROGRAM)
    expected, expected_error = run_local_file(program, path)
    got, error = run_processes_file(program, path, pin=False)
    assert isinstance(error, EventFileError) and "invalid UTF-8" in str(error)
    assert str(error) == str(expected_error)
    assert got == expected


@pytest.mark.timeout(60)
def test_binary_stream_source_and_input_callback(tmp_path: Path) -> None:
    path = tmp_path / "ok.evt"
    path.write_text("BATCH 2s\n" + "\n".join(_lines(300)) + "\nT { v: 5 }\n", encoding="utf-8")
    program = load(BAD_PROGRAM)
    expected, expected_summary = run_local_file(program, path)
    seen: list[tuple[int, int, str]] = []
    with open(path, "rb") as handle:
        got, summary = run_processes_file(program, handle, pin=False,
                                          on_input_event=lambda n, ts, t: seen.append((n, ts, t)))
    assert got == expected and summary == expected_summary
    assert [n for n, _, _ in seen] == list(range(1, len(seen) + 1))
    assert seen[0] == (1, 1, "T") and seen[-1][1:] == (2000, "T")  # the BATCH time applies
    assert any(t == "Z" for _, _, t in seen)  # unread events are announced too


PINNED = """
context first (cores: [0])
context second (cores: [{core}])
stream A = T.context(first).emit(v: v)
stream B = A.context(second).window(2).aggregate(s: sum(v))
"""


@pytest.mark.timeout(60)
@pytest.mark.skipif(not affinity.supports_affinity(), reason="no cpu affinity on this platform")
def test_workers_are_pinned_to_their_cores(tmp_path: Path) -> None:
    cores = affinity.available_cores()
    if 0 not in cores:
        pytest.skip(f"core 0 is not available here (available: {affinity.describe_cores(cores)})")
    last = cores[-1]
    program = load(PINNED.format(core=last))
    path = tmp_path / "e.evt"
    path.write_text("\n".join(f"@{i} T {{ v: {i} }}" for i in range(50)) + "\n", encoding="utf-8")
    seen: dict[str, list[int]] = {}

    def look(_: object) -> None:
        if not seen:
            for name, pid in worker_pids_by_context().items():
                seen[name] = affinity.process_affinity(pid)

    run_processes(program, FileInput(path, "e.evt"), EveryOrigin(look))
    assert seen == {"first": [0], "second": [last]}
    seen.clear()
    run_processes(program, FileInput(path, "e.evt"), EveryOrigin(look), ProcessOptions(unpinned=frozenset({"second"})))
    assert seen == {"first": [0], "second": cores}
    assert wait_no_children() == []


def test_core_lists_are_checked_and_described() -> None:
    cores = affinity.available_cores()
    assert affinity.unavailable_core(cores) is None
    assert affinity.unavailable_core([cores[0], 100_000, 100_001]) == 100_000
    assert affinity.describe_cores([6, 0, 1, 2, 3]) == "0-3,6"
    assert affinity.describe_cores([1, 3, 5]) == "1,3,5"
    assert os.getpid() not in affinity.child_pids()


CYCLE = """
context worker
context other
stream Prepared = Job.emit(id: id, cost: cost * 2)
stream Costly = Prepared.context(worker).where(cost > 10)
stream Summary = Costly.window(2).aggregate(n: count(), total: sum(cost))
stream Back = Summary.context(worker).window(3, sliding: 1).aggregate(k: count(), t: sum(total))
stream Again = Back.context(other).emit(k: k)
stream Final = Again.partition_by(k).window(session: 5ms).aggregate(k: k, c: count())
stream Side = Job.context(other).where(cost > 3)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("capacity", [2, 1000])
def test_contexts_in_a_cycle_with_tiny_channels_do_not_deadlock(tmp_path: Path, capacity: int) -> None:
    path = tmp_path / "cycle.evt"
    path.write_text("".join(f"@{i} Job {{ id: {i}, cost: {(i * 7919) % 21} }}\n" for i in range(4000)),
                    encoding="utf-8")
    program = load(CYCLE)
    expected, expected_summary = run_local_file(program, path)
    got, summary = run_processes_file(program, path, channel_capacity=capacity, pin=False)
    assert summary == expected_summary
    assert got == expected


@pytest.mark.timeout(60)
def test_context_with_an_unavailable_core_runs_unpinned(tmp_path: Path) -> None:
    program = load(PINNED.replace("[0]", "[100000]").format(core=100_001))
    path = tmp_path / "e.evt"
    path.write_text("\n".join(f"@{i} T {{ v: {i} }}" for i in range(20)) + "\n", encoding="utf-8")
    seen: dict[str, list[int]] = {}

    def look(_: object) -> None:
        if not seen and affinity.supports_affinity():
            for name, pid in worker_pids_by_context().items():
                seen[name] = affinity.process_affinity(pid)

    expected, expected_summary = run_local_file(program, path)
    got, summary = run_processes_file(program, path, pin=True)
    assert got == expected and summary == expected_summary
    run_processes(program, FileInput(path, "e.evt"), EveryOrigin(look))
    if affinity.supports_affinity():
        assert seen == {"first": affinity.available_cores(), "second": affinity.available_cores()}


def test_channel_bounds_follow_the_capacity() -> None:
    from varpulis_mp.runtime.transport import DEFAULT_BATCH, batch_size_for, hwm_for

    assert batch_size_for(1000) == DEFAULT_BATCH and hwm_for(1000) == 1000 // DEFAULT_BATCH
    assert batch_size_for(1) == 1 and hwm_for(1) == 1
    assert batch_size_for(50) == 50 and hwm_for(50) == 1
    assert hwm_for(10**6) == 10**6 // DEFAULT_BATCH


def test_block_ingress_pieces_are_never_small_and_the_ingress_mark_keeps_about_the_capacity() -> None:
    from varpulis_mp.runtime.transport import MIN_BLOCK_LINES, block_lines_for, ingress_hwm_for

    # A small capacity: one piece of the least size per end.
    for capacity in (1, 100, 1000, MIN_BLOCK_LINES):
        assert block_lines_for(capacity) == MIN_BLOCK_LINES and ingress_hwm_for(capacity) == 1
    # A large one: pieces of the least size, as many as make the capacity.
    assert block_lines_for(100_000) == MIN_BLOCK_LINES
    assert ingress_hwm_for(100_000) == 100_000 // MIN_BLOCK_LINES
    assert ingress_hwm_for(100_000) * block_lines_for(100_000) <= 100_000


@pytest.mark.timeout(30)
@pytest.mark.parametrize("batch", [1, 3, 512])
def test_ingress_classifies_lines_as_the_parser_does(tmp_path: Path, batch: int) -> None:
    from varpulis_mp.io.readers import EventParser
    from varpulis_mp.runtime import wire
    from varpulis_mp.runtime.ingress import Block, InputEnd, InputReader

    lines = [
        "@5ms T { v: 1 }", "  @7s   T{ v: 2 }", "T { v: 3 }", "BATCH 2m", "T {}", "@1h U { }",
        "@0005 T { v: 4 }", "\t@3m\tU\t{ w: 1 }", "# comment", "", "// other", "@2 Tx { a: [1, 2] }",
        '{"type": "T", "ts": 9, "v": 5}', '@4 {"type": "U", "w": 2}', "@1 BATCH { b: 1 }",
        "@999999999999 T { v: 6 }", "@9999999999999 T { v: 7 }", "@12s T { v: 8 }",
    ] + [f"@{i} {t} {{ v: {i} }}" for i in range(40) for t in ("T", "U", "Tx")]
    path = tmp_path / "kinds.evt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = InputReader(path, "kinds.evt", ["S"], [["T", "BATCH"], ["U"], []], batch, want_events=True)
    reader.start()
    announced: list[tuple[int, str, int]] = []
    routed: dict[int, tuple[int, str, int, str]] = {}  # origin -> worker, type, line, text
    unread = 0
    while True:
        item = reader.queue.get(timeout=10)
        if isinstance(item, InputEnd):
            break
        assert isinstance(item, Block), item
        assert item.types is not None and item.times is not None
        first = item.last - item.events + 1
        announced.extend(zip(range(first, item.last + 1), item.types, item.times, strict=True))
        unread += item.unread
        assert item.messages[2] == []
        for w, messages in enumerate(item.messages):
            for data in messages:
                frames = wire.decode(data)
                assert sum(len(f[5]) for f in frames if f[0] == wire.LINES) <= batch
                for _, type_name, ob, line, _, idx, text in (f for f in frames if f[0] == wire.LINES):
                    for i, t in zip(idx, text.split("\n"), strict=True):
                        routed[ob + i] = (w, type_name, line + i, t)
            if w < 2:
                assert wire.decode(messages[-1])[-1] == [wire.PROGRESS, [["T", "BATCH"], ["U"]][w], item.last]
    reader.join(5)
    reader.close()
    parser = EventParser("kinds.evt", ["S"])
    expected: list[tuple[int, str, int]] = []
    for lineno, text in enumerate(lines, 1):
        event = parser.parse_line(text, lineno)
        if event is not None:
            origin = len(expected) + 1
            expected.append((origin, event.type, event.ts))
            w = routed[origin][0]
            if event.type == "Tx":  # no worker reads it: one that reads events checks it
                assert w in (0, 1)
            else:
                assert w == {"T": 0, "BATCH": 0, "U": 1}[event.type]
            assert routed[origin][1:] == (event.type, lineno, text)
    assert announced == expected
    assert unread == sum(1 for _, t, _ in expected if t == "Tx")
