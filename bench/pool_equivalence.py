"""Pools give the same bytes for every size over a large input (RUN.md §7): the slow check.

Runs the generated program of tests/runtime/test_random_programs.py (every window kind, late
events, sessions, chains across contexts) over 200,000 generated events, without contexts and
with `workers: N` added to each context for N = 1 to 4, side by side, and says whether the
`simulate --output jsonl` bytes agree (exit 1 when they do not). tests/runtime/test_pools.py
runs the same check over 5,000 events.

    .venv/bin/python bench/pool_equivalence.py [EVENTS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.runtime.test_pools import check_generated  # noqa: E402 (after the path is set)


def main() -> int:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vmp-pools-") as tmp:
        try:
            check_generated(Path(tmp), events, (1, 2, 3, 4), timeout=1800.0)
        except AssertionError as exc:
            print(f"pools differ over {events:,} events: {exc}")
            return 1
    print(f"{events:,} events: the same bytes without contexts and with 1, 2, 3 and 4 workers per context "
          f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
