"""A process that owns a fork server, driven line by line on standard input (one JSON answer per
line on standard output), so the fork server tests never make pytest itself a child subreaper.

Commands: `pids` (its own pid, the server's, the standby's, the run directory), `spawn INDEX`
(the worker's pid, how long spawn took and how long until the worker said READY), `quit` (kill
and reap the workers, close the fork server, answer with the children left); both `pids` and
`quit` say whether the process is a child subreaper.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from pathlib import Path

from varpulis_mp.engine.plan import build_plan
from varpulis_mp.lang.frontend import load_program
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.forkserver import ForkServer
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.supervisor import worker_specs

PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "pipeline_three_stages.vpl"
READY_TIMEOUT_S = 20.0


def subreaper() -> bool:
    """Whether this process adopts its descendants' orphans (`PR_GET_CHILD_SUBREAPER`)."""
    flag = ctypes.c_int(0)
    ctypes.CDLL(None, use_errno=True).prctl(37, ctypes.byref(flag), 0, 0, 0)
    return bool(flag.value)


def children(parent: int) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text(errors="replace")
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if fields[1] == str(parent):
                found.append({"pid": int(entry), "name": stat[stat.find("(") + 1:stat.rfind(")")],
                              "state": fields[0]})
    return found


def main() -> None:
    program = load_program(PROGRAM.read_text(encoding="utf-8"), str(PROGRAM))
    specs = worker_specs(build_plan(program), 1000, "events.evt", False, set())
    run_dir = RunDir()
    fork_server = ForkServer.start(program, specs, run_dir)
    from varpulis_mp.runtime.transport import Transport  # after the fork server: no ZeroMQ before it

    transport = Transport(1000)
    control = transport.receiver(run_dir.control(), bind=True, hwm=1000)
    workers: list[int] = []

    def answer(value: dict[str, object]) -> None:
        print(json.dumps(value), flush=True)

    for line in sys.stdin:
        command, *args = line.split()
        if command == "pids":
            answer({"me": os.getpid(), "server": fork_server.server_pid, "standby": fork_server.standby_pid,
                    "run_dir": run_dir.path, "names": [s.name for s in specs], "subreaper": subreaper()})
        elif command == "spawn":
            index = int(args[0])
            started = time.monotonic()
            try:
                pid = fork_server.spawn(index)
            except Exception as exc:  # noqa: BLE001 - the test reads what went wrong
                answer({"error": f"{type(exc).__name__}: {exc}", "after_s": time.monotonic() - started})
                continue
            spawned = time.monotonic()
            workers.append(pid)
            ready = None
            deadline = spawned + READY_TIMEOUT_S
            while ready is None and time.monotonic() < deadline:
                data = control.try_recv()
                if data is None:
                    time.sleep(0.0005)
                    continue
                for frame in wire.decode(data):
                    if frame[0] == wire.READY and frame[1] == index and frame[2] == pid:
                        ready = time.monotonic()
            answer({"pid": pid, "spawn_s": spawned - started,
                    "ready_s": None if ready is None else ready - started})
        elif command == "quit":
            for pid in workers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.waitpid(pid, 0)
            fork_server.close()
            transport.close(0)
            run_dir.remove()
            answer({"children": children(os.getpid()), "subreaper": subreaper()})
            return


if __name__ == "__main__":
    main()
