"""Block ingress (JSON Lines output): whole blocks of input lines to the workers, records written by
the workers. The same lines, summary and diagnostics as one process, whatever the lines hold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.errors import EventFileError
from varpulis_mp.io.jsonl import jsonl_line
from varpulis_mp.io.readers import read_events
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.handover import Batches, OriginsWithOutputs
from varpulis_mp.runtime.ingress_blocks import pieces
from varpulis_mp.runtime.local import run_local
from varpulis_mp.runtime.supervisor import FileInput, ProcessOptions, run_processes

from . import BIG_PROGRAM, generate_events, load, track_run_dirs, wait_no_children

Result = tuple[list[str], Summary | EventFileError]


def local_lines(program: CheckedProgram, path: Path) -> Result:
    lines: list[str] = []

    def write(outputs: list[Output]) -> None:
        lines.extend(jsonl_line(o) for o in outputs if o.kind == "record")

    try:
        names = [s.name for s in program.streams]
        summary: Summary | EventFileError = run_local(program, read_events(path, "e.evt", names),
                                                      OriginsWithOutputs(write))
    except EventFileError as exc:
        summary = exc
    return lines, summary


class _Lines:
    """A delivery that takes the records as JSON Lines (block ingress, the workers render)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_batch(self, outputs: list[Output], flush: bool) -> None:
        raise AssertionError("a delivery that renders lines gets the records as lines")

    def write_lines(self, lines: list[str]) -> None:
        self.lines += lines


def block_lines(program: CheckedProgram, path: Path, capacity: int = 1000) -> Result:
    taken = _Lines()
    try:
        summary: Summary | EventFileError = run_processes(program, FileInput(path, "e.evt"), taken,
                                                          ProcessOptions(capacity, pin=False))
    except EventFileError as exc:
        summary = exc
    return taken.lines, summary


def block_outputs(program: CheckedProgram, path: Path, capacity: int = 1000
                  ) -> tuple[list[tuple[list[Output], bool]], Summary | EventFileError]:
    """Block ingress with Outputs (the human output's way): each origin that has some, and
    whether it is the end-of-input flush."""
    got: list[tuple[list[Output], bool]] = []
    try:
        summary: Summary | EventFileError = run_processes(
            program, FileInput(path, "e.evt"), Batches(lambda outputs, flush: got.append((outputs, flush))),
            ProcessOptions(capacity, pin=False))
    except EventFileError as exc:
        summary = exc
    return got, summary


def assert_same(program: CheckedProgram, path: Path, capacity: int = 1000) -> Result:
    expected, expected_end = local_lines(program, path)
    got, end = block_lines(program, path, capacity)
    outputs, outputs_end = block_outputs(program, path, capacity)
    for found in (end, outputs_end):
        if isinstance(expected_end, EventFileError):
            assert isinstance(found, EventFileError), found
            assert found.diagnostics == expected_end.diagnostics
        else:
            assert found == expected_end
    assert got == expected
    # The same records, every output in canonical order, and only the last origin is the flush.
    assert [jsonl_line(o) for origin, _ in outputs for o in origin if o.kind == "record"] == expected
    assert all(origin for origin, _ in outputs)
    flushes = [flush for _, flush in outputs]
    assert not any(flushes[:-1])
    if isinstance(expected_end, EventFileError):
        assert not any(flushes)  # a run stopped at a bad line has no end-of-input flush
    return got, end


# Two workers; T read by both (fan-out), U by one, Z and Q by none; TT's name holds T's.
PROGRAM = load("""
context a
context b
stream A = T.context(a).where(v > 0)
stream B = A.context(b).window(2).aggregate(n: count(), s: sum(v))
stream C = U.context(b).emit(w: w)
stream D = T.context(b).partition_by(k).window(3).aggregate(k: k, m: max(v))
stream E = TT.context(a).emit(x: x)
""")


def base_lines(n: int) -> list[str]:
    out: list[str] = []
    for i in range(1, n):
        out.append(f'@{i} T {{ v: {i % 7 - 2}, k: "k{i % 3}" }}')
        if i % 3 == 0:
            out.append(f"@{i} U {{ w: {i} }}")
        if i % 5 == 0:
            out.append(f'@{i} Z {{ q: {i}, note: "T U TT" }}')
        if i % 11 == 0:
            out.append(f"@{i} TT {{ x: {i} }}")
    return out


