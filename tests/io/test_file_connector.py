"""The `file` connector: `.evt` lines in (to the end, or following the file), JSON lines out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.brokers import record, wait_until
from varpulis_mp.engine.output import Output
from varpulis_mp.io.connector_spec import Monitored
from varpulis_mp.io.connectors import Subscription, connector_kind
from varpulis_mp.io.file_connector import LINE_LIMIT, FileSource, FileSourcePartition
from varpulis_mp.io.ports import LineBatch

FILE = connector_kind("file")
ROOT = Path(__file__).resolve().parents[2]


def file_source(path: Path, follow: bool = False) -> FileSourcePartition:
    spec = FILE.source("Log", {"path": str(path), "follow": follow}, [Subscription("R"), Subscription("S")], "c")
    assert isinstance(spec, FileSource) and spec.event_types == ("R", "S")
    partition = spec.build(0, 1)
    assert isinstance(partition, Monitored)
    return partition


def read_to_end(src: FileSourcePartition) -> LineBatch:
    out = LineBatch([])
    while True:
        try:
            batch = src.next_batch()
        except StopIteration:
            return out
        out.lines += batch.lines
        out.rejected += batch.rejected


def lines_until(src: FileSourcePartition, count: int, timeout: float = 5.0) -> list[bytes]:
    got: list[bytes] = []

    def more() -> bool:
        got.extend(src.next_batch().lines)
        return len(got) >= count

    wait_until(more, timeout, f"{count} lines")
    return got


def test_reads_every_line_then_ends(tmp_path: Path) -> None:
    path = tmp_path / "in.evt"
    path.write_bytes(b'\xef\xbb\xbfR { x: 1 }\r\n\n# comment\n@5 S {"y": 2}\nR { x: 3 }')
    src = file_source(path)
    batch = read_to_end(src)
    assert batch.lines == [b"R { x: 1 }", b"", b"# comment", b'@5 S {"y": 2}', b"R { x: 3 }"]
    assert batch.rejected == []
    with pytest.raises(StopIteration):
        src.next_batch()


def test_lines_longer_than_the_limit_are_rejected_not_held(tmp_path: Path) -> None:
    path = tmp_path / "in.evt"
    with open(path, "wb") as f:
        f.write(b"R { a: 1 }\n")
        f.write(b"x" * (3 * LINE_LIMIT) + b"\n")
        f.write(b"y" * LINE_LIMIT + b"\r\n")  # exactly at the limit, the CR aside
        f.write(b"R { a: 2 }\n")
    batch = read_to_end(file_source(path))
    assert [len(line) for line in batch.lines] == [10, LINE_LIMIT, 10]
    assert [r.reason for r in batch.rejected] == ["line too long"]
    assert len(batch.rejected[0].payload) == 1024


def test_a_missing_file_without_follow_fails_the_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        file_source(tmp_path / "nope.evt")


def test_follow_reads_what_is_appended_and_survives_truncation_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "live.evt"
    src = file_source(path, follow=True)  # not there yet: waited for
    assert not src.healthy
    assert src.next_batch().lines == []
    assert src.next_awake() is not None
    with open(path, "ab") as f:
        f.write(b"R { n: 1 }\nR { n: ")
    assert lines_until(src, 1) == [b"R { n: 1 }"]
    with open(path, "ab") as f:
        f.write(b"2 }\n")  # the partial line is completed, not split
    assert lines_until(src, 1) == [b"R { n: 2 }"]
    # Truncated (copytruncate): read again from the start.
    with open(path, "wb") as f:
        f.write(b"R { n: 3 }\n")
    assert lines_until(src, 1) == [b"R { n: 3 }"]
    # Rotated: the old file's end is read, then the new file from its start.
    with open(path, "ab") as f:
        f.write(b"R { n: 4 }")
    os.rename(path, tmp_path / "live.evt.1")
    path.write_bytes(b"R { n: 5 }\n")
    assert lines_until(src, 2) == [b"R { n: 4 }", b"R { n: 5 }"]
    assert src.next_batch().lines == []
    assert src.counters.messages_in == 5
    src.close()
    with pytest.raises(StopIteration):
        src.next_batch()


def test_a_line_cut_by_truncation_is_rejected_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "live.evt"
    path.write_bytes(b"R { n: 1 }\nR { n: 2, long_partial: ")
    src = file_source(path, follow=True)
    assert lines_until(src, 1) == [b"R { n: 1 }"]
    path.write_bytes(b"")
    rejected = wait_until(lambda: src.next_batch().rejected, 5, "the cut line")
    assert rejected[0].reason == "truncated"
    src.close()


def test_sink_appends_one_json_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"earlier": true}\n')
    sink = FILE.sink("Alerts", {"path": str(path)}, {}, "Hot", "c").build(0, 1)
    sink.write_batch([record("Hot", 590, sensor_id="S1", temperature=91.5),
                      Output(1, 0, 1, "Hot", "window", 0, {}), record("Hot", 600, x=None)], True)
    sink.close()
    assert path.read_bytes().splitlines() == [
        b'{"earlier": true}',
        b'{"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.590Z", "sensor_id": "S1", "temperature": 91.5}',
        b'{"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.600Z", "x": null}',
    ]


def test_a_sink_file_that_cannot_be_opened_fails_the_build(tmp_path: Path) -> None:
    spec = FILE.sink("Alerts", {"path": str(tmp_path / "no" / "such" / "dir.jsonl")}, {}, "Hot", "c")
    with pytest.raises(FileNotFoundError):
        spec.build(0, 1)


_WRITER = """
import sys
from varpulis_mp.engine.output import Output
from varpulis_mp.io.connectors import connector_kind
path, tag = sys.argv[1], sys.argv[2]
sink = connector_kind("file").sink("Out", {"path": path}, {}, "S", "c").build(0, 1)
big = tag * 20000  # lines of about 20 KB: far beyond what a pipe or stdio buffer would keep whole
for i in range(150):
    sink.write_batch([Output(1, 0, i, "S", "record", i, {"w": tag, "i": i, "pad": big})], False)
sink.close()
"""


def test_lines_of_several_processes_never_mix(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tag], cwd=ROOT)
               for tag in "abc"]
    for w in writers:
        assert w.wait(30) == 0
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    for line in lines[:-1]:
        obj = json.loads(line)
        assert obj["pad"] == obj["w"] * 20000
        seen[obj["w"]].append(obj["i"])
    assert all(order == list(range(150)) for order in seen.values())


def test_sink_waits_for_nothing_it_cannot_write(tmp_path: Path) -> None:
    # /dev/full (Linux) fails every write: records wait, and the close deadline reports them undelivered.
    sink = FILE.sink("Full", {"path": "/dev/full"}, {}, "S", "c").build(0, 1)
    sink.write_batch([record("S", i, i=i) for i in range(5)], False)
    started = time.monotonic()
    sink.close(timeout=0.5)
    assert time.monotonic() - started < 3
    assert sink.counters.dead_lettered == 5
    assert sink.counters.messages_out == 0
