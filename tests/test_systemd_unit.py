"""examples/systemd/varpulis-mp@.service: the settings RUN.md §5 asks for, accepted by
`systemd-analyze verify` without a warning, rated 2.0 or better by `systemd-analyze security`, and
an ExecStart= whose options `varpulis-mp run` takes.

systemd-analyze is part of the `systemd` package; `make test` installs it when missing. No running
systemd is needed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, varpulis_command

UNIT = ROOT / "examples" / "systemd" / "varpulis-mp@.service"
INSTALLED = "/opt/varpulis-mp/bin/varpulis-mp"


def _settings() -> dict[str, list[str]]:
    """Each key of the [Service] section with its values, in order (a key may repeat)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def _seconds(span: str) -> float:
    """A systemd time span as the unit writes them: `45s`, `2min`, `500ms`."""
    match = re.fullmatch(r"(\d+)(ms|s|min)?", span)
    assert match, span
    return int(match[1]) * {"ms": 0.001, "s": 1.0, None: 1.0, "min": 60.0}[match[2]]


def _exec_start() -> list[str]:
    return shlex.split(_settings()["ExecStart"][0])


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze not found: install it (Debian/Ubuntu: apt-get install systemd; "
                    "or run `make test` as root)", pytrace=False)
    return found


def test_the_unit_has_what_run_md_asks_for() -> None:
    s = {key: values[-1] for key, values in _settings().items()}
    assert s["Type"] == "notify" and s["NotifyAccess"] == "main"
    assert s["KillMode"] == "mixed"
    assert s["Restart"] == "on-failure"
    assert s["RestartPreventExitStatus"].split() == ["2", "3"]
    assert _seconds(s["WatchdogSec"]) >= 10
    assert s["OOMPolicy"] == "continue"
    assert s["DynamicUser"] == "yes"
    assert s["RuntimeDirectory"]
    assert s["WorkingDirectory"] == f"%S/{s['StateDirectory']}"
    for hardening in ("ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
                      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "CapabilityBoundingSet=",
                      "MemoryDenyWriteExecute=yes"):
        key, _, value = hardening.partition("=")
        assert s[key] == value, hardening
    assert "@system-service" in _settings()["SystemCallFilter"]

    args = _exec_start()
    assert args[:3] == [INSTALLED, "run", "/etc/varpulis-mp/%i.vpl"]
    assert args[args.index("--output") + 1] == "none"
    drain = _seconds(args[args.index("--drain-timeout") + 1])
    # The drain, then the hard stop after it (TERM, a second's grace, KILL), all before systemd's KILL.
    assert _seconds(s["TimeoutStopSec"]) >= drain + 10


def test_run_takes_the_options_of_exec_start(tmp_path: Path) -> None:
    program = tmp_path / "pipeline.vpl"
    program.write_text("stream Echo = R\n    .emit(v: v)\n")
    args = [str(program) if a == "/etc/varpulis-mp/%i.vpl" else a for a in _exec_start()[2:]]
    proc = subprocess.run([*varpulis_command(), "run", *args], input="@1 R { v: 1 }\n", capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # --output none: the journal gets the logs and the summary only
    assert "Events processed: 1\n" in proc.stderr


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    # verify checks that ExecStart='s program exists: this checkout's stands in for /opt's.
    script = Path(sys.executable).with_name("varpulis-mp")
    assert script.exists(), "the console script of this virtual environment (make install)"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(script)))
    for name in (unit.name, "varpulis-mp@pipeline.service"):
        proc = subprocess.run([analyze, "verify", str(tmp_path / name)], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr


def test_systemd_analyze_security_rates_it_2_or_better() -> None:
    analyze = _systemd_analyze()
    proc = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
                          capture_output=True, text=True, timeout=60)
    if "--offline" in proc.stderr:
        pytest.fail(f"this systemd-analyze cannot rate a unit file without a running systemd "
                    f"(--offline needs systemd 250 or later): {proc.stderr.strip()}", pytrace=False)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match[1]) <= 2.0, proc.stdout
