"""SIGTERM at random moments under load (RUN.md §2 "End"): the run drains and exits 0 within 10 s,
and its output is the oracle's over the prefix of the input it consumed, every window flushed
once. Two moments by default; twenty with `VARPULIS_MP_FAULTS_FULL=1`."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest

from .harness import (
    PIPELINE,
    PIPELINE_STREAMS,
    by_stream,
    events_processed,
    oracle,
    pipeline_line,
    scale,
    under_load,
)

pytestmark = pytest.mark.faults

MOMENTS = int(scale(2, 20))
RATE = scale(400, 1000)
DRAIN_LIMIT_S = 10.0


@pytest.mark.timeout(scale(60, 600))
def test_sigterm_at_random_moments_drains_the_consumed_prefix_exactly(tmp_path: Path) -> None:
    rng = random.Random(11)
    for moment in range(MOMENTS):
        with under_load(PIPELINE, pipeline_line, RATE, streams=["ValidReadings"]) as (run, feeder):
            time.sleep(rng.uniform(0.0, 2.5))
            signalled = time.monotonic()
            run.proc.send_signal(signal.SIGTERM)
            status, records = run.stop(None, DRAIN_LIMIT_S)
            took = time.monotonic() - signalled
        assert status == 0, f"moment {moment}:\n{run.stderr[-3000:]}"
        assert took < DRAIN_LIMIT_S
        consumed = events_processed(run.stderr)
        assert consumed <= len(feeder.lines)
        expected = by_stream(oracle(PIPELINE, feeder.lines[:consumed], tmp_path))
        got = by_stream(records)
        assert got == expected, f"moment {moment}: {consumed} events consumed"
        windows = [(ts, json.loads(fields)["zone"]) for ts, fields in got.get("ZoneStats", [])]
        assert len(windows) == len(set(windows)), "a window flushed twice"
        print(f"moment {moment}: {consumed} events, {len(records)} records, exit {took * 1000:.0f} ms after SIGTERM;"
              f" streams {sorted(got)} of {sorted(PIPELINE_STREAMS.values())}")
