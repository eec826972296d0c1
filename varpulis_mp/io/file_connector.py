"""The `file` connector: `.evt` lines in (optionally following the file), JSON lines out.

Source: reads the file's lines (VPL.md §11) and hands them out as `LineBatch`es, raw, for the
runtime to parse and type-check (a line of a type no subscription reads is rejected there). The
LF ends a line and a CR right before it is dropped; a byte-order mark at the start of the file is
skipped; a line longer than 1 MiB is rejected (`line too long`) without being held. Without
`follow` the source ends at the end of the file (a last line without LF counts). With `follow`
it keeps reading what is appended, like `tail -F`: a file truncated below what was read is read
again from its start, a file replaced by another (rotation) is read to its end and then the new
one from its start, and a file that is not there yet is waited for. It polls every 100 ms
(`next_awake`), as the standard library has no portable file watch.

Sink: one JSON line per record (`payloads`), each line a single `write` to a descriptor opened
with O_APPEND, so that lines of several processes never mix; the file is fsynced at close.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from varpulis_mp.io.connector_spec import ConnectorCounters, Params, Subscription
from varpulis_mp.io.delivery import DeliverySink, PartialDelivery, Transport
from varpulis_mp.io.lifecycle import connector_event
from varpulis_mp.io.ports import LineBatch, Rejection, Sink, Source

__all__ = ["FILE", "FileKind", "FileSink", "FileSource", "FileSourcePartition", "open_for_appending",
           "open_for_reading"]

LINE_LIMIT: Final = 1 << 20
_CHUNK: Final = 1 << 18
_FOLLOW_POLL_S: Final = 0.1
_BOM: Final = b"\xef\xbb\xbf"
_log = logging.getLogger("varpulis_mp.connectors")


def open_for_reading(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def open_for_appending(path: str) -> int:
    """O_APPEND: each `write` lands whole at the end, whoever else appends (RUN.md §1.3)."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


@dataclass(frozen=True, slots=True)
class FileSource:
    """A `file` connector read as input (a Source description)."""

    name: str
    path: str
    follow: bool
    event_types: tuple[str, ...]  # the types its subscriptions read: other lines are rejected

    def build(self, worker_index: int, worker_count: int) -> FileSourcePartition:
        return FileSourcePartition(self.name, self.path, self.follow)


