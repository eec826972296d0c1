"""Memory of idle worker processes: RSS and USS of each worker while no input arrives.

Starts `varpulis-mp simulate` on a program with contexts, reading events from a pipe that stays
open and empty, waits until every worker process exists and has settled, then reads each
worker's RSS and USS (memory private to it; pages shared with the supervisor after the fork are
not counted) and ends the run by closing the pipe.

    .venv/bin/python bench/idle_worker.py [PROGRAM.vpl]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROGRAM = ROOT / "examples" / "pipeline_three_stages.vpl"


def main() -> None:
    program = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PROGRAM
    command = [str(ROOT / ".venv" / "bin" / "varpulis-mp"), "simulate", "-p", str(program), "-e", "-",
               "--immediate", "--output", "jsonl"]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 30
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline:
            workers = parent.children()
            if workers:
                break
            time.sleep(0.1)
        time.sleep(2.0)  # let every worker finish starting and reach its idle loop
        workers = parent.children()
        print(f"command: {' '.join(command)}")
        print(f"supervisor pid {proc.pid}: rss {parent.memory_info().rss / 2**20:.1f} MiB")
        for worker in workers:
            info = worker.memory_full_info()
            print(f"worker pid {worker.pid}: rss {info.rss / 2**20:.1f} MiB, uss {info.uss / 2**20:.1f} MiB")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
