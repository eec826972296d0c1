"""What each command does: check, simulate, run and plan, returning an exit status.

The command line (`cli`) only parses arguments; everything a user sees besides usage errors is
decided here: which diagnostics print and where, which driver runs the program (one process, or
one worker process per context), which sink writes the output.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from varpulis_mp.engine.output import Output, Summary
from varpulis_mp.errors import (
    Diagnostic,
    DiagnosticError,
    EventFileError,
    ProgramError,
    RuntimeFailure,
    SourcePos,
    count_line,
)
from varpulis_mp.io import readers
from varpulis_mp.io.sinks import RUN_TITLES, HumanSink, HumanView, JsonlSink, format_summary
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.lang.frontend import load_program
from varpulis_mp.runtime import heap, replay

Action = Callable[[], int]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def _print_diagnostics(diagnostics: list[Diagnostic], *, with_count: bool = True) -> None:
    if not diagnostics:
        return
    ordered = sorted(diagnostics, key=Diagnostic.sort_key)
    text = "\n".join(d.render() for d in ordered)
    if with_count:
        text += "\n" + count_line(ordered)
    print(text, file=sys.stderr)


def _read_program(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            # One byte past the limit is enough to report the size diagnostic.
            return handle.read(262_144 + 4096)
    except OSError as exc:
        print(f"{path}: error: cannot read the program: {exc.strerror or exc}", file=sys.stderr)
        return None


def _load(path: str) -> tuple[CheckedProgram | None, list[Diagnostic]]:
    data = _read_program(path)
    if data is None:
        return None, []
    try:
        checked = load_program(data, path)
    except ProgramError as exc:
        return None, list(exc.diagnostics)
    return checked, list(checked.warnings)


def _open_events(path: str) -> BinaryIO | None:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        print(f"{path}: error: cannot read the event file: {exc.strerror or exc}", file=sys.stderr)
        return None


def _display_path(path: str) -> str:
    return "<stdin>" if path == "-" else path


# ---------------------------------------------------------------- check


def check(program_path: str, events_path: str | None) -> int:
    checked, diagnostics = _load(program_path)
    if checked is None:
        if diagnostics:
            _print_diagnostics(diagnostics)
        return EXIT_BAD_INPUT
    if events_path is not None:
        handle = _open_events(events_path)
        if handle is None:
            _print_diagnostics(diagnostics)
            return EXIT_BAD_INPUT
        try:
            readers.check_events(handle, _display_path(events_path), [s.name for s in checked.streams])
        except EventFileError as exc:
            _print_diagnostics(diagnostics + list(exc.diagnostics))
            return EXIT_BAD_INPUT
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()
    _print_diagnostics(diagnostics)
    n_streams = len(checked.streams)
    n_contexts = len(checked.contexts)
    print(f"{program_path}: OK ({n_streams} streams, {n_contexts} contexts)")
    return EXIT_OK


# ---------------------------------------------------------------- simulate


@dataclass(frozen=True)
class SimulateOptions:
    program: str
    events: str
    immediate: bool = False
    speed: float = 1.0
    inline: bool = False
    verbose: bool = False
    output: str = "human"
    channel_capacity: int = 1000


def core_warnings(checked: CheckedProgram) -> tuple[list[Diagnostic], set[str]]:
    """One warning per context whose cores are not all available here (VPL.md §3.1)."""
    found: list[Diagnostic] = []
    unpinned: set[str] = set()
    if all(ctx.cores is None for ctx in checked.contexts):
        return found, unpinned
    from varpulis_mp.runtime import affinity  # psutil: only where cores matter
    available = affinity.available_cores()
    for ctx in checked.contexts:
        if ctx.cores is None:
            continue
        missing = affinity.unavailable_core(ctx.cores)
        if missing is None:
            continue
        pos = ctx.core_pos[ctx.cores.index(missing)]
        found.append(_core_diagnostic(checked, pos, missing, available, "warning"))
        unpinned.add(ctx.name)
    return found, unpinned


def _core_diagnostic(
    checked: CheckedProgram, pos: SourcePos, core: int, available: list[int], severity: Any
) -> Diagnostic:
    from varpulis_mp.runtime import affinity

    return Diagnostic(
        path=checked.path,
        pos=pos,
        severity=severity,
        message=f"core {core} is not available here (available: {affinity.describe_cores(available)})",
        source_line=checked.program.line(pos.line),
        width=len(str(core)),
    )


def _uses_processes(checked: CheckedProgram, inline: bool) -> bool:
    return bool(checked.contexts) and not inline


def simulate(options: SimulateOptions) -> int:
    checked, diagnostics = _load(options.program)
    if checked is None:
        _print_diagnostics(diagnostics)
        return EXIT_BAD_INPUT
    processes = _uses_processes(checked, options.inline)
    unpinned: set[str] = set()
    if processes:
        warnings, unpinned = core_warnings(checked)
        diagnostics += warnings
    _print_diagnostics(diagnostics)
    handle = _open_events(options.events)
    if handle is None:
        return EXIT_BAD_INPUT
    try:
        return _simulate(checked, options, handle, processes, unpinned)
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def _simulate(
    checked: CheckedProgram, options: SimulateOptions, handle: BinaryIO, processes: bool, unpinned: set[str]
) -> int:
    from varpulis_mp.engine.plan import build_plan

    plan = build_plan(checked)
    display = _display_path(options.events)
    out = sys.stdout
    human: HumanSink | None = None
    jsonl: JsonlSink | None = None
    if options.output == "jsonl":
        jsonl = JsonlSink(out)
    else:
        human = HumanSink(out, _human_view(checked), verbose=options.verbose, immediate=options.immediate)
        human.header(len(checked.streams), len(checked.contexts))

    routes = {t: frozenset(cs) for t, cs in plan.type_routes.items()}
    # Inline, the events are paced as they are processed; with worker processes the input is
    # paced as it is read, so that the loop merging their records never waits (see PacedSource).
    pacer = None if options.immediate or processes else replay.Pacer(options.speed)
    realtime = not options.immediate
    n_events = 0
    released = 0  # origins handed over so far
    # In real time with worker processes an event can be read before the records of the one
    # before it are back: its line waits for them, so each event's lines follow its own line.
    held: deque[tuple[int, int, str]] = deque()

    progress = replay.Progress.for_file(handle, sys.stderr)

    def show_input(n: int, ts: int, type_name: str) -> None:
        assert human is not None
        human.input_event(n, ts, type_name, routes.get(type_name, frozenset()))

    def on_input(n: int, ts: int, type_name: str) -> None:
        nonlocal n_events
        n_events = n
        progress.tick()
        if pacer is not None:
            pacer.wait_for(ts)
        if human is not None and options.verbose:
            if realtime and (held or released < n - 1):
                held.append((n, ts, type_name))
            else:
                show_input(n, ts, type_name)

    def on_origin(outputs: list[Output]) -> None:
        nonlocal released
        released += 1
        if jsonl is not None:
            jsonl.write_outputs(outputs)
            if realtime and outputs:
                jsonl.flush()  # replay shows each record at its moment
        elif human is not None:
            human.write_outputs(outputs, flush=bool(outputs) and outputs[0].origin > n_events)
            while held and held[0][0] <= released + 1:
                show_input(*held.popleft())

    heap.settle()
    try:
        if processes:
            from varpulis_mp.runtime.supervisor import run_processes

            source: IO[bytes] | replay.PacedSource = handle
            if not options.immediate:
                source = replay.PacedSource(handle, options.speed)
            if jsonl is not None and options.immediate and not progress.active:
                # Nothing to show per input event: the workers write the records, the supervisor
                # only puts them in order.
                summary = run_processes(checked, source, display, jsonl.write_outputs,  # type: ignore[arg-type]
                                        channel_capacity=options.channel_capacity, pin=True,
                                        unpinned=unpinned, skip_empty=True, on_lines=jsonl.write_lines)
            elif human is not None and options.immediate and not options.verbose and not progress.active:
                # Nothing to show per input event either: whole blocks to the workers, and the
                # human lines of each origin that has some.
                sink = human

                def show(outputs: list[Output], flush: bool) -> None:
                    sink.write_outputs(outputs, flush=flush)

                summary = run_processes(checked, source, display, show_nothing,  # type: ignore[arg-type]
                                        channel_capacity=options.channel_capacity, pin=True,
                                        unpinned=unpinned, on_outputs=show)
            else:
                summary = run_processes(
                    checked,
                    source,  # type: ignore[arg-type]
                    display,
                    on_origin,
                    channel_capacity=options.channel_capacity,
                    pin=True,
                    unpinned=unpinned,
                    on_input_event=on_input,
                )
        else:
            from varpulis_mp.runtime.local import run_local

            events = readers.read_events(handle, display, [s.name for s in checked.streams])
            if jsonl is not None and options.immediate and not progress.active:
                # Nothing to show per input event: hand over only the events that made records.
                summary = run_local(checked, events, jsonl.write_outputs, skip_empty=True)
            else:
                summary = run_local(checked, _announced(events, on_input), on_origin)
    except EventFileError as exc:
        progress.done()
        _close_sinks(human, jsonl)
        _print_diagnostics(list(exc.diagnostics), with_count=False)
        return EXIT_BAD_INPUT
    except DiagnosticError as exc:
        progress.done()
        _close_sinks(human, jsonl)
        _print_diagnostics(list(exc.diagnostics))
        return EXIT_BAD_INPUT
    except RuntimeFailure as exc:
        # Not an internal error: the run itself failed (a worker died, say).
        progress.done()
        _close_sinks(human, jsonl)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    progress.done()
    if human is not None:
        human.summary(summary, out)
        human.close()
    else:
        assert jsonl is not None
        jsonl.close()
        sys.stderr.write(format_summary(summary))
    out.flush()
    return EXIT_OK


def show_nothing(outputs: list[Output]) -> None:
    """The per-origin callback where another one shows the outputs."""


def _close_sinks(human: HumanSink | None, jsonl: JsonlSink | None) -> None:
    if human is not None:
        human.close()
    if jsonl is not None:
        jsonl.close()
    sys.stdout.flush()


def _announced(events: Iterator[readers.Event], on_input: Callable[[int, int, str], None]) -> Iterator[readers.Event]:
    for n, event in enumerate(events, 1):
        on_input(n, event.ts, event.type)
        yield event


def _human_view(checked: CheckedProgram) -> HumanView:
    from varpulis_mp.lang import ast

    ends_with_aggregate = set()
    for s in checked.streams:
        ops = [op for op in s.ops]
        if ops and isinstance(ops[-1], ast.Aggregate):
            ends_with_aggregate.add(s.name)
    return HumanView(
        emit_target={s.name: s.emit_target for s in checked.streams},
        ends_with_aggregate=ends_with_aggregate,
    )


# ---------------------------------------------------------------- run


@dataclass(frozen=True)
class RunOptions:
    program: str
    output: str = "jsonl"
    inline: bool = False
    channel_capacity: int = 1000


def run(options: RunOptions) -> int:
    from varpulis_mp.runtime import live

    checked, diagnostics = _load(options.program)
    if checked is None:
        _print_diagnostics(diagnostics)
        return EXIT_BAD_INPUT
    errors: list[Diagnostic] = []
    if any(ctx.cores is not None for ctx in checked.contexts):
        from varpulis_mp.runtime import affinity

        available = affinity.available_cores()
        for ctx in checked.contexts:
            if ctx.cores is None:
                continue
            missing = affinity.unavailable_core(ctx.cores)
            if missing is not None:
                pos = ctx.core_pos[ctx.cores.index(missing)]
                errors.append(_core_diagnostic(checked, pos, missing, available, "error"))
    _print_diagnostics(diagnostics + errors)
    if errors:
        return EXIT_BAD_INPUT
    out = sys.stdout
    human: HumanSink | None = None
    jsonl: JsonlSink | None = None
    if options.output == "human":
        human = HumanSink(out, _human_view(checked), verbose=False, immediate=False, titles=RUN_TITLES)
        human.header(len(checked.streams), len(checked.contexts))
    else:
        jsonl = JsonlSink(out)

    def on_origin(outputs: list[Output], flush: bool) -> None:
        if human is not None:
            human.write_outputs(outputs, flush=flush and bool(outputs))
        elif jsonl is not None and outputs:
            jsonl.write_outputs(outputs)
            jsonl.flush()  # each record as soon as its event was processed

    heap.settle()
    try:
        summary: Summary
        if _uses_processes(checked, options.inline):
            from varpulis_mp.runtime.supervisor import LiveInput, run_processes

            live_input = LiveInput(sys.stdin.buffer.fileno(), on_origin)
            try:
                summary = run_processes(checked, sys.stdin.buffer, live.DISPLAY_PATH, lambda outputs: None,
                                        channel_capacity=options.channel_capacity, pin=True, live=live_input)
            finally:
                live.print_rejected(live_input.rejected)
        else:
            summary = live.run_live(checked, sys.stdin.buffer, on_origin)
    except RuntimeFailure as exc:
        _close_sinks(human, jsonl)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BaseException:
        _close_sinks(human, jsonl)
        raise
    if human is not None:
        human.summary(summary, out)
        human.close()
    else:
        _close_sinks(human, jsonl)
        sys.stderr.write(format_summary(summary, RUN_TITLES.complete))
    return EXIT_OK


# ---------------------------------------------------------------- plan


def plan(program_path: str, fmt: str) -> int:
    from varpulis_mp.engine.plan import build_plan
    from varpulis_mp.io import planview

    checked, diagnostics = _load(program_path)
    if checked is None:
        _print_diagnostics(diagnostics)
        return EXIT_BAD_INPUT
    _print_diagnostics(diagnostics)
    from varpulis_mp.runtime import affinity

    built = build_plan(checked)
    available = affinity.available_cores()
    if fmt == "json":
        text = planview.render_json(checked, built, available)
    elif fmt == "dot":
        text = planview.render_dot(checked, built)
    else:
        text = planview.render_text(checked, built, available)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK
