"""The fork server: a clean process that forks the workers for the supervisor, at any time.

Owns how a worker process comes to exist once the supervisor can no longer fork safely (it has a
ZeroMQ context and threads: a child of it would inherit their locks and half-done state), and the
helper processes that make that possible (RUN.md §6, "Process names", "A helper that dies").

* **Start.** `ForkServer.start` is called before the supervisor creates any ZeroMQ context or
  thread, once the specs are final. The supervisor becomes a child subreaper
  (`PR_SET_CHILD_SUBREAPER`), then forks the server, which arms `PR_SET_PDEATHSIG` (it dies with
  the supervisor), ignores SIGINT and SIGTERM (a terminal's Ctrl-C is the supervisor's to handle),
  names itself `vmp-forkserver` and imports the engine (`varpulis_mp.engine.dataflow`) once, so that
  every worker it forks has it already. It holds the checked program and the specs as they were
  at the fork: they hold connector objects and are never serialized.
* **Requests** travel over a `SOCK_SEQPACKET` socket pair (one message per request, no framing, no
  pickle): `(SPAWN, index)` answers the pid of the worker for `specs[index]`; `(STANDBY, 0)` comes
  with the standby's end of a fresh socket pair (SCM_RIGHTS) and answers the standby's pid.
* **Double fork.** The server forks an intermediate that forks the worker and exits at once, so
  the worker is reparented to the supervisor, the subreaper: the supervisor stays the one reaper
  of its workers (`os.waitpid(pid)` as before) and the server never has a worker to reap. The
  worker names itself `vmp-<context>` first, then waits on a latch (a pipe) that the server opens
  only after the intermediate is reaped and the pid has been answered: by then the worker's parent
  is the supervisor, so it can arm `PR_SET_PDEATHSIG` against the right process (`prepare_child`,
  in `worker_main`, checks `os.getppid()` after arming it). A server that dies before answering
  closes the latch: the worker it was forking exits (`EXIT_ORPHANED`) instead of running unknown to
  the supervisor. The wait is bounded (`ANSWER_TIMEOUT_S`).
* **Standby.** At start the server forks a standby server the same way (double fork, reparented to
  the supervisor, parent-death signal armed once it is). A server that is gone (its socket closed,
  or a request not answered within `ANSWER_TIMEOUT_S`: it is then killed) is replaced by the standby
  during `spawn`, which then asks the new server for a new standby. No worker is touched: workers
  are not the server's children. A standby that died is replaced at the next `spawn`.
* **Strays.** A server that dies in the middle of a request leaves processes of its own (an
  intermediate, a child waiting on its latch) that end at once and are reparented to the
  supervisor. For a while after such a loss, `spawn` and `close` reap the supervisor's ended
  children named like the server or a worker whose pid no fork server of this process handed out.
* **End.** `close` closes both sockets; each server exits at the end of its socket and is reaped
  (SIGKILL after `CLOSE_GRACE_S`). When the last fork server of the process closes, the process
  stops being a subreaper (unless it was one before): an embedding program must not go on adopting
  the orphans of its other children. Workers already reparented stay its children.

Linux only: without `PR_SET_CHILD_SUBREAPER` a worker could not become the supervisor's child.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import NoReturn

from varpulis_mp.errors import RuntimeFailure
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.runtime.child import EXIT_ORPHANED
from varpulis_mp.runtime.rundir import RunDir
from varpulis_mp.runtime.worker import WorkerSpec, worker_main

__all__ = ["ANSWER_TIMEOUT_S", "SERVER_NAME", "ForkServer"]

SERVER_NAME = "vmp-forkserver"
ANSWER_TIMEOUT_S = 5.0  # the longest a spawn waits for the server's answer
START_TIMEOUT_S = 15.0  # the first answer also waits for the server's import of the engine
CLOSE_GRACE_S = 1.0
_PRELOAD = "varpulis_mp.engine.dataflow"

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37

_REQUEST = struct.Struct("<ii")  # (operation, argument)
_ANSWER = struct.Struct("<i")  # a pid, or one of the negative codes below
_SPAWN = 1
_STANDBY = 2
_BAD_REQUEST = -1
_FORK_FAILED = -2
_GO = b"g"
STRAY_WATCH_S = 2 * ANSWER_TIMEOUT_S  # how long after a server's loss its strays may still end

# Every pid a fork server of this process answered: the supervisor's to reap, never a stray.
_handed_out: set[int] = set()


def _prctl(option: int, arg: int | bytes) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, arg, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False  # not Linux


def _is_subreaper() -> bool:
    flag = ctypes.c_int(0)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)
    except (OSError, AttributeError):
        return False
    return bool(flag.value)


class _Gone(Exception):
    """The server at the other end of the socket has exited."""


class _Peer:
    """The supervisor's end of one server's socket, and the server's pid (a child of ours)."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock

    def ask(self, op: int, arg: int, fds: list[int], deadline: float) -> int:
        """Send one request and wait for its answer until `deadline` (TimeoutError past it)."""
        request = _REQUEST.pack(op, arg)
        try:
            if fds:
                socket.send_fds(self.sock, [request], fds)
            else:
                self.sock.send(request)
        except OSError as exc:
            raise _Gone from exc
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        while not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
            if time.monotonic() >= deadline:
                raise TimeoutError
        try:
            answer = self.sock.recv(_ANSWER.size)
        except OSError as exc:
            raise _Gone from exc
        if len(answer) != _ANSWER.size:
            raise _Gone
        return int(_ANSWER.unpack(answer)[0])

    def gone(self) -> bool:
        """A server never speaks unasked: anything to read on its socket is its end."""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def end(self, grace_s: float) -> None:
        """Close our end (the server exits at the end of its socket), then reap it: SIGKILL once
        `grace_s` has passed."""
        self.sock.close()
        deadline = time.monotonic() + grace_s
        while True:
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return  # reaped already
            if pid:
                return
            if time.monotonic() >= deadline:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.waitpid(self.pid, 0)
                return
            time.sleep(0.002)


