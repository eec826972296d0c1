"""Soak: a long `varpulis-mp run` under steady load, watching every process for leaks.

Runs the tutorial's windowed pipeline (examples/pipeline_three_stages.vpl, three contexts: three
worker processes) fed on its standard input at a steady rate, for `SOAK_MINUTES` (default 30).
Every `SOAK_INTERVAL_S` seconds (default 10) it samples the resident memory (VmRSS) and the open
file descriptors of the supervisor and of each of its children (workers `vmp-<context>`, helpers),
from /proc, and prints them; at the end it prints each process's slopes (least squares, per
minute), over the samples after the first minute (the warm-up) when there are enough of them. A
worker that was replaced during the soak shows as a new row.

    SOAK_MINUTES=30 .venv/bin/python bench/soak.py      # or: make soak
    SOAK_MINUTES=2 SOAK_INTERVAL_S=5 SOAK_RATE=2000 .venv/bin/python bench/soak.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "examples" / "pipeline_three_stages.vpl"
WARM_UP_S = 60.0


def line(seq: int) -> str:
    zone = ("north", "south", "east")[seq % 3]
    return f'@{seq * 100} SensorReading {{ sensor_id: "S{seq % 50}", value: {(seq * 37) % 211 - 5.5}, zone: "{zone}" }}\n'


def command() -> list[str]:
    script = Path(sys.executable).with_name("varpulis-mp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "varpulis_mp"]


def processes(root: int) -> dict[str, int]:
    """'supervisor' and each child of it by name (`vmp-...`, with its pid when names repeat)."""
    found = {"supervisor": root}
    for task in os.listdir(f"/proc/{root}/task"):
        try:
            kids = Path(f"/proc/{root}/task/{task}/children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            try:
                name = Path(f"/proc/{kid}/comm").read_text().strip()
            except OSError:
                continue
            found[name if name not in found else f"{name}-{kid}"] = int(kid)
    return found


def sample(pid: int) -> tuple[float, int] | None:
    """(RSS in MiB, open descriptors), or None once the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    rss_kib = next(int(row.split()[1]) for row in status.splitlines() if row.startswith("VmRSS:"))
    return rss_kib / 1024, fds


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return 0.0 if var == 0 else 60.0 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var


class Feeder(threading.Thread):
    def __init__(self, proc: subprocess.Popen[bytes], rate: float) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.rate = rate
        self.sent = 0
        self.halt = threading.Event()

    def run(self) -> None:
        assert self.proc.stdin is not None
        started = time.monotonic()
        while not self.halt.is_set():
            due = int((time.monotonic() - started) * self.rate) - self.sent
            if due > 0:
                try:
                    self.proc.stdin.write("".join(line(self.sent + i) for i in range(due)).encode())
                    self.proc.stdin.flush()
                except (BrokenPipeError, ValueError):
                    return
                self.sent += due
            self.halt.wait(0.01)


def main() -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "30"))
    interval = float(os.environ.get("SOAK_INTERVAL_S", "10"))
    rate = float(os.environ.get("SOAK_RATE", "1000"))
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the run's standard error, however long it is
    proc = subprocess.Popen([*command(), "run", str(PROGRAM), "--input", "-", "--output", "none"],
                            stdin=subprocess.PIPE, stderr=log)
    feeder = Feeder(proc, rate)
    feeder.start()
    series: dict[str, list[tuple[float, float, int]]] = {}
    started = time.monotonic()
    print(f"soak: {PROGRAM.name} at {rate:g} events/s for {minutes:g} min, a sample every {interval:g} s", flush=True)
    try:
        due = interval  # the first sample once the run is up
        while due <= minutes * 60:
            time.sleep(max(0.0, due - (time.monotonic() - started)))
            due += interval
            if proc.poll() is not None:
                print(f"the run ended early (status {proc.returncode})", file=sys.stderr)
                return 1
            now = time.monotonic() - started
            row = []
            for name, pid in sorted(processes(proc.pid).items()):
                taken = sample(pid)
                if taken is not None:
                    series.setdefault(name, []).append((now, *taken))
                    row.append(f"{name} {taken[0]:.1f} MiB {taken[1]} fds")
            print(f"{now:7.0f} s  {feeder.sent} events  " + "; ".join(row), flush=True)
    finally:
        feeder.halt.set()
        feeder.join(10)
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        print(log.read().decode(errors="replace")[-2000:], file=sys.stderr)
    print(f"\nrun exited {proc.returncode} after {feeder.sent} events")
    print(f"{'process':<20} {'samples':>7} {'RSS MiB/min':>12} {'fds/min':>9} {'RSS first..last':>18}")
    for name, points in sorted(series.items()):
        kept = [p for p in points if p[0] >= WARM_UP_S]
        kept = kept if len(kept) >= 3 else points
        rss = slope_per_minute([(t, r) for t, r, _ in kept])
        fds = slope_per_minute([(t, float(f)) for t, _, f in kept])
        print(f"{name:<20} {len(kept):>7} {rss:>12.3f} {fds:>9.3f} {points[0][1]:>8.1f}..{points[-1][1]:<8.1f}")
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
