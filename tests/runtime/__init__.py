"""What the multiprocess runtime tests share: programs, generated inputs, both drivers."""

from __future__ import annotations

import glob
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.io.readers import read_events
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.lang.frontend import load_program
from varpulis_mp.runtime import affinity
from varpulis_mp.runtime.handover import Announced, EveryOrigin
from varpulis_mp.runtime.local import run_local
from varpulis_mp.runtime.rundir import RunDir, base_dir
from varpulis_mp.runtime.supervisor import FileInput, ProcessOptions, run_processes


def load(source: str, path: str = "p.vpl") -> CheckedProgram:
    return load_program(source, path)


def run_local_file(program: CheckedProgram, events: str | os.PathLike[str],
                   display: str = "events.evt") -> tuple[list[list[Output]], Summary | Exception]:
    got: list[list[Output]] = []
    names = [s.name for s in program.streams]
    try:
        summary: Summary | Exception = run_local(program, read_events(events, display, names), EveryOrigin(got.append))
    except Exception as exc:  # noqa: BLE001 - compared with the other driver's
        summary = exc
    return got, summary


def run_processes_file(program: CheckedProgram, events: Any, display: str = "events.evt",
                       on_input_event: Callable[[int, int, str], None] | None = None,
                       **options: Any) -> tuple[list[list[Output]], Summary | Exception]:
    """Every origin's outputs (and the summary, or the exception) of a run of worker processes;
    `options` are `ProcessOptions`' fields."""
    got: list[list[Output]] = []
    delivery = EveryOrigin(got.append) if on_input_event is None else \
        Announced(on_input_event, lambda outputs, flush: got.append(outputs))
    if "unpinned" in options:
        options["unpinned"] = frozenset(options["unpinned"])
    try:
        summary: Summary | Exception = run_processes(program, FileInput(events, display), delivery,
                                                     ProcessOptions(**options))
    except Exception as exc:  # noqa: BLE001 - compared with the other driver's
        summary = exc
    return got, summary


def same_result(a: Summary | Exception, b: Summary | Exception) -> bool:
    if isinstance(a, Exception) or isinstance(b, Exception):
        return type(a) is type(b) and str(a) == str(b)
    return a == b


def run_dirs() -> set[str]:
    """Run directories present now in the place the runtime makes them (any process's)."""
    base = base_dir() or tempfile.gettempdir()
    return set(glob.glob(os.path.join(base, "vmp-*")))


def track_run_dirs(monkeypatch: Any) -> list[str]:
    """Record the path of every run directory this process creates from now on."""
    made: list[str] = []
    original = RunDir.__init__

    def init(self: RunDir) -> None:
        original(self)
        made.append(self.path)

    monkeypatch.setattr(RunDir, "__init__", init)
    return made


def wait_no_children(timeout: float = 5.0) -> list[int]:
    """Children of this process, zombies included (a zombie is a child nobody reaped), polled until
    there are none or the timeout passes."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        left = [c.pid for c in psutil.Process().children()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def worker_pids_by_context() -> dict[str, int]:
    """Live children named `vmp-<context>` (the name a worker gives itself, cut to 15 bytes); the
    fork server (`vmp-forkserver`) is not a worker."""
    import psutil

    found: dict[str, int] = {}
    for pid in affinity.child_pids():
        try:
            name = psutil.Process(pid).name()
        except psutil.NoSuchProcess:
            continue
        if name.startswith("vmp-") and name != "vmp-forkserver":  # a helper, not a context's worker
            found[name[4:]] = pid
    return found


BIG_PROGRAM = """
context ingest
context stats
context alerts

const LIMIT = 90.0

stream Clean = Reading
    .context(ingest)
    .where(value >= 0)
    .emit(context: stats, sensor: sensor, zone: zone, value: value)

stream PerZone = Clean
    .context(stats)
    .partition_by(zone)
    .window(1s)
    .aggregate(zone: zone, n: count(), avg_v: avg(value), hi: max(value))
    .emit(context: alerts, zone: zone, n: n, avg_v: avg_v, hi: hi)

stream Sliding = Clean
    .context(stats)
    .partition_by(sensor)
    .window(2s, sliding: 500ms)
    .aggregate(sensor: sensor, total: sum(value), sd: stddev(value))

stream Hot = PerZone
    .context(alerts)
    .where(hi > LIMIT)
    .emit(alert_type: "Hot", zone: zone, hi: hi)

stream CountTumble = Reading
    .context(alerts)
    .partition_by(zone)
    .window(50)
    .aggregate(zone: zone, lo: min(value), k: count_distinct(sensor))

stream CountSlide = Clean
    .context(alerts)
    .window(20, sliding: 7)
    .aggregate(n: count(), m: avg(value))

stream Sessions = Click
    .partition_by(user)
    .window(session: 300ms)
    .aggregate(user: user, clicks: count(), last_page: last(page))

stream Rollup = PerZone
    .window(5s)
    .aggregate(windows: count(), peak: max(hi))
"""


def generate_events(path: Path, n: int, seed: int = 7) -> None:
    """`n` events of three types (one read by no stream), times mostly increasing, some late."""
    rng = random.Random(seed)
    zones = ["north", "south", "east", "west", "z\u00e9ro"]
    t = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("# generated\n")
        for i in range(n):
            t += rng.randint(0, 40)
            ts = t - rng.randint(0, 3000) if rng.random() < 0.02 else t
            r = rng.random()
            if r < 0.75:
                value = round(rng.uniform(-5, 100), 2) if rng.random() < 0.9 else rng.randint(0, 100)
                f.write(f"@{max(ts, 0)} Reading {{ sensor: \"s{rng.randint(1, 40)}\", "
                        f"zone: \"{rng.choice(zones)}\", value: {value} }}\n")
            elif r < 0.95:
                f.write(f"@{max(ts, 0)} Click {{ user: \"u{rng.randint(1, 25)}\", page: \"/p{i % 17}\" }}\n")
            else:
                f.write(f"@{max(ts, 0)} Noise {{ k: {i} }}\n")
            if i % 5000 == 4999:
                f.write(f"BATCH {t}\n")
                f.write("Click { user: \"batch\", page: \"/b\" }\n")
