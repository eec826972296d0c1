"""Embedding varpulis-mp in a Python program: the three-stage pipeline as a live runtime.

    .venv/bin/python examples/embed_runtime.py

Posts a few sensor readings from Python, prints each alert as it appears (on a runtime thread),
waits until everything posted has been processed, and leaves the block, which flushes the open
windows: the zone averages of the last minute arrive then. See docs/run.md.
"""

from __future__ import annotations

from pathlib import Path

import varpulis_mp

PROGRAM = Path(__file__).with_name("pipeline_three_stages.vpl")

READINGS = [
    ("SensorReading", 0, {"sensor_id": "S1", "value": 140.0, "zone": "north"}),
    ("SensorReading", 100, {"sensor_id": "S2", "value": 160.5, "zone": "north"}),
    ("SensorReading", 200, {"sensor_id": "S3", "value": 95.0, "zone": "south"}),
    ("SensorReading", 300, {"sensor_id": "S4", "value": 170.2, "zone": "north"}),
]


def show(record: varpulis_mp.Record) -> None:
    print(f"{record.stream} @{record.ts}ms: {record.fields}")


def main() -> None:
    # Worker processes, one per context; started from a fresh interpreter, never forked from here.
    with varpulis_mp.Runtime(PROGRAM) as rt:
        rt.subscribe("OverheatAlerts", show)
        rt.post_many(READINGS)
        # One at a time works too; ts=None would stamp it with the wall-clock time of the post.
        rt.post("SensorReading", {"sensor_id": "S5", "value": 88.0, "zone": "south"}, ts=1_000)
        if not rt.wait_idle(timeout=10.0):
            raise SystemExit("the runtime did not catch up within 10 s")
        print("all posted readings processed; leaving the block flushes the windows")
    print("summary:", rt.stats()["summary"])


if __name__ == "__main__":
    main()
