"""The private run directory that holds a run's `ipc://` endpoints.

Owns where endpoints live and how they are named: one directory per run, mode 0700, created by
the supervisor before it forks and removed when the run ends, however it ends. Endpoints are named
by context index, never by context name, because `ipc://` paths are limited to about 107 bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile

__all__ = ["RunDir", "base_dir"]

# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
_IPC_PATH_MAX = 107


def base_dir() -> str | None:
    """The directory run directories are made in (None: the system default)."""
    # A short base keeps endpoint paths far below the ipc:// limit even with a long TMPDIR.
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/tmp"):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            if len(candidate) < 60:
                return candidate
    return None


class RunDir:
    """A fresh private directory; `endpoint(name)` gives an `ipc://` address inside it."""

    def __init__(self) -> None:
        # mkdtemp creates the directory with mode 0700 already.
        self.path = tempfile.mkdtemp(prefix="vmp-", dir=base_dir())
        os.chmod(self.path, 0o700)
        self._owner = os.getpid()

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
