"""The service manager's end of `NOTIFY_SOCKET`, as systemd holds it, for the systemd tests.

A datagram socket with `SO_PASSCRED`: the kernel attaches each message's sender (pid, uid, gid) as
`SCM_CREDENTIALS`, which is how systemd's `NotifyAccess=main` tells the main process from others.
Every wait has a timeout.
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import time
from dataclasses import dataclass

import pytest

_UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class Message:
    at: float  # time.monotonic() when it was received
    pid: int  # the sender's, from SCM_CREDENTIALS
    text: str

    @property
    def assignments(self) -> list[str]:
        return self.text.split("\n")


class ServiceManager:
    """Receives what `run` tells systemd; `messages` is everything received so far."""

    def __init__(self, address: str | None = None) -> None:
        self._dir: str | None = None
        if address is None:  # a path, short enough for sockaddr_un whatever TMPDIR is
            self._dir = tempfile.mkdtemp(prefix="vmp-sd-", dir="/tmp")
            address = os.path.join(self._dir, "notify")
        self.address = address  # what NOTIFY_SOCKET says
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address.replace("@", "\0", 1) if address.startswith("@") else address)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages: list[Message] = []

    def close(self) -> None:
        self.sock.close()
        if self._dir is not None:
            for name in os.listdir(self._dir):
                os.unlink(os.path.join(self._dir, name))
            os.rmdir(self._dir)

    def __enter__(self) -> ServiceManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def receive(self, timeout: float) -> Message | None:
        """The next message, or None after `timeout` seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, ancillary, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(_UCRED.size))
        except TimeoutError:
            return None
        pid = -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = _UCRED.unpack(payload[:_UCRED.size])[0]
        message = Message(time.monotonic(), pid, data.decode())
        self.messages.append(message)
        return message

    def wait_for(self, assignment: str, timeout: float) -> Message:
        """Receive until a message holds `assignment` (`READY=1`, or a prefix such as `STATUS=`)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is not None and any(a.startswith(assignment) for a in message.assignments):
                return message
        pytest.fail(f"no {assignment} within {timeout} s; received {[m.text for m in self.messages]}")

    def collect(self, seconds: float) -> list[Message]:
        """Everything received during the next `seconds`."""
        found: list[Message] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is not None:
                found.append(message)
        return found

    def pending(self) -> list[Message]:
        """What is already queued, without waiting."""
        found: list[Message] = []
        while (message := self.receive(0.001)) is not None:
            found.append(message)
        return found


def pings(messages: list[Message]) -> list[float]:
    """When each `WATCHDOG=1` arrived."""
    return [m.at for m in messages if "WATCHDOG=1" in m.assignments]
