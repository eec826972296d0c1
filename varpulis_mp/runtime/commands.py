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
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

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
from varpulis_mp.io.dead_letters import DeadLetters
from varpulis_mp.io.line_source import LineSource
from varpulis_mp.io.ports import Sink, SinkPartition
from varpulis_mp.io.sinks import RUN_TITLES, HumanSink, HumanView, JsonlSink, format_summary
from varpulis_mp.lang.checked import CheckedProgram
from varpulis_mp.lang.frontend import load_program
from varpulis_mp.runtime import heap, replay
from varpulis_mp.runtime.interrupt import HardStop, StopSignals, finishing
from varpulis_mp.runtime.live_feed import FeedSource, LiveFeed
from varpulis_mp.runtime.outputs import Discard, Prompt, RecordRouter
from varpulis_mp.runtime.progress import ProgressBar
from varpulis_mp.runtime.rejections import RejectionLog
from varpulis_mp.runtime.run_hooks import NoMetrics, RunHooks

if TYPE_CHECKING:
    from varpulis_mp.engine.plan import Plan

if TYPE_CHECKING:
    from varpulis_mp.runtime.notify import Notifier
    from varpulis_mp.runtime.restart_policy import RestartPolicy

Action = Callable[[], int]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_WORKER_START = 3  # a worker failed before it was ready (RUN.md §2)


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
    # One process: a signal ends the input (the multiprocess driver handles signals itself).
    stop = StopSignals()
    pacer = None if options.immediate or processes else replay.Pacer(options.speed, stop.is_set)
    realtime = not options.immediate
    n_events = 0
    released = 0  # origins handed over so far
    # In real time with worker processes an event can be read before the records of the one
    # before it are back: its line waits for them, so each event's lines follow its own line.
    held: deque[tuple[int, int, str]] = deque()

    # Drawn from the bytes read, by a thread of its own: it changes neither the path nor the pace.
    bar = ProgressBar.for_file(handle, sys.stderr)

    def show_input(n: int, ts: int, type_name: str) -> None:
        assert human is not None
        human.input_event(n, ts, type_name, routes.get(type_name, frozenset()))

    def on_input(n: int, ts: int, type_name: str) -> None:
        nonlocal n_events
        if pacer is not None:
            pacer.wait_for(ts)
            if stop.is_set():
                return  # stopped while waiting for its moment: not read (see _announced)
        n_events = n
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
    if bar is not None:
        bar.start()
    try:
        if processes:
            from varpulis_mp.runtime.handover import Announced, Batches, Delivery
            from varpulis_mp.runtime.supervisor import FileInput, ProcessOptions, run_processes

            source: IO[bytes] | replay.PacedSource = handle
            if not options.immediate:
                source = replay.PacedSource(handle, options.speed)
            delivery: Delivery
            if jsonl is not None and options.immediate:
                # Nothing to show per input event: the workers write the records, the supervisor
                # only puts them in order.
                delivery = jsonl
            elif human is not None and options.immediate and not options.verbose:
                # Nothing to show per input event either: whole blocks to the workers, and the
                # human lines of each origin that has some.
                delivery = Batches(human.write_outputs)
            else:
                delivery = Announced(on_input, lambda outputs, flush: on_origin(outputs))
            # A paced source reads like a binary file.
            summary = run_processes(checked, FileInput(cast(IO[bytes], source), display), delivery,
                                    ProcessOptions(options.channel_capacity, True, frozenset(unpinned)))
        else:
            from varpulis_mp.runtime.handover import EveryOrigin
            from varpulis_mp.runtime.local import run_local

            with stop:
                events = readers.read_events(handle, display, [s.name for s in checked.streams],
                                             stop=stop.is_set)
                if jsonl is not None and options.immediate:
                    # Nothing to show per input event: hand over only the events that made records.
                    summary = run_local(checked, events, jsonl)
                else:
                    summary = run_local(checked, _announced(events, on_input, stop.is_set), EveryOrigin(on_origin))
            summary.interrupted_by = stop.signal
    except EventFileError as exc:
        _stop_bar(bar)
        _close_sinks(human, jsonl)
        _print_diagnostics(list(exc.diagnostics), with_count=False)
        return EXIT_BAD_INPUT
    except DiagnosticError as exc:
        _stop_bar(bar)
        _close_sinks(human, jsonl)
        _print_diagnostics(list(exc.diagnostics))
        return EXIT_BAD_INPUT
    except RuntimeFailure as exc:
        # Not an internal error: the run itself failed (a worker died, say).
        _stop_bar(bar)
        _close_sinks(human, jsonl)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    _stop_bar(bar)
    # A signal is not the end of the file: say so (VPL.md §12 as amended: exit 128 + the signal).
    title = None if summary.interrupted_by is None else f"Interrupted after {summary.events_processed} events"
    if human is not None:
        human.summary(summary, out, title)
        human.close()
    else:
        assert jsonl is not None
        jsonl.close()
        sys.stderr.write(format_summary(summary, title) if title else format_summary(summary))
    out.flush()
    return exit_status(summary)


