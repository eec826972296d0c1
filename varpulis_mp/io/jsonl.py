"""The `--output jsonl` writer (OUTPUT.md §1): one JSON object per output record, nothing else.

Each line is `{"stream": S, "ts": T, "fields": {...}}`, members separated by `, ` and names
followed by `: `, non-ASCII text written as is. Python's JSON encoder already writes a float with
`float.__repr__`, the shortest form that reads back to the same double and always with a `.` or
an exponent (`200.0`, `1e+16`, `1.5e-07`), and bools as `true`/`false` before it tries ints, so
values need no per-value Python code: the C encoder does all of the work.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Sequence
from typing import Any, Final, TextIO

from varpulis_mp.engine.output import Output
from varpulis_mp.io.whole_writes import write_whole

__all__ = ["JsonlSink", "encode_fields", "jsonl_line"]

# Records per chunk handed to the stream: large enough that writes cost little per record, small
# enough that a long run does not hold much text.
DEFAULT_CHUNK_RECORDS: Final = 4096


def _make_field_encoder() -> Callable[[Any], str]:
    """A function that encodes a record's fields (a dict) as OUTPUT.md §1 says."""
    # The C encoder is what `JSONEncoder.encode` uses underneath; calling it directly skips the
    # per-call Python layers. `markers=None` turns off the cycle check, as values never nest
    # into themselves.
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    c_encode_str = getattr(json.encoder, "c_encode_basestring", None)
    if c_make_encoder is None or c_encode_str is None:  # pragma: no cover - CPython always has them
        encoder = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(", ", ": "))
        return encoder.encode
    fallback = json.JSONEncoder()
    chunks = c_make_encoder(None, fallback.default, c_encode_str, None, ": ", ", ", False, False, True)

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


_encode_fields: Final = _make_field_encoder()
# The same encoder for other writers of OUTPUT.md §1 values (connector payloads).
encode_fields: Final = _encode_fields
_encode_str: Final[Callable[[str], str]] = getattr(
    json.encoder, "c_encode_basestring", json.encoder.py_encode_basestring
)

# `{"stream": "S", "ts": ` for each stream name seen, so the name is escaped once per run.
_prefixes: dict[str, str] = {}


def _prefix(stream: str) -> str:
    prefix = _prefixes.get(stream)
    if prefix is None:
        prefix = '{"stream": ' + _encode_str(stream) + ', "ts": '
        if len(_prefixes) < 65536:  # stream names are few; the bound only guards odd callers
            _prefixes[stream] = prefix
    return prefix


def jsonl_line(out: Output) -> str:
    """The record as one JSON Lines line, with its terminating LF."""
    return f'{_prefix(out.stream)}{out.ts}, "fields": {_encode_fields(out.fields)}}}\n'


class JsonlSink:
    """Writes the output records handed to it, in the order given, in large chunks."""

    def __init__(self, stream: TextIO, chunk_records: int = DEFAULT_CHUNK_RECORDS) -> None:
        self._stream = stream
        self._chunk = max(1, chunk_records)
        self._buffer: list[str] = []
        self._closed = False

    def write_outputs(self, outputs: Sequence[Output]) -> None:
        """Add the `record` items of `outputs` (window lines are for the human output only)."""
        buffer = self._buffer
        prefix = _prefix
        encode = _encode_fields
        chunk = self._chunk
        # Slices of at most one chunk, so a large batch (the end-of-input flush) never builds one
        # huge string; the usual small batch goes through without slicing.
        for start in range(0, len(outputs), chunk):
            part = outputs if len(outputs) <= chunk else outputs[start : start + chunk]
            buffer += [
                f'{prefix(out.stream)}{out.ts}, "fields": {encode(out.fields)}}}\n'
                for out in part
                if out.kind == "record"
            ]
            if len(buffer) >= chunk:
                self._write_buffer()

    def write_batch(self, records: Sequence[Output], flush: bool) -> None:
        """The Sink face (io/ports.py): buffered like `write_outputs` (a live run flushes each
        batch, runtime/outputs.py's `Prompt`)."""
        self.write_outputs(records)

    def write_lines(self, lines: list[str]) -> None:
        """Add records already written as JSON Lines lines (each with its LF), in the order given."""
        buffer = self._buffer
        buffer += lines
        if len(buffer) >= self._chunk:
            self._write_buffer()

    def flush(self) -> None:
        """Write what is buffered and flush the stream (for live runs that want low latency)."""
        self._write_buffer()
        self._stream.flush()

    def close(self) -> None:
        """Write what is buffered and flush the stream; the stream itself stays open."""
        if self._closed:
            return
        self._closed = True
        self.flush()

    def _write_buffer(self) -> None:
        if self._buffer:
            # Whole lines only: a run stopped later never leaves a partial line (OUTPUT.md §1).
            write_whole(self._stream, "".join(self._buffer))
            self._buffer.clear()
