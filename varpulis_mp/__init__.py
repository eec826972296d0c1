"""varpulis-mp: run VPL stream-processing programs from Python (docs/cli.md, "From Python").

`check(source)` checks a program; `simulate(program, events)` checks and runs it over a finite
input as `simulate --immediate` does and returns its output records in canonical order, per-stream
views and the summary counters. A rejected program or event file raises `ProgramError` or
`EventFileError`, carrying its `Diagnostic`s. The language is described in docs/language.md, the
output and its counters in docs/output.md. The heavy modules are imported inside the functions so
that importing the package stays cheap and free of import cycles.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from varpulis_mp.errors import Diagnostic, EventFileError, ProgramError, RuntimeFailure

if TYPE_CHECKING:
    from varpulis_mp.engine.output import Output, Summary
    from varpulis_mp.lang.checked import CheckedProgram
    from varpulis_mp.runtime.embedded import Runtime

__all__ = [
    "Diagnostic",
    "EventFileError",
    "ProgramError",
    "Record",
    "Runtime",
    "RuntimeFailure",
    "SimulationResult",
    "check",
    "simulate",
]

_SIMULATE_OPTIONS = frozenset({"channel_capacity", "immediate", "speed", "verbose", "output", "debug"})


class Record(NamedTuple):
    """One output record: the stream that produced it, its event time (ms) and its fields."""

    stream: str
    ts: int
    fields: dict[str, Any]


@dataclass(slots=True)
class SimulationResult:
    """What `simulate` returns.

    `records`: every output record in canonical order (docs/language.md, "Canonical order").
    `streams`: per declared stream (declaration order), its records in its own order. `summary`:
    the counters of the summary block (docs/output.md, "The summary") by snake_case name, zeros
    included. `warnings`: the program's warnings.
    """

    records: list[Record]
    streams: dict[str, list[Record]]
    summary: dict[str, int]
    warnings: list[Diagnostic] = field(default_factory=list)

    def by_stream(self, name: str) -> list[Record]:
        """The records of stream `name`, in that stream's own order (KeyError if not declared)."""
        return self.streams[name]


def __getattr__(name: str) -> Any:
    # The live runtime is imported on first use: `import varpulis_mp` stays cheap.
    if name == "Runtime":
        from varpulis_mp.runtime.embedded import Runtime

        return Runtime
    raise AttributeError(f"module 'varpulis_mp' has no attribute '{name}'")


def check(source: str | os.PathLike[str]) -> CheckedProgram:
    """Check a program: a `str` is VPL source text, an `os.PathLike` the path of a `.vpl` file.

    Returns the checked program (its `.warnings` holds the warnings); raises `ProgramError`,
    carrying every diagnostic, when the program has an error.
    """
    from varpulis_mp.lang.frontend import load_program

    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        with open(path, "rb") as fh:
            data = fh.read()
        return load_program(data, path)
    if isinstance(source, str):
        return load_program(source, "<program>")
    raise TypeError("program must be VPL source text (str) or a path (os.PathLike), "
                    f"not {type(source).__name__}")


def simulate(program: str | os.PathLike[str] | CheckedProgram, events: Any, inline: bool = True,
             **options: Any) -> SimulationResult:
    """Check `program` and run it over `events` (docs/cli.md, "From Python"); returns once input is
    flushed.

    `events`: an `os.PathLike` (a `.evt` file) or an iterable of `(type, ts_ms, fields)` tuples.
    With `inline=True` (the default) every context runs in this process, as `--inline` does;
    `inline=False` runs one worker process per context (never pinned to cores) when the program
    declares contexts and `events` is a file, and in this process otherwise. Options mirror
    `simulate`'s (`channel_capacity`, ...); none of them changes the records.
    """
    from varpulis_mp.lang.checked import CheckedProgram
    from varpulis_mp.runtime.local import run_local

    unknown = set(options) - _SIMULATE_OPTIONS
    if unknown:
        raise TypeError(f"simulate() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    checked = program if isinstance(program, CheckedProgram) else check(program)
    stream_names = [s.name for s in checked.streams]
    source: Iterable[Any]
    if isinstance(events, (str, bytes)):
        raise TypeError("events must be an os.PathLike (a .evt file) or an iterable of "
                        "(type, ts_ms, fields) tuples, not a plain str or bytes")
    if isinstance(events, os.PathLike):
        source = _read_file(os.fspath(events), stream_names)
    else:
        try:
            it = iter(events)
        except TypeError:
            raise TypeError("events must be an os.PathLike or an iterable, "
                            f"not {type(events).__name__}") from None
        from varpulis_mp.io.event_tuples import validated_events

        source = validated_events(it, frozenset(stream_names))
    outputs: list[Output] = []
    if not inline and checked.contexts and isinstance(events, os.PathLike):
        from varpulis_mp.runtime.handover import EveryOrigin
        from varpulis_mp.runtime.supervisor import FileInput, ProcessOptions, run_processes

        summary = run_processes(checked, FileInput(os.fspath(events), os.fspath(events)), EveryOrigin(outputs.extend),
                                ProcessOptions(int(options.get("channel_capacity", 1000)), pin=False))
    else:
        from varpulis_mp.runtime.handover import OriginsWithOutputs

        summary = run_local(checked, source, OriginsWithOutputs(outputs.extend))
    return _result(checked, outputs, summary)


def _read_file(path: str, stream_names: list[str]) -> Iterator[Any]:
    from varpulis_mp.io.readers import read_events

    with open(path, "rb") as fh:
        yield from read_events(fh, path, stream_names)


def _result(checked: CheckedProgram, outputs: list[Output], summary: Summary) -> SimulationResult:
    streams: dict[str, list[Record]] = {s.name: [] for s in checked.streams}
    records: list[Record] = []
    for o in outputs:
        if o.kind == "record":
            r = Record(o.stream, o.ts, o.fields)
            records.append(r)
            streams[o.stream].append(r)
    return SimulationResult(records, streams, summary.counts(), list(checked.warnings))
