"""The human output of `simulate` and `run` (OUTPUT.md §2): header, input-event lines, window
lines, `=>` lines, alert blocks and the summary, plus the display rule for values.

The sink receives what the engine produced, already in canonical order (VPL.md §10.3), one origin
after another, and decides only how it looks. Blank lines are never doubled: each rule that asks
for a blank line before something is met by the one already there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, TextIO

from varpulis_mp.engine.output import NO_KEY, Output, Summary
from varpulis_mp.io.whole_writes import write_whole
from varpulis_mp.lang.values import format_float

__all__ = [
    "RUN_TITLES",
    "SIMULATION_TITLES",
    "HumanSink",
    "HumanView",
    "Titles",
    "format_record",
    "format_summary",
    "format_value",
]

_TENTH: Final = Decimal("0.1")
_LINES_PER_WRITE: Final = 1024  # with --immediate nobody watches the clock: write in chunks


def _display_float(x: float) -> str:
    """A Float by the display rule of OUTPUT.md §2.3."""
    if x == 0.0:
        return "0.0"  # -0.0 too
    if abs(x) >= 1e16:
        return format_float(x)
    # Round the shortest decimal form, not the binary value: 81.25 is exactly 81.25 in decimal
    # and goes up to 81.3, while rounding the double could go either way.
    rounded = Decimal(float.__repr__(x)).quantize(_TENTH, rounding=ROUND_HALF_UP)
    if rounded.is_zero():
        return format(x, ".3g")
    return str(rounded)


def format_value(v: object) -> str:
    """The human display of a value: Float rule, quoted strings with JSON escapes, lists."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        return _display_float(v)
    if isinstance(v, int):
        return int.__repr__(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    return str(v)


def _format_plain(v: object) -> str:
    """Like `format_value`, but a string shows without quotes (window keys, alert values)."""
    if isinstance(v, str):
        return v
    return format_value(v)


def format_record(fields: Mapping[str, object]) -> str:
    """`{ name: value, ... }`, or `{}` for a record without fields."""
    if not fields:
        return "{}"
    return "{ " + ", ".join(f"{name}: {format_value(v)}" for name, v in fields.items()) + " }"


@dataclass(frozen=True)
class Titles:
    """The words that name the command in its human output: the banner after the header line and
    the title of the summary (OUTPUT.md §2.4)."""

    start: str
    complete: str


SIMULATION_TITLES: Final = Titles("Starting simulation...", "Simulation Complete")
RUN_TITLES: Final = Titles("Starting run...", "Run Complete")


# Summary rows in print order: (label, always printed).
_SUMMARY_ROWS: Final = (
    ("Events processed", True),
    ("Unread events", False),
    ("Rejected events", False),
    ("Contexts used", True),
    ("Cross-context events", False),
    ("Sessions closed", False),
    ("Late events", False),
    ("Expression errors", False),
    ("Lost in restarts", False),
    ("Dead letters", False),
)


def format_summary(summary: Summary, title: str = SIMULATION_TITLES.complete) -> str:
    """The summary block of OUTPUT.md §2.4, from its leading blank line to its last LF."""
    c = summary.counters
    values = (
        summary.events_processed,
        summary.unread_events,
        summary.rejected_events,
        summary.contexts_used,
        summary.cross_context_events,
        c.sessions_closed,
        c.late_events,
        c.expression_errors,
        summary.lost_in_restarts,
        summary.dead_letters,
    )
    lines = ["", title, "=" * 22]  # 22 under every title: OUTPUT.md §2.4 fixes the width
    for (label, always), value in zip(_SUMMARY_ROWS, values, strict=True):
        if always or value != 0:
            lines.append(f"{label + ':':<17} {value}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class HumanView:
    """What the renderer needs to know about the plan's streams."""

    emit_target: Mapping[str, str | None]  # stream -> the `context:` of its `.emit` (`=> S -> X:`)
    ends_with_aggregate: Set[str]  # last operation (ignoring `.context`) is `.aggregate`: no `=>` line


# An input event waiting to be shown: (position, time, type name, contexts it went to).
_Event = tuple[int, int, str, frozenset[str]]


def _event_line(n: int, ts: int, type_name: str) -> str:
    return f"  [{n:>3}] @{ts:>6}ms {type_name} {{ ... }}"


def _group_lines(events: Sequence[_Event]) -> list[str]:
    """Lines for silent events: runs of two or more consecutive positions become one line."""
    lines: list[str] = []
    i = 0
    while i < len(events):
        j = i + 1
        while j < len(events) and events[j][0] == events[j - 1][0] + 1:
            j += 1
        run = events[i:j]
        if len(run) == 1:
            n, ts, type_name, _ = run[0]
            lines.append(_event_line(n, ts, type_name))
        else:
            contexts = frozenset[str]().union(*(e[3] for e in run))
            noun = "context" if len(contexts) == 1 else "contexts"
            lines.append(
                f"  [{run[0][0]:>3}-{run[-1][0]}] {len(run)} events dispatched to {len(contexts)} {noun}"
            )
        i = j
    return lines


class HumanSink:
    """Renders a run for people. Calls come in output order: `header`, then per origin its
    `input_event` (with `--verbose`) before its `write_outputs`, then `summary` and `close`.

    With `--immediate` an input event's line waits until it is known whether the event printed
    anything: lines of a later origin, the flush or the summary show that it did not, and silent
    neighbours are then grouped. Without it every event line is written (and flushed) at once,
    as replay runs in real time.
    """

    def __init__(self, stream: TextIO, view: HumanView, verbose: bool, immediate: bool,
                 titles: Titles = SIMULATION_TITLES) -> None:
        self._stream = stream
        self._view = view
        self._titles = titles
        self._verbose = verbose
        self._immediate = immediate
        self._lines: list[str] = []  # rendered, not yet written
        self._pending: list[_Event] = []  # --immediate: events whose fate is not known yet
        self._in_block = False  # the last line belongs to an alert block
        self._last_blank = False  # the last line is blank
        self._flush_started = False
        self._closed = False

    def header(self, n_streams: int, n_contexts: int) -> None:
        self._lines += [f"Program loaded: {n_streams} streams, {n_contexts} contexts", "",
                        self._titles.start, ""]
        self._last_blank = True
        self._in_block = False
        self._write(force=True)

    def input_event(self, n: int, ts: int, type_name: str, delivered_to_contexts: frozenset[str]) -> None:
        """Record input event n (1-based position in the file), delivered to these contexts."""
        if not self._verbose:
            return  # input-event lines belong to --verbose only
        if self._immediate:
            self._pending.append((n, ts, type_name, delivered_to_contexts))
            return
        self._add_lines([_event_line(n, ts, type_name)])
        self._write(force=False)

    def write_outputs(self, outputs: Sequence[Output], flush: bool = False) -> None:
        """Show the lines of `outputs` (canonical order); `flush` marks the end-of-input origin."""
        view = self._view
        for out in outputs:
            fields = out.fields
            if out.kind == "record":
                alert_type = fields.get("alert_type")
                # Checked before the `.aggregate` rule: that rule drops a `=>` line that would repeat
                # the [window] line, while an alert block is what the run is there to show.
                if isinstance(alert_type, str):
                    block = [f"ALERT: {alert_type}"]
                    block += [f"  {k}: {_format_plain(v)}" for k, v in fields.items() if k != "alert_type"]
                    self._start(out.origin, flush, block=True)
                    self._add_lines(block, block=True)
                    continue
                if out.stream in view.ends_with_aggregate:
                    continue  # its [window] line already showed the record
                target = view.emit_target.get(out.stream)
                arrow = out.stream if target is None else f"{out.stream} -> {target}"
                line = f"  => {arrow}: {format_record(fields)}"
            else:
                key = "" if out.key is NO_KEY else f" ({_format_plain(out.key)})"
                line = f"  [{out.kind}] {out.stream}{key}: {format_record(fields)}"
            self._start(out.origin, flush, block=False)
            self._add_lines([line])
        if flush:
            # Every input event came before the flush, so none of the waiting ones printed anything.
            self._release_events(None)
        self._write(force=False)

    def write_batch(self, records: Sequence[Output], flush: bool) -> None:
        """The Sink face (io/ports.py): `flush` marks the outputs of the end-of-input flush."""
        self.write_outputs(records, flush=flush and bool(records))

    def summary(self, summary: Summary, stream: TextIO, title: str | None = None) -> None:
        """Write the summary block to `stream` (this sink's stream, or standard error), under
        `title` (by default the titles' `complete`)."""
        self._release_events(None)
        text = format_summary(summary, title or self._titles.complete)
        if stream is self._stream:
            if self._last_blank:
                text = text[1:]  # the blank line it opens with is already there
            self._lines.append(text[:-1])
            self._last_blank = False
            self._in_block = False
            self._write(force=True)
        else:
            self._write(force=True)
            self._stream.flush()
            write_whole(stream, text)
            stream.flush()

    def close(self) -> None:
        """Write everything still held (silent events too) and flush the stream."""
        if self._closed:
            return
        self._closed = True
        self._release_events(None)
        self._write(force=True)
        self._stream.flush()

    # -- internals ------------------------------------------------------------------------------

    def _start(self, origin: int, flush: bool, block: bool) -> None:
        """Prepare for a line of `origin`: earlier event lines, then any blank line it needs."""
        if self._pending:
            self._release_events(origin)
        blank = block and not self._in_block
        if flush and not self._flush_started:
            self._flush_started = True
            blank = True
        if blank and not self._last_blank:
            self._lines.append("")
            self._last_blank = True

    def _add_lines(self, lines: list[str], block: bool = False) -> None:
        self._lines += lines
        self._in_block = block
        self._last_blank = False

    def _release_events(self, origin: int | None) -> None:
        """Show waiting events up to `origin` (all with None): the one at `origin` caused the
        lines about to be printed, those before it printed nothing."""
        pending = self._pending
        if not pending:
            return
        if origin is None:
            done, self._pending = pending, []
        else:
            cut = 0
            while cut < len(pending) and pending[cut][0] <= origin:
                cut += 1
            if cut == 0:
                return
            done, self._pending = pending[:cut], pending[cut:]
        cause: _Event | None = None
        if origin is not None and done[-1][0] == origin:
            cause = done.pop()
        lines = _group_lines(done)
        if cause is not None:
            lines.append(_event_line(cause[0], cause[1], cause[2]))
        if lines:
            self._add_lines(lines)

    def _write(self, force: bool) -> None:
        lines = self._lines
        if not lines:
            return
        if self._immediate and not force and len(lines) < _LINES_PER_WRITE:
            return
        write_whole(self._stream, "\n".join(lines) + "\n")
        lines.clear()
        if not self._immediate:
            self._stream.flush()
