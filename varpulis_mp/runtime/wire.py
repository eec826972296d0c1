"""The wire format between processes: two pure functions, `encode` and `decode`, and the frames.

One ZeroMQ message is a version byte followed by one msgpack array of *frames*; each frame is an
array whose first element is its kind. Grouping several frames in one message lets a batch carry
its data and the progress that covers it together, in order. Frames:

* `START` — first message on a worker's ingress: every worker is ready, connect your producers.
* `LINES type origin line time idx text` — raw input lines of one event type, parsed by the
  receiving worker: `text` holds them joined by LFs; the k-th has origin `origin + idx[k]`, line
  number `line + idx[k]` and the BATCH time `time`.
* `BLOCK line last checker odd text groups` — a whole block of raw input lines (block ingress), sent
  unchanged to every worker that reads events: `text` holds lines `line` to `last` joined by LFs;
  each worker keeps the lines of its own event types, and worker `checker` also checks the lines
  no read type claims; `odd` says a line may hold a BATCH time or an escaped JSON type. Origins
  are then line numbers. `groups` is nil, or, for a pool's worker when the router split the block
  by key (runtime/key_routes.py, `text` then empty), `[type, indexes, lines]` per type with the
  lines of its keys (`""` as the type: the lines nobody reads, for the checker).
* `RECORDS stream shape times origins rows` — output records of one stream and one shape sent to
  a reading context, column-wise: event times, origins, and one array of field values per record
  (a record's fields are rebuilt from the shape's names and its row). A worker of a pool sends
  `[origin, order key]` for each origin (runtime/pool_input.py merges its pool's channels).
* `SHAPE id names` — the field names of a shape id, sent once per channel before first use (input
  events need not share a schema).
* `PROGRESS ids n` — every item of these streams or event types with origin <= n has been sent on
  this channel.
* `EOS id` — this stream or event type has ended on this channel.
* `OUTPUTS entries` — a worker's outputs for the merger; flat: origin, stream index, seq, kind
  code, event time, shape id, values, key.
* `LINES_OUT entries` — a worker's records for the merger, already written as JSON Lines (when
  that is the output): flat: origin, stream index, seq, line.
* `TICK origin now` — live runs only: the wall-clock time `now` (ms), taking origin `origin`;
  the worker closes its sessions idle for their gap, then passes the tick on to the contexts it
  feeds, before its progress.
* `RELAYED sub batch lines first_line events rejections` — live runs only, worker to supervisor: batch
  number `batch` of the worker's subscription `sub` (RUN.md §1.2: a subscription runs in the
  worker of the stream that declared it), either raw `.evt` lines (from line `first_line`, 0 when
  unnumbered) or built events `[type, ts or nil, fields]`, and its rejections
  `[source, reason, detail, payload]`; an empty frame with `batch` -1 says the subscription ended.
* `COMMIT sub batches` — live runs only, supervisor to worker: the first `batches` batches of
  subscription `sub` are fully processed (its client may acknowledge them).
* `STATS counters`, `ERROR origin diagnostic`, `FAIL message index` — a worker's final counters, a bad
  event line it found, and an internal failure, in band after the data they follow.
* `READY index pid key_fields` — control socket only: a worker has bound its endpoints;
  `key_fields[type]` names the field by which it reads the events of a type when it needs only
  those of its own keys (a pool's worker: runtime/key_routes.py).
* `HEARTBEAT index pid counters draining sent` — control socket only: a worker is alive (at least
  once a second, also while it waits on a full channel), with its counters (runtime/metrics_counters.py's
  form, or nil), whether every stream it hosts has ended (its sinks may take a while to close) and
  `sent[dst]`, the records its numbered channel toward worker `dst` has carried (a live run's).
* `SEQ counts born` — first frame of a numbered channel's message (a live run's channels toward a
  worker): `counts[stream]` records of that stream (or event type) were sent on the channel before
  this message by the sending process that made the channel at `born` (the system's monotonic
  clock, ns: a restarted sender's is larger). Records are numbered from 1 per (channel, stream,
  sending process): loss accounting (RUN.md §6).
* `CONSUMED channel counts`, `RESUMED channel counts born`, `LOST channel stream n` — worker to
  merger, in band: the last record number taken per stream on its input `channel` (`in` for the
  router, `p<index>` for an upstream worker); the first message's `SEQ` counts a process got on a
  channel, or got from a new sending process `born` (the sender was restarted); `n` records it
  could not read (a shape announced to its predecessor).
* `SENT dst counts born` — worker to merger, in band: `counts[stream]` records of the outputs this
  message and the earlier ones carried went on the numbered channel toward worker `dst` (sent or
  waiting to be), which this process made at `born`: what a restart of the sender lost on the way.
* `RESEND index` — supervisor to worker: worker `index` was restarted: announce the shapes again
  on the channel toward it, with the progress and the ends of the streams it reads.
* `STOP` — last message on a worker's ingress: every worker has finished, so everything every
  worker sent has been received and the sockets may close.

Values are msgpack's own (nil, bool, int, float64, str, array); integers beyond msgpack's 64-bit
range travel as an extension type holding their decimal digits. Pickle is never used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgpack

from varpulis_mp.engine.output import NO_KEY, Output, OutputKind
from varpulis_mp.errors import Diagnostic, SourcePos

__all__ = [
    "BLOCK", "COMMIT", "CONSUMED", "ENDED", "EOS", "HEARTBEAT", "LOST", "RESEND", "RESUMED", "SENT", "SEQ", "RELAYED", "ERROR", "FAIL", "LINES", "LINES_OUT", "TICK", "OUTPUTS", "PROGRESS", "READY", "RECORDS", "SHAPE", "START",
    "STATS", "STOP", "VERSION", "OUTPUT_KINDS", "OUTPUT_STRIDE", "Frame", "ShapeDecoder", "ShapeEncoder", "WireError", "decode",
    "decode_diagnostic", "decode_outputs", "encode", "encode_diagnostic", "encode_outputs", "make_encoder",
]

VERSION: Final = 1
# The progress of a source that has ended: past every origin, in every process that reads it.
ENDED: Final = 1 << 62
_VERSION_BYTE: Final = bytes([VERSION])
_BIGINT_EXT: Final = 1

START: Final = 0
LINES: Final = 1
RECORDS: Final = 2
SHAPE: Final = 3
PROGRESS: Final = 4
EOS: Final = 5
OUTPUTS: Final = 6
STATS: Final = 7
ERROR: Final = 8
FAIL: Final = 9
READY: Final = 10
STOP: Final = 11
BLOCK: Final = 12
LINES_OUT: Final = 13
TICK: Final = 14
RELAYED: Final = 15
COMMIT: Final = 16
HEARTBEAT: Final = 17
SEQ: Final = 18
CONSUMED: Final = 19
RESUMED: Final = 20
LOST: Final = 21
RESEND: Final = 22
SENT: Final = 23

# A frame is a list (or tuple) whose first element is one of the kinds above.
Frame = list[Any] | tuple[Any, ...]

OUTPUT_STRIDE: Final = 8

# Output kinds with and without a partition key; a record never has one.
_KIND_CODE: Final[dict[tuple[str, bool], int]] = {
    ("record", False): 0,
    ("window", True): 1,
    ("session", True): 2,
    ("window", False): 3,
    ("session", False): 4,
}
OUTPUT_KINDS: Final[list[tuple[OutputKind, bool]]] = [
    ("record", False), ("window", True), ("session", True), ("window", False), ("session", False),
]


class WireError(Exception):
    """A message that is not in this version's format (a bug or a foreign peer, never user input)."""


