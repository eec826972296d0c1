"""Where a run's log lines go: standard error, one line per lifecycle event (RUN.md §5).

Owns the configuration of the `varpulis_mp` loggers for `run` and the runtime's lifecycle lines.
The connectors log under `varpulis_mp.connectors` (connected, lost, back, circuits: io/lifecycle.py),
the runtime under `varpulis_mp.runtime` (`lifecycle`: drains, the metrics server, systemd), the
rejected input under `varpulis_mp.input` (runtime/rejections.py).

Two formats (`run --log-format`): `text`, the message alone, so that a line reads like the rest of
standard error; `json`, one object per line for a log shipper: `ts` (UTC, ISO 8601 with
milliseconds), `level`, `logger`, `msg`, `event` when the line is a lifecycle event, `pid`, and
the line's structured fields. Worker processes are forked after `configure`, so they write the
same format. Nothing is logged per event (rejections are rate-limited), and no secret is ever part
of a message or a field. The summary and the diagnostics are not log lines: they stay text.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Callable
from typing import Final

from varpulis_mp.io.lifecycle import log_event

__all__ = ["FORMATS", "JsonLines", "configure", "configured", "input_log", "lifecycle", "runtime_log"]

runtime_log = logging.getLogger("varpulis_mp.runtime")
input_log = logging.getLogger("varpulis_mp.input")
_ROOT = logging.getLogger("varpulis_mp")
# The members every JSON line has; a field of the same name never replaces one.
_CORE: Final = ("ts", "level", "logger", "msg", "event", "pid")


class JsonLines(logging.Formatter):
    """One JSON object per log line (`--log-format json`)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if isinstance(event, str):
            line["event"] = event
        line["pid"] = record.process
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for name, value in fields.items():
                if name not in _CORE:
                    line[str(name)] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        # ASCII: a line separator inside a message (U+2028) must not split the line for a reader.
        return json.dumps(line, default=str)


def _utc_iso(created: float) -> str:
    when = datetime.datetime.fromtimestamp(created, datetime.UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


FORMATS: Final[dict[str, Callable[[], logging.Formatter]]] = {
    "text": lambda: logging.Formatter("%(message)s"),
    "json": JsonLines,
}


def configure(log_format: str = "text") -> None:
    """Log lines of INFO and above to standard error in `log_format` (`text` or `json`); called
    again, it only changes the format."""
    formatter = FORMATS[log_format]()
    for handler in _ROOT.handlers:
        if getattr(handler, "_varpulis", False):
            handler.setFormatter(formatter)
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler._varpulis = True  # type: ignore[attr-defined]
    _ROOT.addHandler(handler)
    _ROOT.setLevel(logging.INFO)
    _ROOT.propagate = False


def configured() -> bool:
    """Whether `configure` ran in this process (a `run`, not an embedding host)."""
    return any(getattr(h, "_varpulis", False) for h in _ROOT.handlers)


def lifecycle(event: str, message: str, level: int = logging.INFO, /, **fields: object) -> None:
    """A lifecycle line of the runtime (logger `varpulis_mp.runtime`): `message` for the text
    format, `event` and `fields` besides for the JSON one."""
    log_event(runtime_log, event, message, level, **fields)
