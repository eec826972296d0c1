"""The Python examples in examples/ run as documented."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_embed_runtime_example_prints_the_alert_and_the_summary() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "embed_runtime.py")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "all posted readings processed; leaving the block flushes the windows"
    assert lines[1] == "OverheatAlerts @59999ms: {'alert_type': 'ZoneOverheat', 'zone': 'north', 'max_value': 170.2}"
    assert lines[2].startswith("summary: {'events_processed': 5,")
