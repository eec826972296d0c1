"""systemd's notify protocol (sd_notify(3)), spoken by the supervisor of `run` only (RUN.md §5).

Owns the conversation with the service manager: `READY=1` once the run is ready, a one-line
`STATUS=` at most every 5 s, `WATCHDOG=1` every `WATCHDOG_USEC/2`, `STOPPING=1` when the drain
starts and `EXTEND_TIMEOUT_USEC=` to cover it. Each message is one datagram to `$NOTIFY_SOCKET` (a
path, or an abstract-namespace name written with a leading `@`), sent without blocking.

`Notifier.from_environment()` takes the variables out of the environment before any worker is
forked, so that no worker can speak for the service (`NotifyAccess=main` would refuse it anyway).
Without a socket every method is a no-op; a socket that cannot be reached is logged once and never
raises into the run.

The watchdog pings come from `tick()`, which the supervisor calls on every turn of its own loop: a
stuck supervisor stops pinging and systemd restarts it, while a hung worker (the supervisor's
business, RUN.md §6) does not stop the pings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence

from varpulis_mp.runtime.logs import lifecycle

__all__ = ["STATUS_EVERY_S", "Notifier", "StatusLine"]

STATUS_EVERY_S = 5.0  # at most one STATUS= line this often
_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    """The service manager's side of a run; `Notifier()` is the one that says nothing."""

    def __init__(self, address: str | None = None, watchdog_usec: int | None = None) -> None:
        self._address = _socket_address(address) if address else None
        self._ping_every_s = watchdog_usec / 2e6 if self._address and watchdog_usec else None
        self._last_ping = float("-inf")
        self._last_status = float("-inf")
        self._ready = False
        self._stopping = False
        self._unreachable = False  # logged once

    @classmethod
    def from_environment(cls) -> Notifier:
        """The notifier systemd asked for, if any; the variables leave the environment either way."""
        address = os.environ.get("NOTIFY_SOCKET")
        watchdog_usec = _positive_int(os.environ.get("WATCHDOG_USEC"))
        watchdog_pid = _positive_int(os.environ.get("WATCHDOG_PID"))
        if watchdog_pid is not None and watchdog_pid != os.getpid():
            watchdog_usec = None  # the watchdog is another process's (sd_watchdog_enabled(3))
        _forget(_VARIABLES)
        return cls(address, watchdog_usec)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def ping_every_s(self) -> float | None:
        """How often the watchdog wants `WATCHDOG=1` (None: no watchdog)."""
        return self._ping_every_s

    def ready(self) -> None:
        """Every worker is ready (sent once)."""
        if not self._ready:
            self._ready = True
            self._send("READY=1")

    def stopping(self) -> None:
        """The drain has started (sent once)."""
        if not self._stopping:
            self._stopping = True
            self._send("STOPPING=1")

    def extend_timeout(self, usec: int) -> None:
        """Ask for `usec` more microseconds before the start or stop timeout (a long drain)."""
        self._send(f"EXTEND_TIMEOUT_USEC={max(0, int(usec))}")

    def status(self, text: str, now: float | None = None) -> None:
        """A one-line summary for `systemctl status`; dropped when the last was under 5 s ago."""
        now = time.monotonic() if now is None else now
        if self._address is None or now - self._last_status < STATUS_EVERY_S:
            return
        self._last_status = now
        self._send("STATUS=" + " ".join(text.split()))

    def watchdog_due(self, now: float) -> bool:
        return self._ping_every_s is not None and now - self._last_ping >= self._ping_every_s

    def ping(self, now: float) -> None:
        """`WATCHDOG=1`: the supervisor's loop is alive."""
        if self._ping_every_s is not None:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def tick(self, now: float, status_line: Callable[[], str]) -> None:
        """Called on every turn of the supervisor's loop: the watchdog ping when due and, once
        ready, the status line when due (`status_line` is only called then)."""
        if self._address is None:
            return
        if self.watchdog_due(now):
            self.ping(now)
        if self._ready and now - self._last_status >= STATUS_EVERY_S:
            line = status_line()
            self.status(f"draining; {line}" if self._stopping else line, now)

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # Never wait on the service manager: a full queue drops this message, not the run.
                sock.sendto(message.encode(), socket.MSG_DONTWAIT, self._address)
        except OSError as exc:
            if not self._unreachable:
                self._unreachable = True
                address = self._address.replace("\0", "@", 1)
                lifecycle("notify_failed", f"systemd notify socket {address}: cannot send ({exc.strerror or exc}); "
                          "the run goes on", logging.WARNING, socket=address)


class StatusLine:
    """STATUS='s summary: events per second since the previous summary, the events so far, and the
    callers' other facts (contexts up, connectors not receiving)."""

    def __init__(self, start: float) -> None:
        self._last = (start, 0)

    def __call__(self, now: float, events: int, facts: Sequence[str] = ()) -> str:
        then, before = self._last
        self._last = (now, events)
        rate = (events - before) / (now - then) if now > then else 0.0
        return "; ".join([f"{rate:,.0f} events/s, {events:,} events", *facts])


def _socket_address(address: str) -> str | None:
    if address.startswith("@"):
        return "\0" + address[1:]  # Linux's abstract namespace
    if address.startswith("/"):
        return address
    lifecycle("notify_failed", f"NOTIFY_SOCKET {address}: not a path or an abstract name; not notifying systemd",
              logging.WARNING, socket=address)
    return None


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(text) if text else 0
    except ValueError:
        return None
    return value if value > 0 else None


def _forget(names: Sequence[str]) -> None:
    """Take `names` out of the environment, where a forked worker could find them.

    unsetenv hides them from getenv and from any program exec'd later, but a forked child's
    /proc/PID/environ (what `ps e` and psutil read) is the block the process was started with
    (proc(5)), which the child's memory still holds: those bytes are blanked too. Only bytes inside
    that block are touched (its bounds are in /proc/self/stat), and only once nothing points at them.
    """
    import ctypes  # here: `run` under systemd is the only user

    blank: list[tuple[int, int]] = []
    with contextlib.suppress(OSError, ValueError, AttributeError, IndexError):
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50 and 51)
        environ = ctypes.POINTER(ctypes.c_void_p).in_dll(ctypes.CDLL(None), "environ")
        prefixes = tuple(f"{name}=".encode() for name in names)
        i = 0
        while (entry := environ[i]) is not None:
            text = ctypes.string_at(entry)
            if text.startswith(prefixes) and start <= entry and entry + len(text) <= end:
                blank.append((entry, len(text)))
            i += 1
    for name in names:
        os.environ.pop(name, None)  # unsetenv: the C environment no longer points at them
    for entry, size in blank:
        ctypes.memset(entry, ord(" "), size)  # no `=`: parsers of the block skip the entry