class _Subreaper:
    """This process as a child subreaper while a fork server of its is open: set by the first,
    restored by the last (a process that embeds runs must not keep adopting orphans after them)."""

    users = 0
    was_subreaper = False
    lock = threading.Lock()

    @classmethod
    def enter(cls) -> None:
        with cls.lock:
            if cls.users == 0:
                cls.was_subreaper = _is_subreaper()
                if not _prctl(_PR_SET_CHILD_SUBREAPER, 1):
                    raise RuntimeFailure("cannot become a child subreaper "
                                         "(PR_SET_CHILD_SUBREAPER needs Linux 3.4 or later)")
            cls.users += 1

    @classmethod
    def leave(cls) -> None:
        with cls.lock:
            cls.users -= 1
            if cls.users == 0 and not cls.was_subreaper:
                _prctl(_PR_SET_CHILD_SUBREAPER, 0)


class ForkServer:
    """The supervisor's handle on its fork server and the standby that replaces it; used from one
    thread at a time (the supervisor's loop)."""

    def __init__(self, server: _Peer, specs: list[WorkerSpec], supervisor: int) -> None:
        self._server: _Peer | None = server
        self._standby: _Peer | None = None
        self._specs = len(specs)
        self._supervisor = supervisor
        self._names = {SERVER_NAME} | {f"vmp-{spec.process_name}"[:15] for spec in specs}
        self._strays_until = 0.0  # strays of a lost server may end until then
        self._closed = False

    @classmethod
    def start(cls, program: CheckedProgram, specs: list[WorkerSpec], run_dir: RunDir) -> ForkServer:
        """Fork the fork server now: call it before any ZeroMQ context or thread exists in this
        process, after the specs are final. Makes this process a child subreaper."""
        _Subreaper.enter()
        try:
            return cls._start(program, specs, run_dir)
        except BaseException:
            _Subreaper.leave()
            raise

    @classmethod
    def _start(cls, program: CheckedProgram, specs: list[WorkerSpec], run_dir: RunDir) -> ForkServer:
        supervisor = os.getpid()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Buffered output must not be written twice (once by a child).
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                ours.close()
                _Server(program, specs, run_dir, supervisor, theirs).run_as_server()
            finally:
                os._exit(70)
        theirs.close()
        fork_server = cls(_Peer(pid, ours), specs, supervisor)
        try:
            fork_server._replenish(time.monotonic() + START_TIMEOUT_S)
            if fork_server._standby is None:
                raise RuntimeFailure("the fork server did not start")
        except BaseException:
            fork_server._end_servers()
            raise
        return fork_server

    @property
    def server_pid(self) -> int | None:
        return self._server.pid if self._server is not None else None

    @property
    def standby_pid(self) -> int | None:
        return self._standby.pid if self._standby is not None else None

    def spawn(self, index: int) -> int:
        """Start worker `specs[index]` (worker_main(program, spec, run_dir, parent=this pid)); return its
        pid. The worker is this process's child: reap it with os.waitpid as today."""
        if not 0 <= index < self._specs:
            raise ValueError(f"no worker spec {index} (there are {self._specs})")
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while True:
            server = self._live_server()
            try:
                pid = server.ask(_SPAWN, index, [], deadline)
            except _Gone:
                self._lose_server()
                continue
            except TimeoutError:
                self._lose_server()
                raise RuntimeFailure(f"the fork server did not answer within {ANSWER_TIMEOUT_S:g}s") from None
            if pid < 0:
                raise RuntimeFailure(f"the fork server could not fork a worker (code {pid})")
            _handed_out.add(pid)
            # After the worker, which is waited for: a new standby if the last one was used or died.
            self._replenish(time.monotonic() + ANSWER_TIMEOUT_S)
            self._reap_strays()
            return pid

    def close(self) -> None:
        """End both servers (workers are not touched) and reap them; idempotent. The last fork
        server of this process to close makes it a subreaper no more (if it was none before)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._end_servers()
            self._reap_strays()
        finally:
            _Subreaper.leave()

    def _end_servers(self) -> None:
        for peer in (self._server, self._standby):
            if peer is not None:
                peer.end(CLOSE_GRACE_S)
        self._server = self._standby = None

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- replacing helpers ---------------------------------------------------------------------

    def _live_server(self) -> _Peer:
        if self._server is None:
            self._promote()
        if self._server is None:
            raise RuntimeFailure("the fork server and its standby are both gone: no worker can be started")
        return self._server

    def _lose_server(self) -> None:
        """The server is gone or hung: kill and reap it, and put the standby in its place."""
        if self._server is not None:
            try:
                os.kill(self._server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._server.end(CLOSE_GRACE_S)
            self._server = None
            self._strays_until = time.monotonic() + STRAY_WATCH_S
        self._promote()

    def _promote(self) -> None:
        standby, self._standby = self._standby, None
        if standby is not None and standby.gone():
            standby.end(CLOSE_GRACE_S)
            standby = None
        self._server = standby

    def _replenish(self, deadline: float) -> None:
        """Have a standby: ask the server for one if there is none, or if it died."""
        if self._standby is not None:
            if not self._standby.gone():
                return
            self._standby.end(CLOSE_GRACE_S)
            self._standby = None
        server = self._server
        if server is None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = server.ask(_STANDBY, 0, [theirs.fileno()], deadline)
        except (_Gone, TimeoutError):
            ours.close()
            self._lose_server()  # the next spawn finds no standby and says so
            return
        finally:
            theirs.close()
        if pid < 0:
            ours.close()
            return
        _handed_out.add(pid)
        self._standby = _Peer(pid, ours)

    def _reap_strays(self) -> None:
        """Reap what a lost server left behind (see "Strays" above), while it may still end."""
        if time.monotonic() > self._strays_until:
            return
        for pid, name, state in _children(self._supervisor):
            if state == "Z" and name in self._names and pid not in _handed_out:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass


class _Server:
    """The server's side, in its own process: forks a worker or a standby per request."""

    def __init__(self, program: CheckedProgram, specs: list[WorkerSpec], run_dir: RunDir,
                 supervisor: int, channel: socket.socket) -> None:
        self.program = program
        self.specs = specs
        self.run_dir = run_dir
        self.supervisor = supervisor
        self.channel = channel

    def run_as_server(self) -> NoReturn:
        """The process the supervisor forked: arm the parent-death signal, then serve."""
        _quiet_signals()
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.supervisor:
            os._exit(EXIT_ORPHANED)
        _prctl(_PR_SET_NAME, SERVER_NAME.encode())
        importlib.import_module(_PRELOAD)
        self._serve()

    def _serve(self) -> NoReturn:
        code = 0
        try:
            while True:
                try:
                    data, fds, _, _ = socket.recv_fds(self.channel, _REQUEST.size, 1)
                except OSError:
                    break
                if len(data) != _REQUEST.size:
                    break  # the end of the socket: the supervisor closed it, or died
                op, arg = _REQUEST.unpack(data)
                pid, go = self._fork_for(op, arg, fds)
                try:
                    self.channel.send(_ANSWER.pack(pid))
                finally:
                    if go is not None:
                        _release(go)
        except BaseException:
            code = 70
            if os.environ.get("VARPULIS_MP_DEBUG"):
                print(f"fork server failed:\n{traceback.format_exc()}", file=sys.stderr)
        finally:
            os._exit(code)

    def _fork_for(self, op: int, arg: int, fds: list[int]) -> tuple[int, int | None]:
        """Fork what a request asks for: its pid (or a negative code) and its latch."""
        if op == _SPAWN and 0 <= arg < len(self.specs) and not fds:
            return self._double_fork(lambda latch: self._become_worker(arg, latch))
        if op == _STANDBY and len(fds) == 1:
            standby = socket.socket(fileno=fds[0])
            try:
                return self._double_fork(lambda latch: self._become_standby(standby, latch))
            finally:
                standby.close()  # the standby's end now lives in the standby only
        for fd in fds:
            os.close(fd)
        return _BAD_REQUEST, None

    def _double_fork(self, become: Callable[[int], NoReturn]) -> tuple[int, int | None]:
        """Fork an intermediate that forks `become(latch)` and exits; reap it. Returns the
        grandchild's pid (or `_FORK_FAILED`) and the latch's write end, to release once answered."""
        pid_r, pid_w = os.pipe()
        latch_r, latch_w = os.pipe()
        try:
            middle = os.fork()
        except OSError:
            for fd in (pid_r, pid_w, latch_r, latch_w):
                os.close(fd)
            return _FORK_FAILED, None
        if middle == 0:
            try:
                os.close(pid_r)
                os.close(latch_w)  # else the grandchild would never see a dead server's latch close
                try:
                    grandchild = os.fork()
                except OSError:
                    grandchild = _FORK_FAILED
                if grandchild == 0:
                    try:
                        os.close(pid_w)
                        become(latch_r)
                    finally:
                        os._exit(EXIT_ORPHANED)
                os.write(pid_w, _ANSWER.pack(grandchild))
            finally:
                os._exit(0)
        os.close(pid_w)
        os.close(latch_r)
        answer = _read_exactly(pid_r, _ANSWER.size)
        os.close(pid_r)
        os.waitpid(middle, 0)  # once it is reaped, the grandchild's parent is the supervisor
        pid = int(_ANSWER.unpack(answer)[0]) if len(answer) == _ANSWER.size else _FORK_FAILED
        if pid < 0:
            os.close(latch_w)
            return pid, None
        return pid, latch_w

    def _become_worker(self, index: int, latch: int) -> NoReturn:
        spec = self.specs[index]
        self.channel.close()  # the server's end: its end of file must come when the server ends
        _prctl(_PR_SET_NAME, f"vmp-{spec.process_name}"[:15].encode())  # visible as the worker at once
        _await_latch(latch, self.supervisor)
        worker_main(self.program, spec, self.run_dir, self.supervisor)

    def _become_standby(self, channel: socket.socket, latch: int) -> NoReturn:
        self.channel.close()
        _await_latch(latch, self.supervisor)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.supervisor:
            os._exit(EXIT_ORPHANED)
        self.channel = channel
        self._serve()


def _quiet_signals() -> None:
    """SIGINT and SIGTERM are the supervisor's to handle (a terminal's Ctrl-C reaches every process
    of the group); SIGCHLD at its default, so that waitpid sees the intermediates."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def _await_latch(latch: int, supervisor: int) -> None:
    """Wait until the server has answered for this process; exit if it died first or if this
    process is not the supervisor's child by then."""
    poller = select.poll()
    poller.register(latch, select.POLLIN)
    opened = bool(poller.poll(ANSWER_TIMEOUT_S * 1000)) and os.read(latch, 1) == _GO
    os.close(latch)
    if not opened or os.getppid() != supervisor:
        os._exit(EXIT_ORPHANED)


def _release(latch: int) -> None:
    try:
        os.write(latch, _GO)
    except OSError:
        pass  # the child is gone already
    finally:
        os.close(latch)


def _children(parent: int) -> list[tuple[int, str, str]]:
    """(pid, name, state) of every process whose parent is `parent`, from /proc."""
    found: list[tuple[int, str, str]] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue  # ended meanwhile
        # The name may hold spaces and parentheses: the fields after it start past the last ')'.
        name = stat[stat.find("(") + 1:stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == str(parent):
            found.append((int(entry), name, fields[0]))
    return found


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data
