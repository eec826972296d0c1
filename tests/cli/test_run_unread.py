"""`run` with input of event types no stream reads: such lines are checked and counted, never built
into events (runtime/live_feed.py `build_only`), and every count stays exact: the summary's
`Events processed` and `Unread events`, the metrics' `varpulis_events_total` per type, the
rejections; with worker processes and in one process alike."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.brokers import free_port, wait_until
from tests.conftest import varpulis_command
from tests.scrape import http_get

PROGRAM = """context front
context back

stream Passed = R.context(front).where(v > 0).emit(context: back, v: v)
stream Kept = Passed.context(back).where(v % 3 == 0).emit(v: v)
"""


def _lines(n: int) -> bytes:
    """R and U events in turn (U: read by no stream), a bad U line among them."""
    out = []
    for i in range(n):
        out.append(f"@{i} R {{ v: {i} }}" if i % 2 else f"@{i} U {{ u: {i}.5, s: \"x\" }}")
    out.insert(n // 2, "@5 U { u: , s: \"bad\" }")
    return ("\n".join(out) + "\n").encode()


def _total(text: str, event_type: str) -> float | None:
    found = re.search(rf'^varpulis_events_total{{event_type="{event_type}"}} (\S+)$', text, re.MULTILINE)
    return float(found[1]) if found else None


@pytest.mark.parametrize("layout", [[], ["--inline"]], ids=["workers", "one-process"])
def test_unread_events_are_counted_exactly_without_being_built(tmp_path: Path, layout: list[str]) -> None:
    (tmp_path / "p.vpl").write_text(PROGRAM)
    n = 3000
    port = free_port()
    with (open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err,
          subprocess.Popen([*varpulis_command(), "run", "p.vpl", "--output", "jsonl", "--metrics",
                            "--metrics-port", str(port), *layout],
                           stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=tmp_path) as proc):
        try:
            assert proc.stdin is not None
            proc.stdin.write(_lines(n))
            proc.stdin.flush()
            url = f"http://127.0.0.1:{port}/metrics"

            def counted() -> bool:
                try:
                    text = http_get(url)[1]
                except OSError:
                    return False
                return _total(text, "U") == n // 2 and _total(text, "R") == n // 2

            wait_until(counted, 30, "every event counted by type")
            proc.stdin.close()
            assert proc.wait(timeout=30) == 0, (tmp_path / "err").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    summary = (tmp_path / "err").read_text()
    assert f"Events processed: {n}\n" in summary
    assert f"Unread events:    {n // 2}\n" in summary
    assert "Rejected events:  1\n" in summary, summary
    records = [r for r in (tmp_path / "out").read_text().splitlines() if '"stream": "Kept"' in r]
    assert [int(re.search(r'"v": (\d+)', r)[1]) for r in records] == [  # type: ignore[index]
        i for i in range(n) if i % 2 and i % 3 == 0]
