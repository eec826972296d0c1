"""How a run ends: signals, the drain and its deadline, the stop of the workers (RUN.md §2, §5).

Owns `Stopping`, the part that the supervisor (runtime/run_loop.py) holds to handle SIGTERM and
SIGINT (dispatched by name from its loop: `handle_term`, `handle_int`), start the drain (systemd
is told `STOPPING=1`, the drain's deadline is armed), stop hard on a second signal or past the
deadline, ping systemd's watchdog from the loop, and, once every worker has finished, tell them to
stop and reap them. It is given the worker set, the merger (which workers finished), supervision
(deaths while the workers stop) and the workers the run gave up on; the router once it exists.

The supervisor writes the records to standard output itself, and a reader that does not read
holds that write up for as long as it likes: around it (`writing_output`) a second signal is acted
on from its handler, which interrupts the write, and so is the drain's deadline (SIGALRM), so that
the run can always be stopped hard (`HardStop`, after which the caller abandons standard output
rather than flush it).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from varpulis_mp.errors import RuntimeFailure
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.interrupt import HardStop
from varpulis_mp.runtime.live_input import LiveInput
from varpulis_mp.runtime.merger import Merger
from varpulis_mp.runtime.notify import Notifier, StatusLine
from varpulis_mp.runtime.router import Router
from varpulis_mp.runtime.sigqueue import SignalQueue
from varpulis_mp.runtime.supervision import Supervision
from varpulis_mp.runtime.transport import wait
from varpulis_mp.runtime.workers import WorkerSet, describe_status

__all__ = ["EXIT_GRACE_S", "POLL_S", "TERM_GRACE_S", "Stopping"]

EXIT_GRACE_S = 5.0  # how long a worker that finished may take to take its stop message and exit
TERM_GRACE_S = 1.0
POLL_S = 0.05


class Stopping:
    def __init__(self, live: LiveInput | None, notifier: Notifier, workers: WorkerSet, merger: Merger,
                 supervision: Supervision, given_up_on: set[int]) -> None:
        self.live = live
        self.notifier = notifier
        self.workers = workers
        self.merger = merger
        self.supervision = supervision
        self.given_up_on = given_up_on  # the workers the run gave up on (runtime/restarts.py adds them)
        self.router: Router | None = None  # once the run is connected
        self.signals = SignalQueue()
        self.signal_count = 0
        self.draining = False
        self.interrupted_by: int | None = None  # the signal that asked for the drain
        self.drain_deadline: float | None = None
        self._alarm_replaced: Any = None  # SIGALRM's handler while the drain's deadline is armed in a write
        self.status_line = StatusLine(time.monotonic())

    def handle_term(self, signum: int) -> None:
        self.signal_count += 1
        if self.signal_count == 1:
            self.interrupted_by = signum
            self.handle_drain()
        else:
            self.handle_hard_stop()

    handle_int = handle_term

    def handle_drain(self) -> None:
        """First SIGTERM/SIGINT: stop reading and drain as at the end of input (within the live
        run's drain deadline, if it has one)."""
        self.draining = True  # before every worker is ready, the loop starts the drain at once
        self.notifier.stopping()
        self._arm_drain_deadline()
        if self.router is not None:
            self.router.end_input()

    def _arm_drain_deadline(self) -> None:
        """The live run's drain deadline, if it has one, from the first signal on (once: a first
        signal heard during a write arms it at once, and the drain itself starts after the write)."""
        if self.live is None or self.live.drain_timeout_s is None or self.drain_deadline is not None:
            return
        self.drain_deadline = time.monotonic() + self.live.drain_timeout_s
        # systemd waits for the whole drain and the hard stop after it, whatever TimeoutStopSec says.
        self.notifier.extend_timeout(int((self.live.drain_timeout_s + TERM_GRACE_S + EXIT_GRACE_S) * 1e6))

    def handle_hard_stop(self, why: str = "stopped by a second signal") -> None:
        """Second signal (or a drain past its deadline): end the unfinished workers (TERM, then
        KILL) and say which did not finish."""
        done = self.merger.done
        unfinished = [w for w in self.workers.handles if w.alive and not done[w.index]]
        self.workers.terminate(unfinished)
        name = unfinished[0].label if unfinished else self.workers[0].label
        raise HardStop(f"{why} before context '{name}' finished")

    @contextmanager
    def writing_output(self) -> Iterator[None]:
        """Around the hand-over of records to standard output (and the sinks of this process): a
        second signal stops hard at once, whether or not the write ever ends."""
        self.signals.urgent = self._signal_while_writing
        self._alarm_at_drain_deadline()
        try:
            yield
        finally:
            self.signals.urgent = None
            if self._alarm_replaced is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, self._alarm_replaced)
                self._alarm_replaced = None

    def _signal_while_writing(self, queued: int) -> None:
        if self.signal_count + queued < 2:
            # A first signal waits for the loop (the drain starts once the write is done), but its
            # deadline runs from now.
            self._arm_drain_deadline()
            self._alarm_at_drain_deadline()
            return
        self.signals.clear()
        self.signal_count += queued
        self.handle_hard_stop()

    def tick_service(self) -> None:
        """systemd's watchdog ping and STATUS line (runtime/notify.py), from this loop: a stuck
        supervisor stops pinging, a hung worker does not stop it."""
        if not self.notifier.enabled:
            return
        self.notifier.tick(time.monotonic(), lambda: self.status_line(
            time.monotonic(), self.router.events if self.router is not None else 0,
            [f"{self.workers.up()}/{len(self.workers)} contexts up"]))

    def check_drain_deadline(self) -> None:
        if self.drain_deadline is not None and time.monotonic() > self.drain_deadline:
            self._past_drain_deadline()

    def _past_drain_deadline(self) -> None:
        assert self.live is not None and self.live.drain_timeout_s is not None
        self.handle_hard_stop(f"the drain took longer than --drain-timeout {self.live.drain_timeout_s:g}s")

    def _alarm_at_drain_deadline(self) -> None:
        """During a write: SIGALRM at the drain's deadline, whose handler stops hard (the loop,
        which looks at the deadline otherwise, may not turn again before the write ends)."""
        if self.drain_deadline is None or self._alarm_replaced is not None \
                or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.signal(signal.SIGALRM, lambda _signum, _frame: self._past_drain_deadline())
        self._alarm_replaced = previous if previous is not None else signal.SIG_DFL
        signal.setitimer(signal.ITIMER_REAL, max(self.drain_deadline - time.monotonic(), 0.001))

    # -- the end -------------------------------------------------------------------------------

    def stop_workers(self) -> None:
        """Every worker has finished: let them close their sockets and exit."""
        router = self.router
        assert router is not None
        for w, box in zip(self.workers.handles, router.outbox, strict=True):
            if w.index not in router.dropped:
                w.asked_to_stop = True
                box.append(wire.encode([(wire.STOP,)]))
        deadline = time.monotonic() + EXIT_GRACE_S
        while not router.idle():
            router.pump()
            self.supervision.check(time.monotonic())
            if time.monotonic() > deadline:
                raise RuntimeFailure("a worker did not take its stop message")
            busy = router.busy()
            router.writable([busy[k] for k in wait([], [router.senders[w] for w in busy], [], POLL_S)[1]])

    def await_exits(self) -> None:
        deadline = time.monotonic() + EXIT_GRACE_S
        for w in self.workers.handles:
            if w.index in self.given_up_on or w.index in self.supervision.finished_dead:
                continue
            if not self.workers.await_exit(w, deadline):
                raise RuntimeFailure(f"context '{w.label}' worker did not exit after it finished")
            if w.status != 0:
                raise RuntimeFailure(f"context '{w.label}' worker {describe_status(w.status or 0)}")