ODD_BLOCKS: dict[str, list[str]] = {
    "comments and empty lines": ["# T U", "", "   ", "// TT { x: 1 }"],
    "BATCH times": ["BATCH 5s", 'T { v: 3, k: "b" }', "U { w: 2 }", "BATCH 7000"],
    "JSON events": ['{"event_type": "T", "v": 4, "k": "j"}', '{"event_type": "Z", "q": 1}',
                    '@9 {"event_type": "U", "w": 9}'],
    "JSON event whose type is escaped": ['{"event_type": "\\u0054", "v": 5, "k": "e"}'],
    "read types named inside an unread event": ['@3 Z { q: 1, note: "T { v: 1 }" }', '@4 Q { s: "U TT" }'],
    "other layouts of read types": ['T{v:1,k:"x"}', '  @2s   T  {  v : 2 , k : "y" , } ;', "@3 U {w:3,}"],
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("capacity", [1000, 3])
@pytest.mark.parametrize("odd", list(ODD_BLOCKS), ids=list(ODD_BLOCKS))
def test_odd_lines_give_the_same_records_and_counts(tmp_path: Path, odd: str, capacity: int) -> None:
    lines = base_lines(1500)
    for at in (5, 700, 1600):  # near the start, in the middle of a block, later on
        lines[at:at] = ODD_BLOCKS[odd]
    path = tmp_path / "odd.evt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, summary = assert_same(PROGRAM, path, capacity)
    outputs, _ = block_outputs(PROGRAM, path, capacity)
    assert outputs[-1][1]  # partial windows flushed at the end of input, marked as such
    assert isinstance(summary, Summary)
    assert summary.unread_events > 0
    assert wait_no_children() == []


BAD_LINES = {
    "read type, one worker": "@1 U { w: 1 bad }",
    "read type, both workers": '@1 T { v: 1, k: "a" bad }',
    "unread type": "@1 Z { q: 1 bad }",
    "bad time": "@x T { v: 1 }",
    "type that names a stream": "A { v: 1 }",
    "garbage": "this is not an event",
    "duplicate field in JSON": '{"event_type": "T", "v": 1, "v": 2}',
    "bad line after a BATCH line": "BATCH 1s\n@1 U { w: }",
    "unread type naming read types": '@1 Z { q: "T U", }}',
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bad", list(BAD_LINES), ids=list(BAD_LINES))
def test_a_bad_line_stops_at_the_same_place_with_the_same_diagnostic(tmp_path: Path, bad: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    lines = base_lines(3000)
    lines[2500] = BAD_LINES[bad]
    path = tmp_path / "bad.evt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    made = track_run_dirs(monkeypatch)
    got, end = assert_same(PROGRAM, path)
    assert isinstance(end, EventFileError)
    assert got  # the records before the bad line were written
    assert wait_no_children() == []
    assert len(made) == 2 and not any(os.path.exists(d) for d in made)  # one per layout


@pytest.mark.timeout(120)
def test_the_first_of_several_bad_lines_wins(tmp_path: Path) -> None:
    lines = base_lines(3000)
    lines[2600] = "@1 T { v: 1 bad }"  # both workers
    lines[2400] = "@5 Z { q: 1, q: 2 }"  # the checker of its block
    lines[2450] = "@5 U { w: 1, w: 2 }"  # worker b
    path = tmp_path / "bad3.evt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, end = assert_same(PROGRAM, path)
    assert isinstance(end, EventFileError) and end.diagnostics[0].pos.line == 2401


@pytest.mark.timeout(60)
def test_invalid_utf8_line(tmp_path: Path) -> None:
    lines = base_lines(1000)
    data = ("\n".join(lines[:700]) + "\n").encode() + b"@5 T { v: \xff }\n" + "\n".join(lines[700:]).encode()
    path = tmp_path / "utf.evt"
    path.write_bytes(data)
    _, end = assert_same(PROGRAM, path)
    assert isinstance(end, EventFileError) and "invalid UTF-8" in str(end)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("capacity", [1000, 7])
def test_generated_50k_events_through_every_window_kind(tmp_path: Path, capacity: int) -> None:
    path = tmp_path / "big.evt"
    generate_events(path, 50_000, seed=5)
    got, summary = assert_same(load(BIG_PROGRAM), path, capacity)
    assert isinstance(summary, Summary) and summary.events_processed > 0 and got


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab\t {}", max_size=12), min_size=1, max_size=60),
       st.integers(1, 9), st.integers(1, 1000))
def test_pieces_cover_the_text_in_order_within_the_batch(lines: list[str], batch: int, first: int) -> None:
    text = "\n".join(lines)
    cut = list(pieces(first, text, batch))
    assert "\n".join(piece for _, _, piece in cut) == text
    expected_first = first
    for start, last, piece in cut:
        assert start == expected_first
        assert last - start + 1 == piece.count("\n") + 1 <= batch
        expected_first = last + 1
    assert expected_first == first + len(lines)