class FileSourcePartition:
    """Reads a file by chunks into lines; with `follow`, keeps reading as it grows or is replaced."""

    def __init__(self, name: str, path: str, follow: bool) -> None:
        self.name = name
        self.counters = ConnectorCounters()  # messages_in: lines read
        self._path = path
        self._follow = follow
        self._fd: int | None = None
        self._offset = 0
        self._pending = b""
        self._skipping = False  # inside a line past the limit: drop bytes up to its LF
        # With follow, at the end of the data: when to look again (monotonic); None: at once.
        self._idle_until: float | None = None
        self._ended = False
        try:
            self._open()
        except FileNotFoundError:
            if not follow:
                raise
            connector_event("connector_waiting", f"connector {name}: {path} does not exist yet; waiting for it",
                            logging.WARNING, connector=name, connector_type="file", path=path)
        else:
            self._receiving("")

    @property
    def healthy(self) -> bool:
        # A file read to its end is done, not broken: only a file not there (yet) is unhealthy.
        return self._fd is not None or self._ended

    def _receiving(self, how: str) -> None:
        connector_event("connector_connected", f"connector {self.name}: subscribed, receiving from {self._path}{how}",
                        connector=self.name, connector_type="file", path=self._path)

    def _open(self) -> None:
        self._fd = open_for_reading(self._path)
        self._offset = 0

    def next_awake(self) -> float | None:
        # A fixed time, set once at the end of the data: "100 ms from whenever asked" never comes.
        return self._idle_until

    def next_batch(self) -> LineBatch:
        if self._ended:
            raise StopIteration
        batch = LineBatch([])
        data = os.read(self._fd, _CHUNK) if self._fd is not None else b""
        if data:
            self._idle_until = None
            at_start = self._offset == 0
            self._offset += len(data)
            self._split(data[3:] if at_start and data.startswith(_BOM) else data, batch)
            self.counters.messages_in += len(batch.lines)
            return batch
        if not self._follow:
            self._finish_line(batch)
            self.close()
        else:
            self._idle_until = None if self._check_replaced(batch) else time.monotonic() + _FOLLOW_POLL_S
        self.counters.messages_in += len(batch.lines)
        return batch

    def _split(self, data: bytes, batch: LineBatch) -> None:
        parts = data.split(b"\n")
        last = parts.pop()
        for part in parts:
            if self._skipping:
                self._skipping = False
                continue
            line = self._pending + part if self._pending else part
            self._pending = b""
            if len(line) > LINE_LIMIT + 1 or (len(line) == LINE_LIMIT + 1 and not line.endswith(b"\r")):
                self._reject_long(line, batch)
            else:
                batch.lines.append(_strip_cr(line))
        if self._skipping:
            return
        self._pending += last
        if len(self._pending) > LINE_LIMIT + 1:
            self._reject_long(self._pending, batch)
            self._pending = b""
            self._skipping = True

    def _reject_long(self, line: bytes, batch: LineBatch) -> None:
        batch.rejected.append(Rejection(self.name, "line too long", "an event line is longer than 1 MiB",
                                        line[:1024]))

    def _check_replaced(self, batch: LineBatch) -> bool:
        """At the end of the data: reopens the file if it was truncated or replaced; True if it did."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return False  # moved away, the new one not there yet: keep the old one open
        if self._fd is None:
            self._open()
            self._receiving(" (it appeared)")
            return True
        current = os.fstat(self._fd)
        if (st.st_ino, st.st_dev) != (current.st_ino, current.st_dev):
            # Rotated: what was read of the old file is complete, its last line included.
            self._finish_line(batch)
            os.close(self._fd)
            self._open()
            connector_event("file_replaced", f"connector {self.name}: {self._path} was replaced; reading the new file",
                            connector=self.name, connector_type="file", path=self._path)
            return True
        if current.st_size < self._offset:
            if self._pending:
                batch.rejected.append(Rejection(self.name, "truncated", "a line cut short by truncation",
                                                self._pending[:1024]))
            self._pending = b""
            self._skipping = False
            os.lseek(self._fd, 0, os.SEEK_SET)
            self._offset = 0
            connector_event("file_truncated",
                            f"connector {self.name}: {self._path} was truncated; reading it from its start",
                            connector=self.name, connector_type="file", path=self._path)
            return True
        return False

    def _finish_line(self, batch: LineBatch) -> None:
        if self._pending and not self._skipping:
            batch.lines.append(_strip_cr(self._pending))
        self._pending = b""
        self._skipping = False

    def close(self) -> None:
        """Ends the source (`next_batch` raises StopIteration from now on)."""
        self._ended = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


@dataclass(frozen=True, slots=True)
class FileSink:
    """A `file` connector written as output (a transport description)."""

    path: str

    def open(self, worker_index: int, worker_count: int) -> Transport:
        return _Appender(self.path)


class _Appender:
    """An O_APPEND descriptor: one `write` per line, so that concurrent writers never mix lines."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None
        self.connect()  # at build: a file that cannot be opened is a start-up failure

    def connect(self) -> None:
        if self._fd is None:
            self._fd = open_for_appending(self._path)

    def send(self, payloads: Sequence[bytes]) -> None:
        fd = self._fd
        assert fd is not None
        for i, payload in enumerate(payloads):
            line = payload + b"\n"
            try:
                written = os.write(fd, line)
                if written != len(line):
                    # Only a full disk or a signal cuts a regular file's write; finish the line.
                    _log.warning("file %s: a line was written in two parts", self._path)
                    os.write(fd, line[written:])
            except OSError as exc:
                raise PartialDelivery(i, f"{self._path}: {exc.strerror}") from None

    def disconnect(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fsync(fd)
            except OSError as exc:
                _log.warning("file %s: fsync: %s", self._path, exc.strerror)
            os.close(fd)


class FileKind:
    """`file(path, follow)`: a path relative to the working directory of `run`."""

    kind = "file"

    def source(self, connector: str, params: Mapping[str, object],
               subscriptions: Sequence[Subscription], context: str) -> Source:
        p = Params(connector, params)
        types = tuple(dict.fromkeys(s.event_type for s in subscriptions))
        return FileSource(connector, p.text("path"), p.flag("follow", False), types)

    def sink(self, connector: str, params: Mapping[str, object], to_params: Mapping[str, object],
             stream: str, context: str) -> Sink:
        return DeliverySink(connector, stream, FileSink(Params(connector, params).text("path")))


FILE: Final = FileKind()
