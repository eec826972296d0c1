"""Worker pools give the same `simulate --output jsonl` bytes for every number of workers (RUN.md §7).

Each conformance case runs with `workers: N` added to each declared context, N = 1 to 4, beside
the program as written; the generated program of test_random_programs (every window kind, late
events, sessions, chains across contexts) runs with pools of 2 to 4 workers beside its version
without contexts, over 5,000 events here; bench/pool_equivalence.py does the same over 200,000
(about 100 s on two cores).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import conformance_cases, needs_shared, varpulis_command
from tests.runtime.test_random_programs import Outcome, Program, big_events, big_program, finish, start
from tests.runtime.test_restarts import CHAIN, _lines, _worker, run_dir_base  # noqa: F401 (a fixture)
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.merger import Merger
from varpulis_mp.runtime.pool_input import PooledStream
from varpulis_mp.runtime.worker_output import ENDED

RUN_TIMEOUT_S = 120.0


def with_workers(source: str, workers: int) -> str:
    """`workers: N` added to every context declaration (after its other options, if any)."""
    def one(m: re.Match[str]) -> str:
        name, options = m.group(1), m.group(2)
        return f"context {name} ({options}, workers: {workers})" if options else f"context {name} (workers: {workers})"

    return re.sub(r"^context (\w+)(?: \(([^)]*)\))?", one, source, flags=re.M)


def run_side_by_side(folder: Path, programs: dict[str, str], events: Path, *extra: str,
                     timeout: float = RUN_TIMEOUT_S) -> dict[str, Outcome]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, text in programs.items():
        path = folder / f"{name.replace(' ', '_')}.vpl"
        path.write_text(text, encoding="utf-8")
        procs[name] = start(path, events, *extra)
    deadline = time.monotonic() + timeout
    return {name: finish(proc, max(0.1, deadline - time.monotonic())) for name, proc in procs.items()}


def assert_same_bytes(outcomes: dict[str, Outcome], reference: str) -> None:
    ref = outcomes[reference]
    assert ref.returncode == 0, ref.stderr[-2000:]
    for name, outcome in outcomes.items():
        assert outcome.returncode == 0, f"{name}: {outcome.stderr[-2000:]}"
        assert "Traceback" not in outcome.stderr, f"{name}: {outcome.stderr[-3000:]}"
        assert outcome.stdout == ref.stdout, f"{name} differs from {reference}"


def test_with_workers_adds_the_option() -> None:
    src = "context a\ncontext b (cores: [1, 2])  # x\nstream S = T.context(a)\n"
    assert with_workers(src, 3) == ("context a (workers: 3)\ncontext b (cores: [1, 2], workers: 3)  # x\n"
                                    "stream S = T.context(a)\n")


@needs_shared
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", conformance_cases("records"), ids=lambda p: p.name)
def test_conformance_case_same_bytes_for_every_pool_size(case: Path, tmp_path: Path) -> None:
    source = (case / "program.vpl").read_text(encoding="utf-8")
    programs = {"as written": source, **{f"workers {n}": with_workers(source, n) for n in (1, 2, 3, 4)}}
    outcomes = run_side_by_side(tmp_path, programs, case / "events.evt")
    assert_same_bytes(outcomes, "as written")


def pooled(program: Program, workers: int) -> str:
    return with_workers(program.render(True), workers)


def check_generated(tmp_path: Path, events: int, sizes: tuple[int, ...], timeout: float = RUN_TIMEOUT_S) -> None:
    program = big_program()
    evt = tmp_path / "events.evt"
    evt.write_text(big_events(events), encoding="utf-8")
    programs = {"no contexts": program.render(False), **{f"workers {n}": pooled(program, n) for n in sizes}}
    outcomes = run_side_by_side(tmp_path, programs, evt, timeout=timeout)
    assert_same_bytes(outcomes, "no contexts")
    assert outcomes["no contexts"].stdout.count(b"\n") > events


@pytest.mark.timeout(300)
def test_generated_5k_events_same_bytes_for_every_pool_size(tmp_path: Path) -> None:
    check_generated(tmp_path, 5000, (2, 3, 4))


@pytest.mark.timeout(300)
def test_verbose_human_output_same_for_every_pool_size(tmp_path: Path) -> None:
    program = big_program()
    evt = tmp_path / "events.evt"
    evt.write_text(big_events(400), encoding="utf-8")
    outcomes: dict[str, Outcome] = {}
    for n in (1, 2, 3):
        path = tmp_path / f"w{n}.vpl"
        path.write_text(pooled(program, n), encoding="utf-8")
        proc = subprocess.run([*varpulis_command(), "simulate", "-p", str(path), "-e", str(evt), "--immediate",
                               "--verbose"], capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
        outcomes[f"workers {n}"] = Outcome(proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))
    assert_same_bytes(outcomes, "workers 1")


# -- supervision: one worker of a pool restarts alone (RUN.md §6, §7) ------------------------------

@pytest.mark.timeout(60)
def test_kill_9_of_one_pool_worker_restarts_it_alone_and_loses_what_it_reports(tmp_path: Path,
                                                                               run_dir_base: Path) -> None:  # noqa: F811
    program = tmp_path / "chain.vpl"
    program.write_text(with_workers(CHAIN, 2), encoding="utf-8")
    env = {**os.environ, "RUNTIME_DIRECTORY": str(run_dir_base)}
    run = subprocess.Popen([sys.executable, "-m", "varpulis_mp", "run", str(program), "--input", "-"],
                           env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert run.stdin is not None and run.stdout is not None
    lines = _lines(20_000)
    run.stdin.write(lines[:lines.index("@101 ")])
    run.stdin.flush()
    first = run.stdout.readline()  # records flow
    names = {f"{ctx}-{n}" for ctx in ("ingest", "compute", "alert") for n in (0, 1)}
    before = {name: _worker(run, name) for name in names}
    os.kill(before["compute-1"], signal.SIGKILL)
    replacement = _worker(run, "compute-1", not_pid=before["compute-1"])
    after = {name: _worker(run, name) for name in names - {"compute-1"}}
    assert after == {name: pid for name, pid in before.items() if name != "compute-1"}  # the others go on
    assert replacement != before["compute-1"]
    # The rest of the input from a thread, the output through the buffer the first line came through.
    writer = threading.Thread(target=_write_and_close, args=(run.stdin, lines[lines.index("@101 "):]))
    writer.start()
    out = first + run.stdout.read()
    writer.join(timeout=30)
    assert run.stderr is not None
    err = run.stderr.read()
    run.wait(timeout=30)
    assert list(run_dir_base.iterdir()) == []  # no run directory, no socket left
    assert run.returncode == 0, err
    assert "context 'compute-1' restarted after SIGKILL (restart 1 of 5); " in err
    rows = [line for line in err.splitlines() if line.startswith("Lost in restarts:")]
    lost = int(rows[0].split(":")[1].replace(",", "")) if rows else 0
    got = Counter(json.loads(line)["stream"] for line in out.splitlines() if line)
    events = tmp_path / "chain.evt"
    events.write_text(lines, encoding="utf-8")
    expected = subprocess.run([sys.executable, "-m", "varpulis_mp", "simulate", "-p", str(program), "-e", str(events),
                               "--inline", "--immediate", "--output", "jsonl"],
                              capture_output=True, text=True, timeout=60, check=True)
    want = Counter(json.loads(line)["stream"] for line in expected.stdout.splitlines() if line)
    assert got["Valid"] == want["Valid"]  # upstream of the dead worker: all there
    assert want["Scaled"] - got["Scaled"] == lost  # each record Valid lost is one Scaled missing
    assert got["Scaled"] > 0 and want["Alerts"] >= got["Alerts"]


def _write_and_close(pipe: IO[str], text: str) -> None:
    pipe.write(text)
    pipe.close()


COUNTS = """
context heavy
stream Counts = T.context(heavy).partition_by(k).window(3).aggregate(k: k, n: count(), s: sum(v))
stream Slides = T.context(heavy).partition_by(k).window(4, sliding: 2).aggregate(k: k, s: sum(v))
"""


@pytest.mark.timeout(300)
def test_count_windows_read_only_their_keys_rows_and_agree(tmp_path: Path) -> None:
    """The workers of a pool parse only the rows of their own keys here (runtime/pool_rows.py):
    keys that are one key (`1`, `1.0`), Bools, null, a List key (an error) and lines of another
    shape still give one process's records and counts."""
    keys = ['"a"', "1", "1.0", "true", "null", '"b"', "2", "[1]", "x"]
    lines = [f"@{i} T {{ k: {keys[(i * 7) % len(keys)]}, v: {i % 11} }}" for i in range(3000)]
    lines[1500:1500] = ["@1500 T { v: 4 }", "@1500 T { v: 5, k: 1 }"]
    evt = tmp_path / "events.evt"
    evt.write_text("\n".join(lines) + "\n", encoding="utf-8")
    programs = {"no contexts": COUNTS.replace("context heavy\n", "").replace(".context(heavy)", ""),
                **{f"workers {n}": with_workers(COUNTS, n) for n in (1, 2, 3, 4)}}
    outcomes = run_side_by_side(tmp_path, programs, evt)
    assert_same_bytes(outcomes, "no contexts")
    summaries = {name: [line for line in o.stderr.splitlines() if "errors" in line or "Late" in line]
                 for name, o in outcomes.items()}
    assert all(s == summaries["no contexts"] for s in summaries.values()), summaries
    assert any("Expression errors" in line for line in summaries["no contexts"])


