"""The `varpulis-mp` command line: argument parsing and exit codes, nothing else.

Every command turns expected failures into exit statuses (2 for a bad program, event file or
command line; 1 for a failure while running) and never shows a traceback unless `--debug` is
given. The work itself lives in `runtime.commands`.
"""

from __future__ import annotations

import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand

from varpulis_mp.runtime import commands

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Markdown: a docstring's paragraphs are reflowed to the terminal's width, so a line break in
    # the source never shows as a break in the middle of a sentence.
    rich_markup_mode="markdown",
    help="Run VPL stream-processing programs across many cores: one worker process per context.",
)


class _Command(TyperCommand):
    """A command whose usage line writes a required argument as `PROGRAM`, the common form,
    where typer writes `{PROGRAM}`; an optional one stays `[PROGRAM]`."""

    # Any: the Context is click's, which newer typer releases vendor as a private module.
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


# The name the usage line, the help and the error messages give the program argument.
PROGRAM = "PROGRAM"
# An event file is a path, or `-`; it stays a str so that diagnostics show it as it was given.
EVENTS_METAVAR = "<path>"


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"varpulis-mp {version('varpulis-mp')}")
        except PackageNotFoundError:
            print("varpulis-mp (not installed)")
        raise typer.Exit(0)


@app.callback()
def _main(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Run VPL stream-processing programs across many cores: one worker process per context."""


class OutputFormat(str, Enum):
    human = "human"
    jsonl = "jsonl"


class LogFormat(str, Enum):
    text = "text"
    json = "json"


class RunOutputFormat(str, Enum):
    jsonl = "jsonl"
    human = "human"
    none = "none"


class RestartChoice(str, Enum):
    on_failure = "on-failure"
    always = "always"
    never = "never"


OUTPUT_HELP = "human: lines to read; jsonl: one JSON record per line (the summary on standard error)."
DebugOption = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks of internal errors.")]


def _guarded(debug: bool, action: commands.Action) -> None:
    """Run a command; map what escapes it to an exit status without a traceback."""
    try:
        status = action()
    except KeyboardInterrupt:
        status = 130
    except BrokenPipeError:
        # A closed pipe (`| head`) is the reader's choice, not our failure.
        _silence_stdout()
        status = 0
    except Exception as exc:  # noqa: BLE001 - the one place that turns surprises into exit 1
        if debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        status = 1
    raise typer.Exit(status)


_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def _seconds(text: str) -> float | None:
    """A duration option (`30s`, `500ms`, `2m`, or plain seconds) in seconds; None if malformed."""
    import re

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|)\s*", text)
    return float(m[1]) * _UNITS_S[m[2]] if m else None


def _duration(option: str, text: str, *, positive: bool = True) -> float:
    """A duration option's value in seconds; a usage error (exit 2) if malformed (or not positive)."""
    seconds = _seconds(text)
    if seconds is None or (positive and seconds <= 0):
        kind = "a positive duration" if positive else "a duration"
        print(f"error: {option} must be {kind} such as 30s or 500ms, got {text!r}", file=sys.stderr)
        raise typer.Exit(2)
    return seconds


def _silence_stdout() -> None:
    try:
        sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - stays open until exit
    except OSError:
        pass


@app.command(cls=_Command)
def check(
    program: Annotated[
        Path, typer.Argument(metavar=PROGRAM, help="The .vpl program to check.", show_default=False)
    ],
    events: Annotated[
        Optional[str],  # noqa: UP007 - typer needs Optional at runtime
        typer.Option("-e", "--events", metavar=EVENTS_METAVAR,
                     help="Also validate this event file ('-' for stdin) without running."),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Check a program (and optionally an event file) and report every problem at once."""
    _guarded(debug, lambda: commands.check(str(program), events))


@app.command(cls=_Command)
def simulate(
    program: Annotated[Path, typer.Option("-p", "--program", help="The .vpl program.", show_default=False)],
    events: Annotated[
        str,
        typer.Option("-e", "--events", metavar=EVENTS_METAVAR, help="The event file, or '-' for stdin.",
                     show_default=False),
    ],
    immediate: Annotated[
        bool, typer.Option("--immediate", help="Process events as fast as possible, not in real time.")
    ] = False,
    speed: Annotated[float, typer.Option("--speed", help="Replay speed factor (10 = ten times faster).")] = 1.0,
    inline: Annotated[bool, typer.Option("--inline", help="Run every context in this one process.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Also show every input event (human output).")] = False,
    output: Annotated[OutputFormat, typer.Option("--output", help=OUTPUT_HELP)] = OutputFormat.human,
    channel_capacity: Annotated[
        int, typer.Option("--channel-capacity", min=1, help="Events in flight per channel between worker processes.")
    ] = 1000,
    debug: DebugOption = False,
) -> None:
    """Run a program over an event file and print its output records.

    The events are replayed in real time by their `@ms` offsets (faster with --speed), or as fast as
    possible with --immediate. A program with contexts runs one worker process per context (unless
    --inline).
    """
    if not speed > 0 or speed != speed or speed == float("inf"):
        print(f"error: --speed must be a positive number, got {speed}", file=sys.stderr)
        raise typer.Exit(2)
    options = commands.SimulateOptions(
        program=str(program),
        events=events,
        immediate=immediate,
        speed=speed,
        inline=inline,
        verbose=verbose,
        output=output.value,
        channel_capacity=channel_capacity,
    )
    _guarded(debug, lambda: commands.simulate(options))


@app.command(cls=_Command)
def run(
    program: Annotated[
        Optional[Path],  # noqa: UP007
        typer.Argument(metavar=PROGRAM, help="The .vpl program.", show_default=False),
    ] = None,
    file: Annotated[
        Optional[Path],  # noqa: UP007
        typer.Option("--file", "-f", help="The .vpl program, instead of the argument.", show_default=False),
    ] = None,
    input_path: Annotated[
        Optional[str],  # noqa: UP007
        typer.Option("--input", "-i", metavar="PATH",
                     help="Default input: an .evt file read to its end, or '-' for standard input "
                          "(the default when the program reads an event type).", show_default=False),
    ] = None,
    output: Annotated[
        RunOutputFormat, typer.Option("--output", help=OUTPUT_HELP + " none: no records (under systemd).")
    ] = RunOutputFormat.jsonl,
    inline: Annotated[bool, typer.Option("--inline", help="Run every context in this one process.")] = False,
    channel_capacity: Annotated[
        int, typer.Option("--channel-capacity", min=1, help="Events in flight per channel between worker processes.")
    ] = 1000,
    drain_timeout: Annotated[
        str, typer.Option("--drain-timeout", metavar="DURATION",
                          help="How long the drain after SIGTERM/SIGINT may take (30s, 500ms, 2m); past it "
                               "the run stops hard and exits 1.")
    ] = "30s",
    dead_letter: Annotated[
        Optional[str],  # noqa: UP007
        typer.Option("--dead-letter", metavar="PATH",
                     help="Append what no sink will deliver, and input that cannot be read, to this JSON "
                          "Lines file (without it they are counted and logged).", show_default=False),
    ] = None,
    circuit_reset: Annotated[
        str, typer.Option("--circuit-reset", metavar="DURATION",
                          help="How long a sink's circuit stays open (its records going to the dead letters) "
                               "before one trial (30s, 500ms, 2m).")
    ] = "30s",
    restart: Annotated[
        RestartChoice, typer.Option("--restart", help="Restart a context's worker that died: on-failure (a signal "
                                    "or a non-zero status), always (also a clean exit not asked for), never (the "
                                    "run stops, exit 1).")
    ] = RestartChoice.on_failure,
    max_restarts: Annotated[
        int, typer.Option("--max-restarts", min=0, help="More restarts of one context than this within "
                          "--restart-window: the run drains what still runs and exits 1.")
    ] = 5,
    restart_window: Annotated[
        str, typer.Option("--restart-window", metavar="DURATION", help="The window --max-restarts counts in "
                          "(60s, 2m).")
    ] = "60s",
    worker_timeout: Annotated[
        str, typer.Option("--worker-timeout", metavar="DURATION", help="A worker silent this long (no heartbeat) "
                          "is killed and handled as a crash (10s, 500ms).")
    ] = "10s",
    metrics: Annotated[
        bool, typer.Option("--metrics", help="Serve Prometheus metrics at /metrics and a health check at /healthz.")
    ] = False,
    metrics_host: Annotated[
        Optional[str],  # noqa: UP007
        typer.Option("--metrics-host", metavar="ADDRESS",
                     help="The address the metrics server listens on (with --metrics).  [default: 127.0.0.1]",
                     show_default=False),
    ] = None,
    metrics_port: Annotated[
        Optional[int],  # noqa: UP007
        typer.Option("--metrics-port", metavar="PORT", min=0, max=65535,
                     help="The metrics server's port (with --metrics; 0: a free one, named in the log).  [default: 9090]", show_default=False),
    ] = None,
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="Log lines on standard error: text, or one JSON object per "
                                                     "line (ts, level, logger, msg, event, fields).")
    ] = LogFormat.text,
    debug: DebugOption = False,
) -> None:
    """Run a program on live `.evt` lines from standard input until the input ends or SIGTERM/SIGINT.

    A program with contexts runs one worker process per context (unless --inline); a bad line is
    reported, counted and skipped. Records go to standard output as they are made; the summary
    comes at the end.
    """
    chosen = program or file
    if chosen is None or (program is not None and file is not None):
        print("error: give the program once, as an argument or with --file", file=sys.stderr)
        raise typer.Exit(2)
    drain_s = _duration("--drain-timeout", drain_timeout, positive=False)
    reset_s = _duration("--circuit-reset", circuit_reset)
    window_s = _duration("--restart-window", restart_window)
    timeout_s = _duration("--worker-timeout", worker_timeout)
    if not metrics and (metrics_host is not None or metrics_port is not None):
        given = "--metrics-host" if metrics_host is not None else "--metrics-port"
        print(f"error: {given} needs --metrics", file=sys.stderr)
        raise typer.Exit(2)
    options = commands.RunOptions(program=str(chosen), input=input_path, output=output.value, inline=inline,
                                  channel_capacity=channel_capacity, drain_timeout_s=drain_s,
                                  dead_letter=dead_letter, circuit_reset_s=reset_s, restart=restart.value,
                                  max_restarts=max_restarts, restart_window_s=window_s, worker_timeout_s=timeout_s,
                                  metrics_host=(metrics_host or "127.0.0.1") if metrics else None,
                                  metrics_port=9090 if metrics_port is None else metrics_port,
                                  log_format=log_format.value)
    _guarded(debug, lambda: commands.run(options))


@app.command(cls=_Command)
def plan(
    program: Annotated[Path, typer.Argument(metavar=PROGRAM, help="The .vpl program.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    as_dot: Annotated[bool, typer.Option("--dot", help="Print the plan as a Graphviz DOT graph.")] = False,
    debug: DebugOption = False,
) -> None:
    """Show what runs where: processes, cores, streams, ingress routes and channels."""
    if as_json and as_dot:
        print("error: choose one of --json and --dot", file=sys.stderr)
        raise typer.Exit(2)
    fmt = "json" if as_json else "dot" if as_dot else "text"
    _guarded(debug, lambda: commands.plan(str(program), fmt))


def main() -> None:
    app(prog_name="varpulis-mp")
