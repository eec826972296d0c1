"""What the checker hands on: a program whose names, contexts, windows and constants are resolved.

This is the boundary between the language front end and the engine: the engine and the plan read
only these types (and the expression nodes of `ast`), never the raw declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from varpulis_mp.errors import Diagnostic, SourcePos
from varpulis_mp.lang import ast


@dataclass(frozen=True, slots=True)
class Duration:
    """The value of a constant that holds a duration (only usable as a window size)."""

    ms: int


# A constant's value: Int, Float, String, Bool, null, a list of values, or a Duration.
Value = Union[None, bool, int, float, str, list["Value"], Duration]

DEFAULT_CONTEXT = "default"


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A resolved `.window(...)`.

    kind `count`: size and slide in records; `time`: in ms; `session`: size is the gap in ms.
    slide is None for a tumbling window (and always for a session).
    """

    kind: Literal["count", "time", "session"]
    size: int
    slide: int | None = None


@dataclass(frozen=True, slots=True)
class ContextInfo:
    """A declared context. `cores` is None without a `cores:` option; core_pos[i] locates cores[i].
    `workers` is how many processes run its streams (RUN.md §7): 1 unless `workers:` says more."""

    name: str
    pos: SourcePos
    cores: tuple[int, ...] | None
    core_pos: tuple[SourcePos, ...]
    workers: int = 1


@dataclass(frozen=True, slots=True)
class ConnectorInfo:
    """A declared connector (RUN.md §1.1).

    `params` holds every parameter of the kind, keyed by its VPL name: the written value, else the
    default, else None; Durations are int milliseconds. A `password` is there too (the connector
    needs it): whoever shows connectors leaves it out.
    """

    name: str
    kind: str  # "mqtt", "nats", "file" or "http"
    params: dict[str, object]
    pos: SourcePos


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A stream's use of a connector: its subscription (`.from`) or one of its sinks (`.to`).

    `params` holds every parameter of that use, resolved like a connector's; those RUN.md
    inherits (`qos`, `client_id`, `queue_group`) default to the connector's value, and the mqtt
    `.to` topic to `"<stream name>-output"`.
    """

    connector: str
    params: dict[str, object]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A checked stream.

    `ops` are the operations in order without `.context(...)` and `.to(...)` (which are
    `context` and `sinks`); an `Emit` there has its
    `context:` item removed (it is `emit_target`). `window`/`partition_key` repeat what the
    `Window`/`PartitionBy` operations in `ops` say, resolved.
    """

    index: int  # declaration position among streams, 0-based
    name: str
    source: str
    source_is_stream: bool
    context: str  # DEFAULT_CONTEXT when the stream has no .context(...)
    ops: tuple[ast.Operation, ...]
    emit_target: str | None
    window: WindowSpec | None
    partition_key: str | None
    has_aggregate: bool
    decl: ast.StreamDecl
    subscription: Endpoint | None = None  # `.from(...)`: the stream's source is then an event type
    sinks: tuple[Endpoint, ...] = ()  # `.to(...)`, in written order


@dataclass(frozen=True, slots=True)
class CheckedProgram:
    program: ast.Program
    constants: dict[str, Value]
    contexts: tuple[ContextInfo, ...]  # declared contexts, in declaration order
    streams: tuple[StreamInfo, ...]  # in declaration order
    warnings: tuple[Diagnostic, ...]  # sorted; a program with errors never gets here
    connectors: tuple[ConnectorInfo, ...] = ()  # in declaration order

    @property
    def path(self) -> str:
        return self.program.path

    def stream(self, name: str) -> StreamInfo:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(name)

    def connector(self, name: str) -> ConnectorInfo:
        for c in self.connectors:
            if c.name == name:
                return c
        raise KeyError(name)