def exit_status(summary: Summary) -> int:
    """0 for a run that read its whole input; 128 + the signal's number for one a signal cut short."""
    return EXIT_OK if summary.interrupted_by is None else 128 + summary.interrupted_by


def _stop_bar(bar: ProgressBar | None) -> None:
    if bar is not None:
        bar.done()


def _close_sinks(human: HumanSink | None, jsonl: JsonlSink | None) -> None:
    if human is not None:
        human.close()
    if jsonl is not None:
        jsonl.close()
    sys.stdout.flush()


def _announced(events: Iterator[readers.Event], on_input: Callable[[int, int, str], None],
               stop: Callable[[], bool]) -> Iterator[readers.Event]:
    """Each event, announced as it is taken; paced replay waits here, so a stop is looked at here too."""
    for n, event in enumerate(events, 1):
        if stop():
            return
        on_input(n, event.ts, event.type)
        if stop():
            return  # the signal came while it waited for its moment
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
    input: str | None = None  # an .evt path, "-" for standard input, None: standard input if read
    output: str = "jsonl"  # jsonl, human or none
    inline: bool = False
    channel_capacity: int = 1000
    drain_timeout_s: float = 30.0
    dead_letter: str | None = None  # the dead-letter JSON Lines file; None: dead letters counted only
    circuit_reset_s: float = 30.0  # how long a sink's open circuit waits before its trial
    metrics_host: str | None = None  # serve the metrics (RUN.md §4) on this address; None: no server
    metrics_port: int = 9090
    log_format: str = "text"  # text or json (runtime/logs.py)
    # Supervision of worker processes (RUN.md §6)
    restart: str = "on-failure"  # on-failure, always or never
    max_restarts: int = 5
    restart_window_s: float = 60.0
    worker_timeout_s: float = 10.0

    def restart_policy(self) -> RestartPolicy:
        from varpulis_mp.runtime.restart_policy import RestartMode, RestartPolicy

        return RestartPolicy(RestartMode(self.restart), self.max_restarts, self.restart_window_s)


def run(options: RunOptions) -> int:
    from varpulis_mp.runtime.notify import Notifier

    notifier = Notifier.from_environment()  # before any worker is forked: none inherits the socket
    checked, diagnostics = _load(options.program)
    if checked is None:
        _print_diagnostics(diagnostics)
        return EXIT_BAD_INPUT
    errors = _unavailable_cores(checked)
    _print_diagnostics(diagnostics + errors)
    if errors:
        return EXIT_BAD_INPUT
    from varpulis_mp.engine.plan import build_plan
    from varpulis_mp.runtime import logs

    logs.configure(options.log_format)
    plan = build_plan(checked)
    metrics = _start_metrics(options, checked, plan)
    if metrics is None:
        return EXIT_BAD_INPUT
    try:
        return _run_planned(checked, plan, options, metrics, notifier)
    finally:
        metrics.close()


