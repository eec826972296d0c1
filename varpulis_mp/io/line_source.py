"""The default input of a live run as a Source: `.evt` lines from a file descriptor, as they arrive.

Owns `LineSource`, the partition that reads standard input, a pipe or a file named by `--input`
with `os.read` (a partial line never waits for a full buffer), cuts what arrived into whole lines
and hands them on as numbered `LineBatch`es; parsing is the receiver's business. A line over the
1 MiB limit is rejected as it streams in, never held. The descriptor itself is the wake-up
descriptor: it is readable exactly when `next_batch` has something to give. The source ends at
end of file (a regular file, a closed pipe).
"""

from __future__ import annotations

import os
import stat

from varpulis_mp.io.ports import LineBatch, Rejection

__all__ = ["MAX_LINE_BYTES", "LineSource"]

MAX_LINE_BYTES = 1_048_576
_READ = 1 << 16
_TOO_LONG = "event line is longer than 1 MiB"


class LineSource:
    """A partition over `fd` (not closed here unless `owned`)."""

    def __init__(self, fd: int, name: str = "input", owned: bool = False) -> None:
        self._fd = fd
        self._owned = owned
        self.name = name
        self._pending = bytearray()
        self._lineno = 0
        self._skipping = False  # inside an overlong line, dropped as it streams in
        self._ended = False
        self._first = True

    @classmethod
    def open(cls, path: str) -> LineSource:
        """The partition over a file; OSError when it cannot be opened."""
        return cls(os.open(path, os.O_RDONLY), owned=True)

    def wake_fd(self) -> int:
        return self._fd

    def is_regular_file(self) -> bool:
        """Whether the descriptor is a regular file (always readable; never waits for a writer)."""
        return stat.S_ISREG(os.fstat(self._fd).st_mode)

    def next_awake(self) -> float | None:
        return None

    def next_batch(self) -> LineBatch:
        if self._ended:
            raise StopIteration
        chunk = os.read(self._fd, _READ)
        batch = LineBatch([], first_line=self._lineno + 1)
        if not chunk:
            self._ended = True
            if self._pending and not self._skipping:
                self._lineno += 1
                batch.lines.append(self._take(bytes(self._pending)))
            self._pending.clear()
            return batch
        pending = self._pending
        pending += chunk
        cut = pending.rfind(b"\n")
        if cut >= 0:
            # Every whole line at once, split in C.
            whole = bytes(pending[:cut])
            del pending[:cut + 1]
            lines = whole.split(b"\n")
            if self._skipping:
                self._skipping = False
                del lines[0]  # the end of the overlong line
            if lines:
                self._lineno += len(lines)
                if self._first:
                    lines[0] = self._without_bom(lines[0])
                if b"\r" in whole:
                    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
                batch.lines += lines
        if len(pending) > MAX_LINE_BYTES + 1 and not self._skipping:
            self._lineno += 1
            self._skipping = True
            batch.lines.append(b"")  # keeps the numbering; the rejection says why
            batch.rejected.append(Rejection(self.name, _TOO_LONG, f"line {self._lineno}: {_TOO_LONG}"))
        if self._skipping:
            pending.clear()
        return batch

    def _take(self, line: bytes) -> bytes:
        """A line as handed on: without its CR, and the first without a UTF-8 byte order mark."""
        line = self._without_bom(line)
        return line[:-1] if line.endswith(b"\r") else line

    def _without_bom(self, line: bytes) -> bytes:
        if self._first:
            self._first = False
            if line.startswith(b"\xef\xbb\xbf"):
                return line[3:]
        return line

    def close(self) -> None:
        if self._owned:
            self._owned = False
            os.close(self._fd)
