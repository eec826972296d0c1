"""What `--metrics` costs `run`: `run --input FILE --output none` with and without `--metrics` (a
free loopback port each time), alternated pairs over bench/gen.py's file (RUN.md §4: within 5 %).

    .venv/bin/python bench/bench_metrics.py [EVENTS] [PAIRS] [PROGRAM...]

EVENTS defaults to 300,000, PAIRS to 5, the programs to `filter` and `chain_contexts` (one process
and a three-context pipeline). Prints each side's median and the median ratio (metrics / none)
per program, of the wall time and of the CPU time (user and system, of the command and every
process under it: less sensitive to other load on the machine). Nothing scrapes the server during
the run: the cost measured is the workers' counters reaching the supervisor, the latency observed
and the collector being ready, which is what every run with `--metrics` pays; a scrape every few
seconds adds one collection.
"""

from __future__ import annotations

import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen  # noqa: E402
from run import DATA, cli  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process under it, user and system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.devnull, "wb") as null:
        start = time.perf_counter()
        subprocess.run(args, stdout=null, stderr=null, check=True, timeout=600)
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(command: str, program: str, events: Path, pairs: int) -> None:
    base = [command, "run", str(HERE / "programs" / f"{program}.vpl"), "--input", str(events), "--output", "none"]
    plain: list[tuple[float, float]] = []
    metered: list[tuple[float, float]] = []
    for _ in range(pairs):
        plain.append(timed(base))
        metered.append(timed([*base, "--metrics", "--metrics-port", str(_free_port())]))
    for what, k in (("wall", 0), ("CPU", 1)):
        p = [t[k] for t in plain]
        m = [t[k] for t in metered]
        ratios = [b / a for a, b in zip(p, m, strict=True)]
        print(f"program {program} {what}: none median {statistics.median(p):.3f} s "
              f"({min(p):.3f}-{max(p):.3f}), --metrics median {statistics.median(m):.3f} s "
              f"({min(m):.3f}-{max(m):.3f}), ratio median {statistics.median(ratios):.3f} "
              f"(pairs: {', '.join(f'{r:.3f}' for r in ratios)})")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    programs = sys.argv[3:] or ["filter", "chain_contexts"]
    events = gen.ensure(n, DATA / f"mixed_{n}.evt")
    print(f"{n} events, {pairs} alternated pairs, load {os.getloadavg()[0]:.1f}")
    for program in programs:
        measure(cli(), program, events, pairs)


if __name__ == "__main__":
    main()
