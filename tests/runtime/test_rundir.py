"""Run directories: private, named by their owner, and removed by the next run when a supervisor
was killed before it could remove its own (RUN.md §6)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import varpulis_command
from varpulis_mp.runtime import rundir


@pytest.fixture
def base(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # A short base, as a service's RuntimeDirectory is (ipc:// paths are limited to 107 bytes).
    path = Path(tempfile.mkdtemp(prefix="rd", dir="/tmp"))
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_run_directory_is_private_and_records_its_owner(base: Path) -> None:
    made = rundir.RunDir()
    try:
        assert Path(made.path).parent == base
        assert os.stat(made.path).st_mode & 0o777 == 0o700
        pid, started = (Path(made.path) / "owner").read_text().split()
        assert int(pid) == os.getpid() and started != "?"
        assert rundir.remove_orphans() == []  # its owner runs
    finally:
        made.remove()


def test_directories_of_gone_owners_are_removed_and_others_kept(base: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = base / "vmp-orphan"
    orphan.mkdir()
    (orphan / "owner").write_text(f"{dead.pid} 12345\n")
    (orphan / "i0").write_text("")
    reused = base / "vmp-reused"  # a live pid, but another process's start time: gone too
    reused.mkdir()
    (reused / "owner").write_text(f"{os.getpid()} 1\n")
    unowned = base / "vmp-unowned"  # not made by a run: left alone
    unowned.mkdir()
    assert sorted(rundir.remove_orphans()) == sorted([str(orphan), str(reused)])
    assert not orphan.exists() and not reused.exists() and unowned.exists()


def test_a_killed_supervisor_takes_its_workers_down_and_the_next_run_removes_its_directory(
        base: Path, tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("context a\ncontext b\nstream S = R.context(a).emit(context: b, v: v)\n"
                       "stream T = S.context(b).where(v > 0)\n")
    env = {**os.environ, "RUNTIME_DIRECTORY": str(base)}
    proc = subprocess.Popen([*varpulis_command(), "run", str(program)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"@1 R { v: 1 }\n")
    proc.stdin.flush()
    assert b'"S"' in proc.stdout.readline()
    children = psutil.Process(proc.pid).children()  # the workers and the fork servers (RUN.md §6)
    workers = [c for c in children if c.name() != "vmp-forkserver"]
    assert len(workers) == 2
    left = list(base.glob("vmp-*"))
    assert len(left) == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    _gone, alive = psutil.wait_procs(children, timeout=2)
    assert alive == []  # every worker (and fork server) died with its supervisor, within 2 s
    assert left[0].exists()  # nobody could remove it
    again = subprocess.run([*varpulis_command(), "run", str(program)], input=b"@1 R { v: 1 }\n",
                           capture_output=True, env=env, timeout=60)
    assert again.returncode == 0, again.stderr
    deadline = time.monotonic() + 5
    while list(base.glob("vmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(base.glob("vmp-*")) == []  # the orphan removed at the start, its own at the end


@pytest.mark.parametrize("gap_ms", [0, 20, 60, 120, 200])
def test_a_second_signal_soon_after_the_first_stops_hard_and_leaves_nothing(
        base: Path, tmp_path: Path, gap_ms: int) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("context a\ncontext b\nstream S = R.context(a).emit(context: b, v: v)\n"
                       "stream T = S.context(b).window(1000).aggregate(n: count())\n")
    env = {**os.environ, "RUNTIME_DIRECTORY": str(base)}
    proc = subprocess.Popen([*varpulis_command(), "run", str(program)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"".join(b"@%d R { v: %d }\n" % (i, i) for i in range(2000)))
    proc.stdin.flush()
    assert b'"S"' in proc.stdout.readline()
    workers = psutil.Process(proc.pid).children()
    proc.send_signal(signal.SIGTERM)
    time.sleep(gap_ms / 1000)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 1), err.decode()  # drained, or stopped hard: never a default death
    if proc.returncode == 1:
        assert b"stopped by a second signal" in err
    assert psutil.wait_procs(workers, timeout=5)[1] == []
    assert list(base.glob("vmp-*")) == []
