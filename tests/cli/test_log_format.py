"""`run --log-format json` (RUN.md §2, §5): every log line on standard error is one JSON object
with `ts`, `level`, `logger`, `msg` (and `event` for a lifecycle line), in the supervisor and in
the worker processes alike; only the summary at the end stays text. `text` is the message alone."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import wait_until
from tests.service.live import LiveRun

PROGRAM = """\
context ingest
context work

connector Log = file(path: "readings.evt", follow: true)

stream Echo = R.from(Log)
    .context(ingest)
    .where(v > 0)
    .emit(context: work, v: v)

stream Totals = Echo
    .context(work)
    .window(1m)
    .aggregate(n: count())
"""
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def log_lines(stderr: str) -> list[dict[str, Any]]:
    """The JSON log lines before the summary; fails on any other line."""
    lines = stderr.split("\n")
    end = lines.index("Run Complete") - 1  # the summary's blank line, then its title
    assert lines[end] == ""
    found = []
    for line in lines[:end]:
        try:
            found.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r}\n{stderr}")
    for obj in found:
        assert {"ts", "level", "logger", "msg", "pid"} <= obj.keys(), obj
        assert TS.fullmatch(obj["ts"]) and obj["level"] in ("INFO", "WARNING", "ERROR"), obj
        assert obj["logger"].startswith("varpulis_mp."), obj
    return found


@pytest.mark.parametrize("inline", [False, True], ids=["worker-processes", "one-process"])
def test_every_log_line_is_a_json_object(tmp_path: Path, inline: bool) -> None:
    (tmp_path / "readings.evt").write_text("@1 R { v: 1 }\n@2 R { v: }\n@3 R { v: 3 }\n")
    (tmp_path / "p.vpl").write_text(PROGRAM)
    args = ["--log-format", "json", "--metrics", "--metrics-port", "0", *(["--inline"] if inline else [])]
    with LiveRun(tmp_path / "p.vpl", *args, cwd=tmp_path) as run:
        run.wait_for_records("Echo", 2)
        wait_until(lambda: '"input_rejected"' in run.stderr, 10, "the rejection's line")
        status, records = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr
    assert [r["fields"]["n"] for r in records if r["stream"] == "Totals"] == [2]
    lines = log_lines(run.stderr)
    by_event = {line["event"]: line for line in lines if "event" in line}
    connected = by_event["connector_connected"]
    assert connected["msg"] == "connector Log: subscribed, receiving from readings.evt"
    assert (connected["connector"], connected["connector_type"], connected["level"]) == ("Log", "file", "INFO")
    # The connector's client runs in the worker of its context: the line comes from that process.
    assert (connected["pid"] != run.proc.pid) is not inline
    rejected = by_event["input_rejected"]
    assert (rejected["source"], rejected["reason"], rejected["logger"]) == ("Log", "invalid value", "varpulis_mp.input")
    assert "readings.evt:2" in rejected["msg"]
    assert by_event["metrics_serving"]["url"].startswith("http://127.0.0.1:")
    assert by_event["input_rejected_total"]["count"] == 1
    if inline:  # the one-process driver's drain (the supervisor logs its own)
        assert {"drain_started", "drain_finished"} <= by_event.keys()
        assert by_event["drain_started"]["signal"] == "SIGTERM"


def test_text_lines_are_the_messages_alone(tmp_path: Path) -> None:
    (tmp_path / "readings.evt").write_text("@1 R { v: 1 }\n")
    (tmp_path / "p.vpl").write_text(PROGRAM)
    with LiveRun(tmp_path / "p.vpl", "--inline", cwd=tmp_path) as run:
        run.wait_for_records("Echo", 1)
        status, _ = run.stop(signal.SIGTERM)
    assert status == 0, run.stderr
    assert run.err_lines[:3] == ["connector Log: subscribed, receiving from readings.evt",
                                 "drain: SIGTERM received; stopping the inputs, flushing every window",
                                 run.err_lines[2]]
    assert re.fullmatch(r"drain: finished in \d+\.\d{3} s", run.err_lines[2])
