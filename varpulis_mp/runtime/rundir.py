"""The private run directory that holds a run's `ipc://` endpoints.

Owns where endpoints live and how they are named: one directory per run, mode 0700, created by
the supervisor before it forks and removed when the run ends, however it ends. Endpoints are named
by context index, never by context name, because `ipc://` paths are limited to about 107 bytes.

A supervisor killed with SIGKILL cannot remove its directory, so each records its owner: the file
`owner` holds the supervisor's pid and start time, and every new run first removes the
directories of this user whose owner is gone (no such process, or another process with that pid).
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile

__all__ = ["RunDir", "base_dir", "remove_orphans"]

_PREFIX = "vmp-"
_OWNER = "owner"

# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
_IPC_PATH_MAX = 107


def base_dir() -> str | None:
    """The directory run directories are made in (None: the system default)."""
    # A short base keeps endpoint paths far below the ipc:// limit even with a long TMPDIR.
    # systemd's RuntimeDirectory= (private to the service) first.
    for candidate in (os.environ.get("RUNTIME_DIRECTORY"), os.environ.get("XDG_RUNTIME_DIR"), "/tmp"):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            if len(candidate) < 60:
                return candidate
    return None


class RunDir:
    """A fresh private directory; `endpoint(name)` gives an `ipc://` address inside it."""

    def __init__(self) -> None:
        remove_orphans()
        # mkdtemp creates the directory with mode 0700 already.
        self.path = tempfile.mkdtemp(prefix=_PREFIX, dir=base_dir())
        os.chmod(self.path, 0o700)
        self._owner = os.getpid()
        with open(os.path.join(self.path, _OWNER), "w") as f:
            f.write(_identity(self._owner))

    def endpoint(self, name: str) -> str:
        path = os.path.join(self.path, name)
        if len(path.encode()) > _IPC_PATH_MAX:
            raise RuntimeError(f"endpoint path too long for ipc://: {path}")
        return "ipc://" + path

    def ingress(self, index: int) -> str:
        """Where worker `index` receives input lines from the router."""
        return self.endpoint(f"i{index}")

    def peer(self, dst: int, src: int) -> str:
        """Where worker `dst` receives the records of worker `src`."""
        return self.endpoint(f"p{dst}-{src}")

    def output(self, index: int) -> str:
        """Where worker `index` offers its outputs and progress to the merger."""
        return self.endpoint(f"o{index}")

    def control(self) -> str:
        """Where the supervisor hears `READY` from the workers."""
        return self.endpoint("ctl")

    def remove(self) -> None:
        """Remove the directory and everything in it; only the process that created it does."""
        if os.getpid() == self._owner:
            shutil.rmtree(self.path, ignore_errors=True)

    def exists(self) -> bool:
        return os.path.isdir(self.path)


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process `pid` (field 22 of /proc/PID/stat); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields after it start past the last ')'.
    return stat[stat.rfind(")") + 2:].split()[19]


def _identity(pid: int) -> str:
    return f"{pid} {_start_time(pid) or '?'}\n"


def remove_orphans() -> list[str]:
    """Remove the run directories of this user whose supervisor is gone; returns their paths.

    A directory without an owner file is left alone (another program's, or one being created)."""
    base = base_dir() or tempfile.gettempdir()
    removed: list[str] = []
    uid = os.getuid()
    for path in glob.glob(os.path.join(base, _PREFIX + "*")):
        try:
            if os.stat(path).st_uid != uid:
                continue
            with open(os.path.join(path, _OWNER)) as f:
                pid_text, started = f.read().split()
        except (OSError, ValueError):
            continue
        if pid_text.isdigit() and _start_time(int(pid_text)) == started:
            continue  # its owner still runs
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
