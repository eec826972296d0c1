"""What the progress bar costs: `simulate --immediate --output jsonl > /dev/null` with standard error
on a terminal (a pseudo-terminal, so the bar is drawn) against standard error on /dev/null.

    .venv/bin/python bench/bench_progress.py [EVENTS] [PAIRS] [PROGRAM] [COMMAND] [OUTPUT]

Runs the two alternated, PAIRS times (default 5) over bench/gen.py's file of EVENTS events (default
1,000,000) and prints each side's median wall time and the median ratio (terminal / no terminal).
COMMAND replaces the installed `varpulis-mp` (to measure another build the same way); OUTPUT is
`jsonl` (the default) or `human`.
"""

from __future__ import annotations

import os
import pty
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen  # noqa: E402
from run import DATA, cli  # noqa: E402


def _drain(fd: int, seen: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        seen.append(chunk)


def timed(args: list[str], on_terminal: bool) -> tuple[float, bool]:
    """Wall seconds of one run, and whether a bar was drawn."""
    with open(os.devnull, "wb") as null:
        if not on_terminal:
            start = time.perf_counter()
            subprocess.run(args, stdout=null, stderr=null, check=True)
            return time.perf_counter() - start, False
        master, slave = pty.openpty()
        seen: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(master, seen), daemon=True)
        reader.start()
        start = time.perf_counter()
        subprocess.run(args, stdout=null, stderr=slave, check=True)
        wall = time.perf_counter() - start
        os.close(slave)
        reader.join(timeout=2)
        os.close(master)
        return wall, b"%" in b"".join(seen)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    program = sys.argv[3] if len(sys.argv) > 3 else "filter"
    events = gen.ensure(n, DATA / f"mixed_{n}.evt")
    command = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else cli()
    output = sys.argv[5] if len(sys.argv) > 5 else "jsonl"
    args = [command, "simulate", "-p", str(HERE / "programs" / f"{program}.vpl"), "-e", str(events),
            "--immediate", "--output", output]
    plain: list[float] = []
    bar: list[float] = []
    drawn = True
    for _ in range(pairs):
        plain.append(timed(args, False)[0])
        wall, shown = timed(args, True)
        bar.append(wall)
        drawn = drawn and shown
    ratios = [b / p for b, p in zip(bar, plain, strict=True)]
    print(f"program {program}, {n} events, --output {output}, {pairs} alternated pairs")
    print(f"no terminal: median {statistics.median(plain):.3f} s  ({min(plain):.3f}-{max(plain):.3f})")
    print(f"terminal:    median {statistics.median(bar):.3f} s  ({min(bar):.3f}-{max(bar):.3f}), bar drawn: {drawn}")
    print(f"ratio terminal / none: median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
