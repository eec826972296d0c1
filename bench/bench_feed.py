"""CPU time of a live run's input parsing: `LiveFeed` over the benchmark mix of `bench/gen.py`.

The feed reads the file as `run --input FILE` does and hands out the events of each wake-up; with
`build_only` (what both live drivers ask for) the lines of types no stream reads are checked and
counted, not built. CPU time (not wall time), so the figure holds on a machine others are using.

Usage: python bench/bench_feed.py [N] [RUNS]   (N lines, default 300,000; the file is kept in bench/data/)
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from pathlib import Path

from varpulis_mp.io.line_source import LineSource
from varpulis_mp.runtime.live_feed import FeedSource, LiveFeed
from varpulis_mp.runtime.rejections import RejectionLog

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen import ensure  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def feed_cpu_s(path: Path, read: frozenset[str] | None) -> tuple[float, int]:
    """CPU seconds to take every chunk of the file, and how many events were built."""
    fd = os.open(path, os.O_RDONLY)
    try:
        feed = LiveFeed([FeedSource("input", str(path), LineSource(fd))], [], RejectionLog(io.StringIO()))
        if read is not None:
            feed.build_only(read)
        started = time.process_time()
        built = sum(len(chunk) for chunk in feed.chunks(lambda: False))
        return time.process_time() - started, built
    finally:
        os.close(fd)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    path = ensure(n, DATA / f"mixed_{n}.evt")
    print(f"| lines | built | CPU s (median of {runs}) |")
    print("|---:|---|---:|")
    for label, read in (("every event", None), ("SensorReading only", frozenset({"SensorReading"}))):
        figures = [feed_cpu_s(path, read) for _ in range(runs)]
        print(f"| {n:,} | {label} ({figures[0][1]:,}) | {statistics.median(f[0] for f in figures):.2f} |")


if __name__ == "__main__":
    main()
