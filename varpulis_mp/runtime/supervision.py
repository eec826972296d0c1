"""What the supervisor does about its workers' lives (RUN.md §6): deaths, restarts, hung workers.

Owns `Supervision`, the deciding side of the supervisor: it takes the deaths the worker set
reaps (runtime/workers.py), asks the restart policy (runtime/restart_policy.py) what each means,
and carries the decision out through the supervisor's `RunFace`: start a replacement (after its
backoff), give up on the context (the run drains what still runs, then fails), stop the run
(`--restart never`), or stop it as a boot failure (exit 3). It also kills a worker silent for
longer than the worker timeout (SIGABRT, then SIGKILL; then it is a crash like any other), and
measures each restart time (death noticed -> replacement ready).

`FailFast` is the policy of `simulate` and of every run that does not restart: any death that was
not asked for stops the run.
"""

from __future__ import annotations

import os
import signal
import statistics
from dataclasses import dataclass
from typing import Protocol

from varpulis_mp.engine.output import Summary
from varpulis_mp.errors import RuntimeFailure
from varpulis_mp.runtime.logs import runtime_log
from varpulis_mp.runtime.restart_policy import (
    BootFailure,
    Death,
    Decision,
    GiveUp,
    Ignore,
    Restart,
    StopRun,
)
from varpulis_mp.runtime.workers import WorkerHandle, WorkerSet, WorkerState, describe_status

__all__ = ["FailFast", "Policy", "RunFace", "RunStopped", "Supervision", "WorkerStartFailure"]

ABORT_GRACE_S = 1.0  # a hung worker's time between SIGABRT and SIGKILL
START_TIMEOUT_S = 60.0  # a replacement not ready by then is killed: a boot failure
# The loop looks at least every 50 ms; a longer gap means the supervisor itself did not run (stopped,
# starved of CPU), and what the workers said meanwhile is still on its way: their silence is not theirs.
OWN_STALL_S = 1.0


class WorkerStartFailure(RuntimeFailure):
    """A worker failed before it was ready (RUN.md §2: exit 3)."""


class RunStopped(RuntimeFailure):
    """A worker died and the policy says the run stops (`--restart never`); the run's summary is
    printed all the same."""

    summary: Summary | None = None


class Policy(Protocol):
    def decide(self, context: str, now: float, death: Death) -> Decision: ...

    def healthy(self, context: str, now: float) -> None: ...


class FailFast:
    """No restarts: a death that was not asked for stops the run, as it always did."""

    def decide(self, context: str, now: float, death: Death) -> Decision:
        if death.asked_to_stop and os.WIFEXITED(death.status) and os.WEXITSTATUS(death.status) == 0:
            return Ignore()
        if not death.was_ready:
            return BootFailure(f"context '{context}' worker {describe_status(death.status)} before it was ready")
        return StopRun(f"context '{context}' worker {describe_status(death.status)}")

    def healthy(self, context: str, now: float) -> None:
        pass


class RunFace(Protocol):
    """What supervision needs of the run."""

    def drain_worker(self, index: int) -> str | None:
        """Take what the dead worker `index` left in its channel; the failure it reported, if any."""
        ...

    def worker_exited(self, handle: WorkerHandle) -> None: ...

    def worker_ready(self, handle: WorkerHandle) -> None: ...

    def finished(self, index: int) -> bool:
        """Whether worker `index` had sent its final counters (all its work is in)."""
        ...

    def replacement_starting(self, handle: WorkerHandle, how: str, attempt: int) -> None: ...

    def replacement_ready(self, handle: WorkerHandle) -> None: ...

    def give_up(self, index: int, reason: str) -> None: ...


@dataclass
class _Due:
    at: float  # when to start the replacement (after the backoff)
    how: str
    attempt: int


