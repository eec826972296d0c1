"""A pool's workers each match only the lines of their own keys (runtime/pool_rows.py): the output,
the summary and the diagnostic of a bad line are still one process's, whichever worker owns the
key of an odd or a bad line (RUN.md §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.test_pools import run_side_by_side, with_workers
from tests.runtime.test_random_programs import Outcome
from varpulis_mp.lang.key_hash import worker_for_key

# Keyed count windows with nothing before the window: the workers sort the lines out by key text.
POOL = """context heavy
stream Stats = Temp.context(heavy).partition_by(k).window(5).aggregate(k: k, n: count(), s: sum(v), hi: max(v))
stream Sizes = Level.context(heavy).partition_by(k).window(3, sliding: 1).aggregate(k: k, n: count())
"""
KEYS = [f"k{i}" for i in range(12)]
SIZES = (2, 3)


def lines(n: int) -> list[str]:
    out = []
    for i in range(n):
        out.append(f'@{i} Temp {{ k: "{KEYS[(i * 5) % len(KEYS)]}", v: {(i % 13) * 1.5} }}')
        if i % 4 == 0:
            out.append(f'@{i} Level {{ k: "{KEYS[i % len(KEYS)]}", w: {i} }}')
        if i % 6 == 0:
            out.append(f'@{i} Zone {{ k: "{KEYS[i % 3]}", note: "z" }}')  # read by nobody
    return out


def key_owned_by(worker: int) -> str:
    """A key that worker `worker` owns in a pool of 3 and worker `worker % 2` in a pool of 2."""
    return next(k for k in KEYS if worker_for_key(k, 3) == worker and worker_for_key(k, 2) == worker % 2)


def run_all(tmp_path: Path, text: str) -> dict[str, Outcome]:
    evt = tmp_path / "events.evt"
    evt.write_text(text, encoding="utf-8")
    programs = {"no contexts": POOL.replace("context heavy\n", "").replace(".context(heavy)", ""),
                **{f"workers {n}": with_workers(POOL, n) for n in SIZES}}
    return run_side_by_side(tmp_path, programs, evt)


def assert_as_one_process(outcomes: dict[str, Outcome]) -> Outcome:
    """The same exit code, output bytes and standard error (the diagnostic, or the summary but for
    the number of contexts) as without contexts."""
    ref = outcomes["no contexts"]
    for name, outcome in outcomes.items():
        assert "Traceback" not in outcome.stderr, f"{name}: {outcome.stderr[-3000:]}"
        assert (outcome.returncode, outcome.stdout) == (ref.returncode, ref.stdout), f"{name}: {outcome.stderr[-2000:]}"
        assert _no_contexts_line(outcome.stderr) == _no_contexts_line(ref.stderr), name
    return ref


def _no_contexts_line(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("Contexts used")]


# Each is put in the middle of a block, its key owned by one worker after the other.
BAD = {
    "after the key": '@{i} Temp {{ k: "{key}", v: 1.5 bad }}',
    "the key twice": '@{i} Temp {{ k: "{key}", v: 1.5, k: "k0" }}',
    "a second type's line": '@{i} Level {{ k: "{key}", w: }}',
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("owner", [0, 1, 2])
@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
def test_a_bad_line_of_any_workers_key_stops_where_one_process_stops(tmp_path: Path, bad: str, owner: int) -> None:
    base = lines(3000)
    at = 2100 + 7 * owner
    base[at] = BAD[bad].format(i=at, key=key_owned_by(owner))
    ref = assert_as_one_process(run_all(tmp_path, "\n".join(base) + "\n"))
    assert ref.returncode == 2 and ref.stdout and f":{at + 1}:" in ref.stderr, ref.stderr[-1000:]


ODD = {
    "an int where the shape has a float": '@{i} Temp {{ k: "{key}", v: 7 }}',
    "other spacing": '@{i}  Temp{{k:"{key}",v:2.5,}};',
    "the key last": '@{i} Temp {{ v: 3.5, k: "{key}" }}',
    "a key of another kind": "@{i} Temp {{ k: 5, v: 1.0 }}",
}


@pytest.mark.timeout(120)
def test_odd_lines_of_any_workers_key_give_one_process_output(tmp_path: Path) -> None:
    base = lines(3000)
    for n, line in enumerate(ODD.values()):
        for owner in range(3):
            at = 1300 + 600 * n + 11 * owner  # after the first blocks, which teach the shapes
            base[at] = line.format(i=at, key=key_owned_by(owner))
    ref = assert_as_one_process(run_all(tmp_path, "\n".join(base) + "\n"))
    assert ref.returncode == 0 and ref.stdout.count(b"\n") > 600 and "Events processed: 4250" in ref.stderr


@pytest.mark.timeout(180)
@pytest.mark.parametrize("owner", [0, 2])
def test_pieces_the_router_splits_by_key_give_one_process_output_and_stop_at_a_bad_line(
        tmp_path: Path, owner: int) -> None:
    """Several pieces of input (runtime/key_routes.py splits them among the workers: every type the
    pool reads is keyed), with empty lines and comments among them; then a bad line of one worker's
    key deep in a later piece, while the other workers' lines of that piece come before and after it."""
    base = lines(12000)
    for at in range(500, len(base), 997):
        base[at] = "" if at % 2 else "# a comment"
    good = assert_as_one_process(run_all(tmp_path, "\n".join(base) + "\n"))
    assert good.returncode == 0 and good.stdout.count(b"\n") > 2000, good.stderr[-1000:]
    at = 13_000 + 5 * owner
    while not base[at].startswith("@"):
        at += 1
    base[at] = BAD["after the key"].format(i=at, key=key_owned_by(owner))
    ref = assert_as_one_process(run_all(tmp_path, "\n".join(base) + "\n"))
    assert ref.returncode == 2 and ref.stdout and f":{at + 1}:" in ref.stderr, ref.stderr[-1000:]
