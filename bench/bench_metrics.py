"""What `--metrics` costs `run`: `run --input FILE --output none` with and without `--metrics` (a
free loopback port each time), alternated pairs over bench/gen.py's file (RUN.md §4: within 5 %).

    .venv/bin/python bench/bench_metrics.py [EVENTS] [PAIRS] [PROGRAM...]

EVENTS defaults to 300,000, PAIRS to 5, the programs to `filter` and `chain_contexts` (one process
and a three-context pipeline). Prints each side's median wall time and the median ratio
(metrics / none) per program. Nothing scrapes the server during the run: the cost measured is
the workers' counters reaching the supervisor and the collector being ready, which is what every
run with `--metrics` pays; a scrape every few seconds adds one collection.
"""

from __future__ import annotations

import os
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


def timed(args: list[str]) -> float:
    with open(os.devnull, "wb") as null:
        start = time.perf_counter()
        subprocess.run(args, stdout=null, stderr=null, check=True, timeout=600)
        return time.perf_counter() - start


def measure(command: str, program: str, events: Path, pairs: int) -> None:
    base = [command, "run", str(HERE / "programs" / f"{program}.vpl"), "--input", str(events), "--output", "none"]
    plain: list[float] = []
    metered: list[float] = []
    for _ in range(pairs):
        plain.append(timed(base))
        metered.append(timed([*base, "--metrics", "--metrics-port", str(_free_port())]))
    ratios = [m / p for m, p in zip(metered, plain, strict=True)]
    print(f"program {program}: none median {statistics.median(plain):.3f} s "
          f"({min(plain):.3f}-{max(plain):.3f}), --metrics median {statistics.median(metered):.3f} s "
          f"({min(metered):.3f}-{max(metered):.3f}), ratio median {statistics.median(ratios):.3f} "
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
