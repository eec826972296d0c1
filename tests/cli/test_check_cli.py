"""`varpulis-mp check` run as a real command: exit codes, messages, no tracebacks, limits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import conformance_cases, needs_shared, run_cli

TRACEBACK = "Traceback (most recent call last)"


def _expected_error(case: Path) -> tuple[str, str]:
    lines = [line.strip() for line in (case / "expected_error.txt").read_text().splitlines() if line.strip()]
    return lines[0], lines[1]


@needs_shared
@pytest.mark.parametrize("case", conformance_cases("records"), ids=lambda p: p.name)
def test_every_valid_program_checks_ok(case: Path) -> None:
    program = str(case / "program.vpl")
    proc = run_cli("check", program)
    assert proc.returncode == 0, proc.stderr
    assert TRACEBACK not in proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{program}: OK (") and lines[0].endswith(" contexts)")


@needs_shared
@pytest.mark.parametrize(
    "case",
    [c for c in conformance_cases("errors") if (c / "events.evt").exists()],
    ids=lambda p: p.name,
)
def test_error_cases_with_events_have_valid_programs(case: Path) -> None:
    proc = run_cli("check", str(case / "program.vpl"))
    assert proc.returncode == 0, proc.stderr
    position, phrase = _expected_error(case)
    proc = run_cli("check", str(case / "program.vpl"), "-e", str(case / "events.evt"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert position in proc.stderr and phrase.lower() in proc.stderr.lower(), proc.stderr
    assert proc.stderr.rstrip().endswith("error(s), 0 warning(s)")
    assert TRACEBACK not in proc.stderr


@needs_shared
@pytest.mark.parametrize(
    "case",
    [c for c in conformance_cases("errors") if not (c / "events.evt").exists()],
    ids=lambda p: p.name,
)
def test_error_cases_fail_with_position_and_phrase(case: Path) -> None:
    position, phrase = _expected_error(case)
    proc = run_cli("check", str(case / "program.vpl"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert position in proc.stderr, proc.stderr
    assert phrase.lower() in proc.stderr.lower()
    assert TRACEBACK not in proc.stderr
    # Shape of §13: first line, the source line with its number, a caret line, the count line.
    lines = proc.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if ": error: " in line and position in line)
    source, caret = lines[at + 1 : at + 3]
    assert source.lstrip().split(" | ")[0].isdigit()
    assert caret.rstrip().endswith("^") or "^" in caret
    assert proc.stderr.rstrip().splitlines()[-1].endswith("warning(s)")


def test_ok_line_counts_streams_and_contexts(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("stream A = R.where(x > 1)\n")
    proc = run_cli("check", str(program))
    assert proc.returncode == 0
    assert proc.stdout == f"{program}: OK (1 streams, 0 contexts)\n"
    assert proc.stderr == ""


def test_warnings_go_to_stderr_with_count_line(tmp_path: Path) -> None:
    program = tmp_path / "w.vpl"
    program.write_text("context idle\nstream A = R.where(x > 1)\n")
    proc = run_cli("check", str(program))
    assert proc.returncode == 0
    assert proc.stdout == f"{program}: OK (1 streams, 1 contexts)\n"
    assert f"{program}:1:9: warning: context 'idle' holds no streams" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == "0 error(s), 1 warning(s)"


def test_every_error_reported_at_once_and_sorted(tmp_path: Path) -> None:
    program = tmp_path / "e.vpl"
    program.write_text(
        "stream A = R.context(nowhere)\n"
        "stream A = R.where(x > 1)\n"
        "stream B = R.emit(v: x).where(v > 1)\n"
    )
    proc = run_cli("check", str(program))
    assert proc.returncode == 2
    heads = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(heads) >= 3
    positions = [tuple(int(n) for n in h.split(":")[1:3]) for h in heads]
    assert positions == sorted(positions)
    assert proc.stderr.rstrip().splitlines()[-1].startswith(f"{len(heads)} error(s)")


def test_missing_program_file_is_exit_2(tmp_path: Path) -> None:
    proc = run_cli("check", str(tmp_path / "absent.vpl"))
    assert proc.returncode == 2
    assert "absent.vpl" in proc.stderr and TRACEBACK not in proc.stderr


def _assert_limit(tmp_path: Path, name: str, content: bytes, phrase: str, position: str | None = None) -> None:
    program = tmp_path / name
    program.write_bytes(content)
    started = time.monotonic()
    proc = run_cli("check", str(program), timeout=30)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr[:500]
    assert TRACEBACK not in proc.stderr and "RecursionError" not in proc.stderr
    assert phrase in proc.stderr, proc.stderr[:500]
    if position is not None:
        assert f"{program}:{position}:" in proc.stderr, proc.stderr[:300]
    # The limit itself answers well within a second; the rest is interpreter start-up on a busy box.
    assert elapsed < 5.0


@pytest.mark.parametrize(
    ("label", "expr", "position"),
    [
        ("parentheses", "(" * 10_000 + "1" + ")" * 10_000, "1:109"),
        ("unclosed_parentheses", "(" * 10_000, "1:109"),
        ("lists", "[" * 10_000 + "]" * 10_000, "1:109"),
        ("not_chain", "not " * 10_000 + "true", None),
        ("minus_chain", "- " * 10_000 + "1", None),
        ("plus_chain", " + ".join(["1"] * 10_000), None),
        ("nested_if", "if true then " * 10_000 + "1" + " else 2" * 10_000, None),
    ],
)
def test_deep_nesting_is_rejected_quickly(tmp_path: Path, label: str, expr: str, position: str | None) -> None:
    _assert_limit(tmp_path, f"{label}.vpl", f"let x = {expr}\n".encode(), "nested deeper than 100 levels", position)


def test_huge_program_is_rejected_by_size(tmp_path: Path) -> None:
    body = b"stream S = R.where(x > 1)\n" * (1_048_576 // 26 + 1)
    _assert_limit(tmp_path, "big.vpl", body, "program is larger than 256 KiB")


def test_long_identifier_is_rejected(tmp_path: Path) -> None:
    _assert_limit(tmp_path, "name.vpl", b"stream " + b"a" * 100_000 + b" = R\n", "longer than 255 characters", "1:8")


def test_long_event_line_is_rejected(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("stream A = R.emit()\n")
    events = tmp_path / "big.evt"
    events.write_bytes(b'R { s: "' + b"x" * (2 * 1_048_576) + b'" }\n')
    started = time.monotonic()
    proc = run_cli("check", str(program), "-e", str(events), timeout=30)
    assert time.monotonic() - started < 5.0
    assert proc.returncode == 2
    assert "event line is longer than 1 MiB" in proc.stderr
    assert f"{events}:1:" in proc.stderr
    assert TRACEBACK not in proc.stderr


def test_large_valid_program_checks_fast(tmp_path: Path) -> None:
    parts = []
    size = 0
    i = 0
    while size < 200 * 1024:
        text = f"stream S{i} = Reading{i % 7}\n    .where(value > {i} and zone != \"z{i}\")\n    .emit(v: value, z: zone)\n"
        parts.append(text)
        size += len(text)
        i += 1
    program = tmp_path / "many.vpl"
    program.write_text("".join(parts))
    proc = run_cli("check", str(program), timeout=60)
    assert proc.returncode == 0, proc.stderr[:500]
    assert proc.stdout == f"{program}: OK ({i} streams, 0 contexts)\n"
    # CPU time, not wall time: what the check costs, whatever else the machine is doing.
    from varpulis_mp.lang.frontend import load_program

    load_program("let warm = 1\n", "warm.vpl")  # the parser tables are built once per process
    started = time.process_time()
    checked = load_program(program.read_bytes(), str(program))
    elapsed = time.process_time() - started
    assert len(checked.streams) == i
    assert elapsed < 3.0, f"checking a 200 KiB program took {elapsed:.2f}s of CPU"


def test_thousands_of_contexts_are_rejected_at_the_65th(tmp_path: Path) -> None:
    """A 255 KiB program declaring 3,000 contexts, each holding a stream: one process each would
    be 3,000 processes; `check` and `simulate` reject it (VPL.md §13), at the 65th context and, as
    each context holding streams runs a worker process, at the 257th."""
    decls = "".join(f"context ctx_{i:05}\nstream Stream_{i:05} = Reading.context(ctx_{i:05}).where(v > {i:07})\n"
                    for i in range(3000))
    program = tmp_path / "many.vpl"
    program.write_text(decls)
    assert 250 * 1024 < len(decls) < 256 * 1024
    proc = run_cli("check", str(program), timeout=60)
    assert proc.returncode == 2, proc.stderr[-500:]
    assert proc.stdout == ""
    assert proc.stderr == (
        f"{program}:129:9: error: more than 64 contexts hold streams\n"
        "    129 | context ctx_00064\n"
        "        |         ^^^^^^^^^\n"
        "  hint: each context holding streams runs in a process of its own; put more streams in one context\n"
        f"{program}:513:9: error: too many worker processes\n"
        "    513 | context ctx_00256\n"
        "        |         ^^^^^^^^^\n"
        "  hint: a program runs at most 256 worker processes: one per context holding streams (default included), "
        "workers: N for a pool; give the pools fewer workers\n"
        "2 error(s), 0 warning(s)\n"
    )
    events = tmp_path / "e.evt"
    events.write_text("@0 Reading { v: 1 }\n")
    sim = run_cli("simulate", "-p", str(program), "-e", str(events), "--immediate", timeout=60)
    assert sim.returncode == 2 and sim.stdout == ""
    assert "more than 64 contexts hold streams" in sim.stderr and "Simulation Complete" not in sim.stderr


def test_version_and_help() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("varpulis-mp ")
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("check", "simulate", "run", "plan"):
        assert command in proc.stdout
