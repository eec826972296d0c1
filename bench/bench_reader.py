"""Throughput of the `.evt` reader: `check_events` and `read_events` over generated files.

Two files of N lines each: SensorReading lines only (one shape), and the benchmark mix of
`bench/gen.py` (three event types, round-robin), which exercises the block alternation.

Usage: python bench/bench_reader.py [N]   (N lines, default 1,000,000; the files are kept in bench/data/)
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from varpulis_mp.io.readers import check_events, read_events

DATA = Path(__file__).resolve().parent / "data"


def generate(path: Path, n: int, seed: int = 42) -> None:
    """Writes n four-field SensorReading lines, 1 ms apart, deterministically from `seed`."""
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        batch: list[str] = []
        for i in range(n):
            batch.append(
                f'@{i} SensorReading {{ sensor_id: "S{rng.randrange(100)}", '
                f"temperature: {rng.uniform(0, 120):.1f}, value: {rng.uniform(-10, 200):.2f}, "
                f'zone: "zone{rng.randrange(10)}" }}\n'
            )
            if len(batch) >= 10_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
    tmp.replace(path)


def _measure(label: str, run: Callable[[], int], n: int) -> None:
    walls, cpus = [], []
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        count = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert count == n, (count, n)
    wall_s, cpu_s = statistics.median(walls), statistics.median(cpus)
    print(f"{label}: median of 3: {wall_s:.3f} s wall, {n / wall_s:,.0f} lines/s "
          f"({cpu_s:.3f} s CPU, {n / cpu_s:,.0f} lines/s of CPU time)")


def _bench(path: Path, n: int) -> None:
    print(f"file: {path} ({n} lines, {path.stat().st_size:,} bytes)")
    _measure("check_events", lambda: check_events(path, str(path)), n)
    # read_events materialises every Event, as the runtime does.
    _measure("read_events ", lambda: sum(1 for _ in read_events(path, str(path))), n)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    path = DATA / f"sensor_{n}.evt"
    if not path.exists():
        generate(path, n)
    _bench(path, n)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gen import ensure  # the benchmark generator, beside this script

    _bench(ensure(n, DATA / f"mixed_{n}.evt"), n)


if __name__ == "__main__":
    main()
