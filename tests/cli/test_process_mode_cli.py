"""`simulate` with worker processes, through the real command: same bytes in every layout, clean stops.

VPL.md §10.3: the `--output jsonl` standard output is the same bytes with one worker process per
context, with `--inline`, and for the same program with its contexts removed.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import conformance_cases, needs_shared, run_cli, varpulis_command

TRACEBACK = "Traceback (most recent call last)"

_CONTEXT_DECL = re.compile(r"^[ \t]*context[ \t]+\w+([ \t]*\([^)]*\))?[ \t]*\n", re.MULTILINE)
_CONTEXT_OP_LINE = re.compile(r"^[ \t]*\.context\([ \t]*\w+[ \t]*\)[ \t]*\n", re.MULTILINE)
_CONTEXT_OP = re.compile(r"\.context\([ \t]*\w+[ \t]*\)")
_EMIT_TARGET_FIRST = re.compile(r"\([ \t]*context[ \t]*:[ \t]*\w+[ \t]*,[ \t]*")
_EMIT_TARGET_LATER = re.compile(r",[ \t]*context[ \t]*:[ \t]*\w+[ \t]*")
_EMIT_TARGET_ONLY = re.compile(r"\([ \t]*context[ \t]*:[ \t]*\w+[ \t]*\)")


def without_contexts(source: str) -> str:
    """The program with every context declaration, `.context(...)` and `context:` item deleted."""
    text = _CONTEXT_DECL.sub("", source)
    text = _CONTEXT_OP_LINE.sub("", text)
    text = _CONTEXT_OP.sub("", text)
    text = _EMIT_TARGET_ONLY.sub("()", text)
    text = _EMIT_TARGET_FIRST.sub("(", text)
    return _EMIT_TARGET_LATER.sub("", text)


def test_context_removal_follows_the_spec_example() -> None:
    source = (
        "context alert (cores: [0])\n"
        "stream S = R\n    .context(alert)\n    .emit(context: alert, avg: avg)\n"
        "stream T = S.context(alert).emit(context: alert)\n"
        "stream U = S.emit(a: a, context: alert)\n"
    )
    assert without_contexts(source) == (
        "stream S = R\n    .emit(avg: avg)\n"
        "stream T = S.emit()\n"
        "stream U = S.emit(a: a)\n"
    )


def _jsonl(program: Path, events: Path, *extra: str) -> str:
    proc = run_cli("simulate", "-p", str(program), "-e", str(events), "--immediate", "--output", "jsonl", *extra,
                   timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert TRACEBACK not in proc.stderr
    return proc.stdout


@needs_shared
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", conformance_cases("records"), ids=lambda p: p.name)
def test_jsonl_is_the_same_bytes_in_every_layout(case: Path, tmp_path: Path) -> None:
    program = case / "program.vpl"
    events = case / "events.evt"
    processes = _jsonl(program, events)
    inline = _jsonl(program, events, "--inline")
    stripped = tmp_path / "program.vpl"
    stripped.write_text(without_contexts(program.read_text()))
    no_contexts = _jsonl(stripped, events)
    assert processes == inline
    assert processes == no_contexts


@needs_shared
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", conformance_cases("records"), ids=lambda p: p.name)
def test_human_output_is_the_same_with_worker_processes(case: Path) -> None:
    """`--immediate` human output: whole blocks to the workers, the same lines as one process."""
    runs = []
    for extra in ((), ("--inline",)):
        proc = run_cli("simulate", "-p", str(case / "program.vpl"), "-e", str(case / "events.evt"),
                       "--immediate", *extra, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(proc.stdout)
    assert runs[0] == runs[1]
    assert "Simulation Complete" in runs[0]


def _slow_replay(tmp_path: Path) -> subprocess.Popen[str]:
    program = tmp_path / "p.vpl"
    program.write_text(
        "context ingest\ncontext stats\n"
        "stream Clean = R\n    .context(ingest)\n    .where(v > 0)\n    .emit(context: stats, v: v, k: k)\n"
        "stream PerKey = Clean\n    .context(stats)\n    .partition_by(k)\n    .window(1m)\n"
        "    .aggregate(k: k, n: count(), total: sum(v))\n"
    )
    events = tmp_path / "e.evt"
    # Real-time replay: the first events come at once, the last one a minute later.
    events.write_text("".join(f"@{i * 10} R {{ v: {i}, k: \"k{i % 2}\" }}\n" for i in range(1, 6))
                      + "@60000 R { v: 99, k: \"late\" }\n")
    return subprocess.Popen([*varpulis_command(), "simulate", "-p", str(program), "-e", str(events),
                             "--output", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_drains_every_window_and_says_it_was_interrupted(tmp_path: Path, signum: int) -> None:
    proc = _slow_replay(tmp_path)
    try:
        assert proc.stdout is not None
        for _ in range(5):  # the five early records are out: the workers are running
            assert '"stream": "Clean"' in proc.stdout.readline()
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 128 + signum, err  # interrupted, as shells report it
    assert TRACEBACK not in err
    assert "Interrupted after 5 events" in err
    # The open one-minute windows were flushed: one result per key, the late event never read.
    flushed = [line for line in out.splitlines() if '"stream": "PerKey"' in line]
    assert len(flushed) == 2
    assert '"total": 9' in flushed[0] or '"total": 9' in flushed[1]
    assert "Events processed: 5" in err
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.timeout(90)
def test_killing_a_worker_fails_the_run_within_five_seconds(tmp_path: Path) -> None:
    proc = _slow_replay(tmp_path)
    try:
        assert proc.stdout is not None
        for _ in range(5):
            proc.stdout.readline()
        workers = psutil.Process(proc.pid).children()
        victim = next(w for w in workers if "stats" in " ".join(w.cmdline()) + w.name())
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert elapsed < 5.0
    assert "context 'stats'" in err and TRACEBACK not in err
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