class Supervision:
    def __init__(self, policy: Policy, workers: WorkerSet, run: RunFace, *, worker_timeout_s: float | None = None,
                 restarts: bool = False) -> None:
        self.policy = policy
        self.workers = workers
        self.run = run
        self.worker_timeout_s = worker_timeout_s
        self.restarts = restarts  # whether a death may be followed by a replacement
        self._due: dict[int, _Due] = {}
        self._noticed: dict[int, float] = {}  # index -> when its last death was noticed (+ its backoff)
        self._aborted: dict[int, float] = {}  # index -> when its hung worker got SIGABRT
        self.restart_times: list[float] = []  # death noticed -> replacement ready, backoff excluded, seconds
        self.given_up: list[str] = []  # why, per context given up on
        self.finished_dead: set[int] = set()  # workers that died after their work was all in
        self._last_look: float | None = None  # when the hung workers were last looked for

    def check(self, now: float) -> None:
        """Reap, decide, start the replacements that are due, and look for hung workers."""
        for handle in self.workers.reap():
            self._on_death(handle, now)
        for index in [i for i, due in self._due.items() if now >= due.at]:
            due = self._due.pop(index)
            handle = self.workers.respawn(index)
            self.run.replacement_starting(handle, due.how, due.attempt)
        if self.worker_timeout_s is not None:
            self._check_hung(now)

    def pending(self) -> bool:
        """A replacement is waiting for its backoff or its ready."""
        return bool(self._due) or any(w.alive and w.state is WorkerState.STARTING and w.restarts for w in self.workers.handles)

    def ready(self, handle: WorkerHandle, now: float) -> None:
        handle.became_ready(now)
        self.run.worker_ready(handle)
        if handle.restarts:
            noticed = self._noticed.pop(handle.index, now)
            self.restart_times.append(now - noticed)
            self.policy.healthy(handle.label, now)
            runtime_log.debug("context '%s' restart time %.3f s", handle.label, now - noticed)
            self.run.replacement_ready(handle)

    def heartbeat(self, handle: WorkerHandle, now: float, *, draining: bool = False) -> None:
        handle.last_heartbeat = now
        if draining and handle.state is WorkerState.READY:
            handle.state = WorkerState.DRAINING  # closing its sinks may take long: not watched

    def _on_death(self, handle: WorkerHandle, now: float) -> None:
        detail = self.run.drain_worker(handle.index)
        self.run.worker_exited(handle)
        self._aborted.pop(handle.index, None)
        death = Death(handle.status or 0, handle.ready_at is not None, handle.asked_to_stop)
        decision = self.policy.decide(handle.label, now, death)
        if isinstance(decision, Ignore):
            return
        how = _how(handle.status or 0)
        if self.restarts and self.run.finished(handle.index):
            # Its outputs, ends and counters are all in: a replacement would have nothing to do.
            runtime_log.warning("context '%s' worker died (%s) after it finished; nothing to restart",
                                handle.label, how)
            self.finished_dead.add(handle.index)
            return
        reason = f"{decision.reason}: {detail}" if detail and not isinstance(decision, Restart) else None
        if isinstance(decision, Restart) and self.restarts:
            # The restart time leaves the backoff out (RUN.md §6): it counts from the backoff's end.
            self._noticed[handle.index] = now + decision.delay_s
            self._due[handle.index] = _Due(now + decision.delay_s, how, decision.attempt)
            if detail:
                runtime_log.warning("context '%s' worker failed: %s", handle.label, detail)
        elif isinstance(decision, BootFailure):
            raise WorkerStartFailure(reason or decision.reason)
        elif isinstance(decision, GiveUp):
            self.given_up.append(reason or decision.reason)
            runtime_log.error("%s", reason or decision.reason)
            self.run.give_up(handle.index, reason or decision.reason)
        elif isinstance(decision, StopRun):
            raise RunStopped(reason or decision.reason)
        else:  # a restart where none is possible (simulate): the run fails, as it always did
            text = f"context '{handle.label}' worker {describe_status(handle.status or 0)}"
            raise RuntimeFailure(f"{text}: {detail}" if detail else text)

    def _check_hung(self, now: float) -> None:
        timeout = self.worker_timeout_s
        assert timeout is not None
        stalled = now - self._last_look if self._last_look is not None else 0.0
        self._last_look = now
        if stalled > OWN_STALL_S:
            for handle in self.workers.handles:
                handle.last_heartbeat += stalled
            self._aborted = {index: at + stalled for index, at in self._aborted.items()}
        for handle in self.workers.handles:
            if handle.alive and handle.state is WorkerState.STARTING and handle.restarts \
                    and now - handle.started_at > START_TIMEOUT_S:
                runtime_log.warning("context '%s' worker not ready after %.0f s: killing it", handle.label,
                                    START_TIMEOUT_S)
                self.workers.kill(handle, signal.SIGKILL)
            if not handle.alive or handle.state is not WorkerState.READY:
                continue
            aborted = self._aborted.get(handle.index)
            if aborted is None and now - handle.last_heartbeat > timeout:
                runtime_log.warning("context '%s' worker sent no heartbeat for %.1f s: killing it",
                                    handle.label, now - handle.last_heartbeat)
                self._aborted[handle.index] = now
                self.workers.kill(handle, signal.SIGABRT)
                # A stopped process (SIGSTOP) takes no signal but SIGKILL until continued.
                self.workers.kill(handle, signal.SIGCONT)
            elif aborted is not None and now - aborted > ABORT_GRACE_S:
                self.workers.kill(handle, signal.SIGKILL)

    def restart_time_summary(self) -> str | None:
        times = sorted(self.restart_times)
        if not times:
            return None
        p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
        return f"restart time p50 {statistics.median(times) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"


def _how(status: int) -> str:
    """How a worker died, for the restart line: `SIGKILL`, `exit status 70`."""
    if os.WIFSIGNALED(status):
        try:
            return signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status) if os.WIFEXITED(status) else status}"
