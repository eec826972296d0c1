"""The supervisor's side of its worker processes: one handle per worker, and the set of them.

Owns `WorkerHandle` (what the supervisor knows of one worker process: its spec, pid, state,
restarts, last heartbeat and last reported consumption), `Spawner` (how a worker process is
started: `DirectFork` forks this process, the fork server of runtime/forkserver.py forks a clean
one) and `WorkerSet`, the one place that starts, reaps and ends worker processes. A handle's
state moves `starting -> ready -> draining -> exited`; a restart gives the context a new handle
(same index) in `starting`.

Deciding what a death means is runtime/supervision.py's business; this module only notices it.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Protocol

from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.worker import WorkerSpec, worker_main

__all__ = ["DirectFork", "Spawner", "WorkerHandle", "WorkerSet", "WorkerState", "describe_status"]

TERM_GRACE_S = 1.0
_REAP_SLEEP_S = 0.005


class WorkerState(enum.Enum):
    STARTING = "starting"  # forked, not yet ready
    READY = "ready"  # sockets bound, files opened, clients created
    DRAINING = "draining"  # every hosted stream ended; holds its sockets until told to stop
    EXITED = "exited"  # reaped


@dataclass(eq=False)
class WorkerHandle:
    """One worker process as the supervisor sees it."""

    spec: WorkerSpec
    pid: int
    started_at: float
    state: WorkerState = WorkerState.STARTING
    status: int | None = None  # raw wait status once reaped
    exited_at: float = 0.0
    restarts: int = 0  # restarts of this context before this process
    last_heartbeat: float = 0.0
    ready_at: float | None = None
    asked_to_stop: bool = False
    # channel key -> the last record number this process reported consumed (in band, runtime/losses.py)
    consumed: dict[str, int] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return self.spec.index

    @property
    def context(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        """How logs name the process: its context, `<context>-<n>` for worker n of a pool."""
        return self.spec.process_name

    @property
    def worker(self) -> int:
        """The process's index in its context's pool (0 outside pools)."""
        return self.spec.worker

    @property
    def alive(self) -> bool:
        return self.status is None

    def became_ready(self, now: float) -> None:
        self.state = WorkerState.READY
        self.ready_at = now
        self.last_heartbeat = now


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.WEXITSTATUS(status) if os.WIFEXITED(status) else status}"


class Spawner(Protocol):
    def spawn(self, index: int) -> int:
        """Start worker `index`; its pid. The worker is this process's child."""
        ...

    def close(self) -> None: ...


class DirectFork:
    """Forks this process for each worker: only safe before any ZeroMQ context or thread exists
    here, so a run that restarts workers uses the fork server instead."""

    def __init__(self, program: CheckedProgram, specs: list[WorkerSpec], run_dir: RunDir) -> None:
        self._program = program
        self._specs = specs
        self._run_dir = run_dir
        self._parent = os.getpid()

    def spawn(self, index: int) -> int:
        # Buffered output must not be written twice (once by a child).
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            worker_main(self._program, self._specs[index], self._run_dir, self._parent)
        return pid

    def close(self) -> None:
        pass


class WorkerSet:
    """Every worker of a run, one present handle per context index."""

    def __init__(self, specs: list[WorkerSpec], spawner: Spawner | None = None) -> None:
        self.specs = specs
        self.spawner = spawner
        self.handles: list[WorkerHandle] = []

    def __getitem__(self, index: int) -> WorkerHandle:
        return self.handles[index]

    def __len__(self) -> int:
        return len(self.handles)

    def start_all(self) -> None:
        assert self.spawner is not None
        for spec in self.specs:
            self.handles.append(WorkerHandle(spec, self.spawner.spawn(spec.index), time.monotonic()))

    def respawn(self, index: int) -> WorkerHandle:
        """A new process for context `index`, in place of the dead one."""
        old = self.handles[index]
        assert not old.alive and self.spawner is not None
        handle = WorkerHandle(old.spec, self.spawner.spawn(index), time.monotonic(), restarts=old.restarts + 1)
        self.handles[index] = handle
        return handle

    def reap(self) -> list[WorkerHandle]:
        """The workers found dead since the last call (each once), their status recorded."""
        now = time.monotonic()
        found: list[WorkerHandle] = []
        for w in self.handles:
            if w.status is not None:
                continue
            try:
                pid, status = os.waitpid(w.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): its status is lost
                pid, status = w.pid, 0
            if pid == 0:
                continue
            w.status = status
            w.exited_at = now
            w.state = WorkerState.EXITED
            found.append(w)
        return found

    def alive(self) -> list[WorkerHandle]:
        return [w for w in self.handles if w.alive]

    def up(self) -> int:
        return sum(w.state is WorkerState.READY or w.state is WorkerState.DRAINING for w in self.handles)

    def kill(self, handle: WorkerHandle, sig: int) -> None:
        if handle.alive:
            try:
                os.kill(handle.pid, sig)
            except ProcessLookupError:
                pass

    def await_exit(self, handle: WorkerHandle, deadline: float) -> bool:
        """Wait until `handle` has exited (reaped); False at the deadline."""
        while handle.status is None:
            pid, status = os.waitpid(handle.pid, os.WNOHANG)
            if pid:
                handle.status = status
                handle.exited_at = time.monotonic()
                handle.state = WorkerState.EXITED
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(_REAP_SLEEP_S)
        return True

    def terminate(self, handles: list[WorkerHandle], grace_s: float = TERM_GRACE_S) -> None:
        """TERM, then KILL after `grace_s`; reap them all."""
        for w in handles:
            w.asked_to_stop = True
            self.kill(w, signal.SIGTERM if grace_s > 0 else signal.SIGKILL)
        deadline = time.monotonic() + grace_s
        for w in handles:
            if not self.await_exit(w, deadline):
                self.kill(w, signal.SIGKILL)
                w.status = os.waitpid(w.pid, 0)[1]
                w.exited_at = time.monotonic()
                w.state = WorkerState.EXITED
