"""What a new user meets first: the README's commands and `make demo` work as written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

ACTIVATE = ". .venv/bin/activate"


def test_readme_activates_the_environment_before_its_first_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ACTIVATE in readme
    assert readme.index(ACTIVATE) < readme.index("`varpulis-mp "), "the first command would not be found"


def test_make_demo_ends_with_the_activate_hint() -> None:
    make = shutil.which("make")
    assert make is not None, "the project's set-up needs make"
    # -o install: the environment running these tests is the one to use; it is not rebuilt.
    proc = subprocess.run(
        [make, "-s", "-o", "install", f"BIN={Path(sys.executable).parent}", "demo"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Simulation Complete" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].strip().endswith(ACTIVATE)