def test_a_pooled_stream_releases_in_order_once_every_worker_passed() -> None:
    pooled = PooledStream([3, 4])
    pooled.add([10, 11], [[2, [0, 5, 1, 0, 0]], [3, 0]], ["x"], [[1], [2]])  # from worker p3
    pooled.add([12, 13], [[2, [0, 5, 0, 9, 0]], [4, 0]], ["x"], [[3], [4]])  # from worker p4
    assert pooled.moved("p3", 3) is None  # p4 has not passed origin 2 yet
    assert pooled.moved("p4", 2) == 2
    # Origin 2 from both workers, by order key: the key first placed at (0, 9) before (1, 0).
    assert [(o, ts, f) for o, _k, _n, ts, f in pooled.take(2)] == [(2, 12, {"x": 3}), (2, 10, {"x": 1})]
    assert pooled.moved("p4", ENDED) == 3 and pooled.moved("p3", ENDED) == ENDED
    assert [o for o, *_ in pooled.take(ENDED)] == [3, 4]
    assert pooled.moved("p9", 7) is None  # not a sender of this stream


def test_the_merger_completes_an_origin_of_a_pool_stream_once_each_worker_passed_it() -> None:
    released: list[list[str]] = []
    merger = Merger(["S"], 3, {}, lambda _o: None, on_lines=released.append, pools={"S": [1, 2]})
    merger.handle(1, wire.encode([(wire.LINES_OUT, [1, 0, [0, 7, 0, 2, 0], "b", 1, 0, [0, 7, 0, 1, 0], "a"]),
                                  (wire.PROGRESS, ["S"], 1)]))
    assert merger.complete() == 0
    merger.handle(2, wire.encode([(wire.LINES_OUT, [1, 0, [0, 7, 0, 1, 5], "c"]), (wire.PROGRESS, ["S"], 1)]))
    assert merger.complete() == 1
    merger.release(1)
    assert released == [["a", "c", "b"]]
    merger.handle(1, wire.encode([(wire.EOS, "S", 2)]))
    assert not merger.all_ended()
    merger.give_up(["S"], 2, 2)
    assert merger.all_ended()