def _default(obj: object) -> Any:
    if isinstance(obj, int):
        return msgpack.ExtType(_BIGINT_EXT, str(obj).encode("ascii"))
    raise TypeError(f"cannot send a value of type {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _BIGINT_EXT:
        return int(data.decode("ascii"))
    return msgpack.ExtType(code, data)


_packer = msgpack.Packer(default=_default, use_bin_type=True, autoreset=True)


def encode(frames: list[Frame]) -> bytes:
    """One message holding `frames`, in order (for the main thread: the packer is shared)."""
    packed: bytes = _packer.pack(frames)
    return _VERSION_BYTE + packed


def make_encoder() -> Callable[[list[Frame]], bytes]:
    """An `encode` with a packer of its own, for a thread other than the main one."""
    packer = msgpack.Packer(default=_default, use_bin_type=True, autoreset=True)
    pack = packer.pack

    def encode_own(frames: list[Frame]) -> bytes:
        packed: bytes = pack(frames)
        return _VERSION_BYTE + packed

    return encode_own


def decode(data: bytes | memoryview) -> list[list[Any]]:
    """The frames of one message. Raises WireError for another version or a malformed message."""
    if len(data) < 2 or data[0] != VERSION:
        raise WireError(f"unsupported message version {data[0] if len(data) else None!r}")
    try:
        frames = msgpack.unpackb(memoryview(data)[1:], raw=False, ext_hook=_ext_hook,
                                 strict_map_key=False, use_list=True)
    except (ValueError, msgpack.UnpackException) as exc:
        raise WireError(f"malformed message: {exc}") from None
    if not isinstance(frames, list):
        raise WireError("malformed message: not a list of frames")
    return frames


class ShapeEncoder:
    """Sender side of one channel: gives each distinct tuple of field names a small id."""

    __slots__ = ("_ids", "names")

    def __init__(self) -> None:
        self._ids: dict[tuple[str, ...], int] = {}
        self.names: list[tuple[str, ...]] = []  # by id

    def shape_id(self, names: tuple[str, ...], frames: list[Frame]) -> int:
        """The id of `names`; appends a SHAPE frame to `frames` the first time."""
        sid = self._ids.get(names)
        if sid is None:
            sid = len(self._ids)
            self._ids[names] = sid
            self.names.append(names)
            frames.append((SHAPE, sid, list(names)))
        return sid


class ShapeDecoder:
    """Receiver side of one channel: remembers the names of each shape id."""

    __slots__ = ("names",)

    def __init__(self) -> None:
        self.names: dict[int, list[str]] = {}

    def learn(self, frame: list[Any]) -> None:
        self.names[frame[1]] = frame[2]

    def fields(self, shape_id: int, values: list[Any]) -> dict[str, Any]:
        return dict(zip(self.names[shape_id], values, strict=True))


def encode_outputs(outputs: list[Output], shapes: ShapeEncoder, frames: list[Frame]) -> None:
    """Appends SHAPE frames as needed and one OUTPUTS frame carrying `outputs` to `frames`."""
    flat: list[Any] = []
    add = flat.extend
    for o in outputs:
        fields = o.fields
        sid = shapes.shape_id(tuple(fields), frames)
        keyed = o.key is not NO_KEY
        add((o.origin, o.stream_index, o.seq, _KIND_CODE[(o.kind, keyed)], o.ts, sid,
             list(fields.values()), o.key if keyed else None))
    frames.append((OUTPUTS, flat))


def decode_outputs(frame: list[Any], shapes: ShapeDecoder, stream_names: list[str]) -> list[Output]:
    """The Outputs of an OUTPUTS frame; `stream_names` maps stream index to name."""
    flat = frame[1]
    names = shapes.names
    codes = OUTPUT_KINDS
    out: list[Output] = []
    append = out.append
    it = iter(flat)
    # zip over one iterator eight times walks the flat list eight items at a time, without slicing.
    for origin, sidx, seq, code, ts, sid, values, key in zip(it, it, it, it, it, it, it, it, strict=True):
        kind, keyed = codes[code]
        append(Output(origin, sidx, seq, stream_names[sidx], kind, ts, dict(zip(names[sid], values, strict=False)),
                      key if keyed else NO_KEY))
    return out


def encode_diagnostic(d: Diagnostic) -> list[Any]:
    return [d.path, d.pos.line, d.pos.col, d.severity, d.message, d.source_line, d.width, d.hint]


def decode_diagnostic(data: list[Any]) -> Diagnostic:
    path, line, col, severity, message, source_line, width, hint = data
    return Diagnostic(path=path, pos=SourcePos(line, col), severity=severity, message=message,
                      source_line=source_line, width=width, hint=hint)
