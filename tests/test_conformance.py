"""The shared conformance suite, run through the real `varpulis-mp` command by its own checker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import CONFORMANCE, needs_shared, varpulis_command


@needs_shared
@pytest.mark.timeout(600)
def test_conformance_suite_passes() -> None:
    proc = subprocess.run(
        [sys.executable, str(CONFORMANCE / "check.py"), "--timeout", "60", str(CONFORMANCE), "--",
         *varpulis_command()],
        capture_output=True,
        text=True,
        timeout=580,
    )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary.endswith(" passed, 0 failed"), summary