def _start_metrics(options: RunOptions, checked: CheckedProgram, plan: Plan) -> RunHooks | None:
    """The metrics server listening before anything else starts, or None once said why it cannot."""
    if options.metrics_host is None:
        return NoMetrics()
    from varpulis_mp.runtime.metrics_server import MetricsServerError
    from varpulis_mp.runtime.run_metrics import RunMetrics

    try:
        return RunMetrics(checked, plan, options.metrics_host, options.metrics_port,
                          one_process=not _uses_processes(checked, options.inline))
    except MetricsServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _run_planned(checked: CheckedProgram, plan: Plan, options: RunOptions, metrics: RunHooks,
                 notifier: Notifier) -> int:
    try:
        dead_letters = DeadLetters(options.dead_letter)
    except OSError as exc:
        print(f"{options.dead_letter}: error: cannot open the dead-letter file: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    log = RejectionLog(dead_letters=dead_letters if dead_letters.has_file else None)
    try:
        sources = _live_sources(options, bool(plan.default_input_types))
    except OSError as exc:
        dead_letters.close()
        print(f"{options.input}: error: cannot read the input: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from varpulis_mp.runtime.connections import ConfigurationError, ConnectorOptions, open_connectors

    try:
        subscriptions, sinks = open_connectors(plan, ConnectorOptions(dead_letters, options.circuit_reset_s))
    except ConfigurationError as exc:
        dead_letters.close()
        print(f"{options.program}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    processes = _uses_processes(checked, options.inline)
    if not processes:  # else each runs in the worker of its stream, relayed to the feed
        sources += [source for by_context in subscriptions.values() for source in by_context]
    feed = metrics.feed(sources, [s.name for s in checked.streams], log)
    metrics.watch(log, dead_letters, subscriptions)
    out = sys.stdout
    human: HumanSink | None = None
    stdout: SinkPartition
    if options.output == "human":
        human = HumanSink(out, _human_view(checked), verbose=False, immediate=False, titles=RUN_TITLES)
        human.header(len(checked.streams), len(checked.contexts))
        stdout = human
    elif options.output == "none":
        stdout = Discard()
    else:
        stdout = Prompt(JsonlSink(out))
    # With worker processes each stream's sinks run in its context's worker; else here.
    records = RecordRouter(stdout, {} if processes else sinks)

    heap.settle()
    from varpulis_mp.runtime.supervision import RunStopped, WorkerStartFailure

    try:
        summary = _run_live(checked, options, feed, records, sinks, subscriptions, notifier, metrics)
        records.close()
    except HardStop as exc:
        _abandon_stdout()  # a reader that stopped reading must not hold the exit up
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except WorkerStartFailure as exc:
        _close_quietly(records)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_WORKER_START
    except RunStopped as exc:
        # `--restart never`: the run stops, and says what it did up to then (RUN.md §6).
        _close_quietly(records)
        print(f"error: {exc}", file=sys.stderr)
        if exc.summary is not None:
            exc.summary.dead_letters += dead_letters.total
            sys.stderr.write(format_summary(exc.summary, RUN_TITLES.complete))
        return EXIT_FAILURE
    except RuntimeFailure as exc:
        _close_quietly(records)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BaseException:
        _close_quietly(records)
        raise
    finally:
        finishing()
        log.finish()
        dead_letters.close()  # after the sinks: what they gave up at their close is in it
    summary.dead_letters += dead_letters.total  # the workers' sinks' (in the summary) and this process's
    metrics.finish()
    if human is not None:
        human.summary(summary, out)
        human.close()
    else:
        sys.stdout.flush()
        sys.stderr.write(format_summary(summary, RUN_TITLES.complete))
    return EXIT_OK


def _run_live(checked: CheckedProgram, options: RunOptions, feed: LiveFeed, records: RecordRouter,
              sinks: dict[str, list[Sink]], subscriptions: dict[str, list[FeedSource]],
              notifier: Notifier, metrics: RunHooks) -> Summary:
    if _uses_processes(checked, options.inline):
        from varpulis_mp.runtime import live
        from varpulis_mp.runtime.handover import batches
        from varpulis_mp.runtime.supervisor import LiveInput, ProcessOptions, run_processes

        # The connectors' clients start in the supervisor once the workers are forked.
        return run_processes(checked, LiveInput(feed, live.DISPLAY_PATH,
                                                on_start=metrics.on_start(records.start),
                                                drain_timeout_s=options.drain_timeout_s, sinks=sinks,
                                                subscriptions=subscriptions,
                                                on_lines_released=metrics.lines_released(), notifier=notifier,
                                                restart=options.restart_policy(),
                                                worker_timeout_s=options.worker_timeout_s,
                                                watch=metrics.worker_watch()),
                             batches(metrics.deliver(records.deliver), records.lines_taker()),
                             ProcessOptions(options.channel_capacity))
    from varpulis_mp.runtime.live import run_live

    metrics.on_start(records.start)()
    return run_live(checked, feed, metrics.deliver(records.deliver), notifier, close=records.close,
                    drain_timeout_s=options.drain_timeout_s, show_counters=metrics.engine_counters)


def _live_sources(options: RunOptions, reads_default_input: bool) -> list[FeedSource]:
    """The default input (RUN.md §2): `--input PATH`, `--input -`, or without `--input` standard
    input when the program reads an event type without `.from`, none otherwise."""
    if options.input is None and not reads_default_input:
        return []
    if options.input is None or options.input == "-":
        return [FeedSource("input", "<stdin>", LineSource(sys.stdin.buffer.fileno()))]
    return [FeedSource("input", options.input, LineSource.open(options.input))]


def _abandon_stdout() -> None:
    """After a hard stop: records not yet taken by a pipe or socket on standard output are dropped
    (the write that waited for its reader may never end); a file or terminal still gets them."""
    import os
    import stat

    try:
        if stat.S_ISFIFO(os.fstat(1).st_mode) or stat.S_ISSOCK(os.fstat(1).st_mode):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def _close_quietly(records: RecordRouter) -> None:
    try:
        records.close()
    except Exception:  # noqa: BLE001 - the failure being reported matters more
        pass
    sys.stdout.flush()


def _unavailable_cores(checked: CheckedProgram) -> list[Diagnostic]:
    """`run` pins every context as declared: an unavailable core is an error (VPL.md §3.1)."""
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
    return errors


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
