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
from typing import Annotated, Optional

import typer

from varpulis_mp.runtime import commands

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run VPL stream-processing programs across many cores: one worker process per context.",
)


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


class RunOutputFormat(str, Enum):
    jsonl = "jsonl"
    human = "human"
    none = "none"


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


def _silence_stdout() -> None:
    try:
        sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - stays open until exit
    except OSError:
        pass


@app.command()
def check(
    program: Annotated[Path, typer.Argument(help="The .vpl program to check.", show_default=False)],
    events: Annotated[
        Optional[str],  # noqa: UP007 - typer needs Optional at runtime
        typer.Option("-e", "--events", help="Also validate this event file ('-' for stdin) without running."),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Check a program (and optionally an event file) and report every problem at once."""
    _guarded(debug, lambda: commands.check(str(program), events))


@app.command()
def simulate(
    program: Annotated[Path, typer.Option("-p", "--program", help="The .vpl program.", show_default=False)],
    events: Annotated[str, typer.Option("-e", "--events", help="Event file, or '-' for stdin.", show_default=False)],
    immediate: Annotated[bool, typer.Option("--immediate", help="Process events as fast as possible.")] = False,
    speed: Annotated[float, typer.Option("--speed", help="Replay speed factor (10 = ten times faster).")] = 1.0,
    inline: Annotated[bool, typer.Option("--inline", help="Run every context in this one process.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show every input event.")] = False,
    output: Annotated[OutputFormat, typer.Option("--output", help="Output format.")] = OutputFormat.human,
    channel_capacity: Annotated[
        int, typer.Option("--channel-capacity", min=1, help="Events in flight per channel between processes.")
    ] = 1000,
    debug: DebugOption = False,
) -> None:
    """Run a program over an event file and print its output records."""
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


@app.command()
def run(
    program: Annotated[
        Optional[Path],  # noqa: UP007
        typer.Argument(help="The .vpl program.", show_default=False),
    ] = None,
    file: Annotated[
        Optional[Path],  # noqa: UP007
        typer.Option("--file", "-f", help="The .vpl program (same as the argument).", show_default=False),
    ] = None,
    input_path: Annotated[
        Optional[str],  # noqa: UP007
        typer.Option("--input", "-i", metavar="PATH",
                     help="Default input: an .evt file read to its end, or '-' for standard input "
                          "(the default when the program reads an event type).", show_default=False),
    ] = None,
    output: Annotated[
        RunOutputFormat, typer.Option("--output", help="Records on standard output: jsonl, human or none.")
    ] = RunOutputFormat.jsonl,
    inline: Annotated[bool, typer.Option("--inline", help="Run every context in this one process.")] = False,
    channel_capacity: Annotated[
        int, typer.Option("--channel-capacity", min=1, help="Events in flight per channel between processes.")
    ] = 1000,
    debug: DebugOption = False,
) -> None:
    """Run a program on live `.evt` lines from standard input until the input ends or SIGTERM/SIGINT.

    A program with contexts runs one worker process per context (unless --inline); a bad line is
    reported, counted and skipped.
    """
    chosen = program or file
    if chosen is None or (program is not None and file is not None):
        print("error: give the program once, as an argument or with --file", file=sys.stderr)
        raise typer.Exit(2)
    options = commands.RunOptions(program=str(chosen), input=input_path, output=output.value, inline=inline,
                                  channel_capacity=channel_capacity)
    _guarded(debug, lambda: commands.run(options))


@app.command()
def plan(
    program: Annotated[Path, typer.Argument(help="The .vpl program.", show_default=False)],
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
