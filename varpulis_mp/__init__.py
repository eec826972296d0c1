"""varpulis-mp: run VPL stream-processing programs from Python (VPL.md §16).

`check(source)` checks a program; `simulate(program, events)` checks and runs it over a finite
input as `simulate --immediate` does and returns its output records in canonical order, per-stream
views and the summary counters. A rejected program or event file raises `ProgramError` or
`EventFileError`, carrying its `Diagnostic`s. The heavy modules are imported inside the functions so that
importing the package stays cheap and free of import cycles.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from varpulis_mp.errors import Diagnostic, EventFileError, ProgramError

if TYPE_CHECKING:
    from varpulis_mp.engine.output import Output, Summary
    from varpulis_mp.lang.checked import CheckedProgram

__all__ = [
    "Diagnostic",
    "EventFileError",
    "ProgramError",
    "Record",
    "SimulationResult",
    "check",
    "simulate",
]

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_SIMULATE_OPTIONS = frozenset({"channel_capacity", "immediate", "speed", "verbose", "output", "debug"})


class Record(NamedTuple):
    """One output record: the stream that produced it, its event time (ms) and its fields."""

    stream: str
    ts: int
    fields: dict[str, Any]


@dataclass(slots=True)
class SimulationResult:
    """What `simulate` returns.

    `records`: every output record in canonical order (VPL.md §10.3). `streams`: per declared
    stream (declaration order), its records in its own order. `summary`: the counters of
    OUTPUT.md §2.4 by snake_case name, zeros included. `warnings`: the program's warnings.
    """

    records: list[Record]
    streams: dict[str, list[Record]]
    summary: dict[str, int]
    warnings: list[Diagnostic] = field(default_factory=list)

    def by_stream(self, name: str) -> list[Record]:
        """The records of stream `name`, in that stream's own order (KeyError if not declared)."""
        return self.streams[name]


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
    """Check `program` and run it over `events` (VPL.md §16); returns once input is flushed.

    `events`: an `os.PathLike` (a `.evt` file) or an iterable of `(type, ts_ms, fields)` tuples.
    With `inline=True` (the default) every context runs in this process, as `--inline` does;
    `inline=False` runs one worker process per context (never pinned to cores) when the program
    declares contexts and `events` is a file, and in this process otherwise. Options mirror
    `simulate`'s (`channel_capacity`, ...); none of them changes the records (§10.3).
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
        source = _validated(it, frozenset(stream_names))
    outputs: list[Output] = []
    if not inline and checked.contexts and isinstance(events, os.PathLike):
        from varpulis_mp.runtime.supervisor import run_processes

        summary = run_processes(checked, os.fspath(events), os.fspath(events), outputs.extend,
                                channel_capacity=int(options.get("channel_capacity", 1000)), pin=False)
    else:
        summary = run_local(checked, source, outputs.extend, skip_empty=True)
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
    c = summary.counters
    counts = {
        "events_processed": summary.events_processed,
        "unread_events": summary.unread_events,
        "rejected_events": summary.rejected_events,
        "contexts_used": summary.contexts_used,
        "cross_context_events": summary.cross_context_events,
        "sessions_closed": c.sessions_closed,
        "late_events": c.late_events,
        "expression_errors": c.expression_errors,
    }
    return SimulationResult(records, streams, counts, list(checked.warnings))


def _validated(events: Iterator[Any],
               stream_names: frozenset[str]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Check each event tuple as it is consumed (the run is a stream), naming its 1-based position.

    The common shapes (a tuple, a str type seen before, a dict of str/float/int values) take a
    short path: this check runs once per event and must not cost more than the engine does.
    """
    good_types: set[str] = set()
    for n, ev in enumerate(events, 1):
        if type(ev) is not tuple and not (isinstance(ev, (tuple, list)) and len(ev) == 3):
            raise TypeError(f"event {n}: expected a (type, ts_ms, fields) tuple, got {_describe(ev)}")
        if len(ev) != 3:
            raise TypeError(f"event {n}: expected a (type, ts_ms, fields) tuple, got {_describe(ev)}")
        type_name, ts, fields = ev
        if type_name not in good_types:
            if not isinstance(type_name, str):
                raise TypeError(f"event {n}: the event type must be a str, not {type(type_name).__name__}")
            if type_name in stream_names:
                raise ValueError(f"event {n}: event type '{type_name}' is a stream of the program")
            good_types.add(type_name)
        if type(ts) is not int:
            raise TypeError(f"event {n}: ts_ms must be an int, not {type(ts).__name__}")
        if ts < 0 or ts > _I64_MAX:
            raise ValueError(f"event {n}: ts_ms must be a non-negative 64-bit int, got {ts}")
        if type(fields) is not dict and not isinstance(fields, Mapping):
            raise TypeError(f"event {n}: fields must be a mapping, not {type(fields).__name__}")
        # A copy, so that a caller reusing one dict for every event cannot change earlier records.
        out = dict(fields)
        for name, value in out.items():
            t = type(value)
            if t is str or t is bool or value is None:
                pass
            elif t is float:
                if value - value != 0.0:  # inf - inf and nan - nan are nan
                    raise ValueError(f"event {n}: field '{name}': {value} is not a finite float")
            else:
                _check_value(n, name, value)
            if type(name) is not str:
                raise TypeError(f"event {n}: field names must be str, not {type(name).__name__}")
        yield (type_name, ts, out)


def _check_value(n: int, name: str, value: Any) -> None:
    t = type(value)
    if value is None or t is bool or t is str:
        return
    if t is int:
        if not _I64_MIN <= value <= _I64_MAX:
            raise ValueError(f"event {n}: field '{name}': int {value} is beyond 64 bits")
        return
    if t is float:
        if not math.isfinite(value):
            raise ValueError(f"event {n}: field '{name}': {value} is not a finite float")
        return
    if t is list:
        for item in value:
            _check_value(n, name, item)
        return
    raise TypeError(f"event {n}: field '{name}': unsupported value type {t.__name__}")


def _describe(ev: Any) -> str:
    if isinstance(ev, (tuple, list)):
        return f"a {type(ev).__name__} of {len(ev)} item(s)"
    return type(ev).__name__
