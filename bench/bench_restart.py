"""Restart time of `varpulis-mp run` (RUN.md §6): death noticed -> replacement ready, backoff excluded.

Runs `run bench/programs/live_chain.vpl --input - --output none` fed by a thread (200 events every
10 ms), kills one worker of each context in turn with SIGKILL once a second, `--kills` rounds per
run, and reads the supervisor's debug line `context 'X' restart time S s` (its runtime logger is
set to DEBUG by a wrapper). Prints the count, p50, p99 and the worst over `--runs` runs.

Usage:
    .venv/bin/python bench/bench_restart.py [--runs 2] [--kills 5]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

PROGRAM = Path(__file__).parent / "programs" / "live_chain.vpl"
WRAPPER = """
import logging, runpy, sys
logging.getLogger("varpulis_mp.runtime").setLevel(logging.DEBUG)
sys.argv = ["varpulis-mp", *sys.argv[1:]]
runpy.run_module("varpulis_mp", run_name="__main__")
"""


def _contexts() -> list[str]:
    return re.findall(r"^context (\w+)", PROGRAM.read_text(encoding="utf-8"), re.MULTILINE)


def _feed(run: subprocess.Popen[str], stop: threading.Event, event_type: str) -> None:
    assert run.stdin is not None
    n = 0
    while not stop.is_set():
        run.stdin.write("".join(f"@{n + k} {event_type} {{ n: {n + k}, value: {k % 50}.5 }}\n"
                                for k in range(200)))
        run.stdin.flush()
        n += 200
        time.sleep(0.01)


def one_run(kills: int) -> list[float]:
    source = re.search(r"^stream \w+ = (\w+)", PROGRAM.read_text(encoding="utf-8"), re.MULTILINE)
    assert source is not None
    run = subprocess.Popen([sys.executable, "-c", WRAPPER, "run", str(PROGRAM), "--input", "-", "--output", "none",
                            "--max-restarts", "1000"], stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(run, stop, source[1]), daemon=True)
    feeder.start()
    time.sleep(1.5)
    for _ in range(kills):
        for context in _contexts():
            for child in psutil.Process(run.pid).children():
                if child.name() == f"vmp-{context}"[:15]:
                    os.kill(child.pid, signal.SIGKILL)
            time.sleep(1.0)
    stop.set()
    feeder.join()
    assert run.stdin is not None and run.stderr is not None
    run.stdin.close()
    err = run.stderr.read()
    run.wait()
    return [float(x) for x in re.findall(r"restart time ([0-9.]+) s", err)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    times = sorted(t for _ in range(args.runs) for t in one_run(args.kills))
    if not times:
        sys.exit("no restart was measured")
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    print(f"restarts {len(times)}: p50 {statistics.median(times) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"worst {times[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
