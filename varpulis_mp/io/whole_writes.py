"""Text written to a stream in full, whatever signals arrive meanwhile.

Owns `write_whole`, which the standard-output writers (io/jsonl.py, io/human.py) use instead of
`stream.write`. Unbuffered (`python -u`, `PYTHONUNBUFFERED=1`), `sys.stdout` is a text layer that
writes through to the raw descriptor and ignores how much one `write(2)` took: a signal (a
SIGTERM) that interrupts a write to a slow reader's pipe after part of it went cuts the text
short, and the rest is silently lost. Here the bytes go to the raw layer in a loop until every
one is written; `EINTR` without a byte written is retried by Python itself (PEP 475). A buffered
layer already loops, so other streams (a file, `io.StringIO`) are written as usual.
"""

from __future__ import annotations

import io
import select
from typing import Final, TextIO

__all__ = ["write_whole"]

# How long one wait for a full non-blocking descriptor lasts before it looks again.
_WRITABLE_WAIT_S: Final = 1.0


def write_whole(stream: TextIO, text: str) -> None:
    """Writes all of `text` to `stream`, looping on short writes of an unbuffered one."""
    raw = getattr(stream, "buffer", None)
    if not isinstance(raw, io.RawIOBase):
        stream.write(text)
        return
    stream.flush()  # whatever the text layer still holds goes first, in order
    data = memoryview(text.encode(stream.encoding or "utf-8", stream.errors or "strict"))
    while data:
        written = raw.write(data)
        if written is None:  # a non-blocking descriptor that is full: wait until it takes more
            select.select([], [raw.fileno()], [], _WRITABLE_WAIT_S)
            continue
        data = data[written:]
