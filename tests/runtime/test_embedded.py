"""`varpulis_mp.Runtime` (RUN.md §3): worker processes and inline give simulate()'s records;
wait_idle honours its timeout; leaving the block flushes; posting after shutdown raises."""

from __future__ import annotations

import threading
import time

import pytest

import varpulis_mp
from varpulis_mp import Runtime, RuntimeFailure

PROGRAM = """\
context ingest
context stats
stream Hot = Reading.context(ingest).where(temp > 80.0).emit(context: stats, sensor: sensor, temp: temp)
stream Counts = Hot.context(stats).partition_by(sensor).window(3).aggregate(sensor: sensor, n: count(), top: max(temp))
"""
EVENTS = [("Reading", i * 10, {"sensor": f"S{i % 3}", "temp": 70.0 + (i * 7) % 30}) for i in range(60)]


def _as_tuples(records: list[varpulis_mp.Record]) -> list[tuple[str, int, dict[str, object]]]:
    return [(r.stream, r.ts, r.fields) for r in records]


@pytest.mark.parametrize("inline", [False, True], ids=["worker-processes", "inline"])
def test_records_equal_simulate_and_leaving_the_block_flushes(inline: bool) -> None:
    expected = varpulis_mp.simulate(PROGRAM, EVENTS)
    got: dict[str, list[varpulis_mp.Record]] = {"Hot": [], "Counts": []}
    with Runtime(PROGRAM, inline=inline) as rt:
        rt.subscribe("Hot", got["Hot"].append)
        rt.subscribe("Counts", got["Counts"].append)
        rt.post_many(EVENTS)
        assert rt.wait_idle(timeout=30.0)
        # Before the end of input only the full windows have closed.
        assert len(got["Counts"]) < len(expected.by_stream("Counts"))
    for stream in ("Hot", "Counts"):
        assert _as_tuples(got[stream]) == _as_tuples(expected.by_stream(stream))
    assert rt.stats()["summary"]["events_processed"] == len(EVENTS)


@pytest.mark.parametrize("inline", [False, True], ids=["worker-processes", "inline"])
def test_wait_idle_is_prompt_and_honours_its_timeout(inline: bool) -> None:
    entered = threading.Event()
    release = threading.Event()

    def slow(_record: varpulis_mp.Record) -> None:
        entered.set()
        release.wait(10)

    with Runtime(PROGRAM, inline=inline) as rt:
        rt.subscribe("Hot", slow)
        rt.post("Reading", {"sensor": "S1", "temp": 99.0}, ts=1)
        assert entered.wait(30)
        start = time.monotonic()
        assert rt.wait_idle(timeout=0.3) is False  # the record is still being delivered
        assert 0.25 < time.monotonic() - start < 5
        release.set()
        assert rt.wait_idle(timeout=10.0) is True


def test_records_iterator_and_wall_clock_time() -> None:
    with Runtime(PROGRAM, inline=True) as rt:
        before = time.time_ns() // 1_000_000
        it = rt.records("Hot", timeout=10)
        rt.post("Reading", {"sensor": "S1", "temp": 90.0})
        record = next(it)
        assert record.stream == "Hot" and record.fields == {"sensor": "S1", "temp": 90.0}
        assert before <= record.ts <= time.time_ns() // 1_000_000


@pytest.mark.parametrize("inline", [False, True], ids=["worker-processes", "inline"])
def test_posting_after_shutdown_raises_and_bad_events_name_themselves(inline: bool) -> None:
    rt = Runtime(PROGRAM, inline=inline)
    with pytest.raises(TypeError, match="event 1"):
        rt.post("Reading", {"sensor": object()})
    with pytest.raises(ValueError, match="is a stream"):
        rt.post("Hot", {"x": 1})
    rt.shutdown()
    with pytest.raises(RuntimeError):
        rt.post("Reading", {"sensor": "S1", "temp": 1.0})
    assert not isinstance(RuntimeError(), RuntimeFailure)


def test_a_callback_that_raises_is_counted_and_the_runtime_goes_on() -> None:
    seen: list[varpulis_mp.Record] = []

    def broken(_record: varpulis_mp.Record) -> None:
        raise ZeroDivisionError("boom")

    with Runtime(PROGRAM, inline=True) as rt:
        rt.subscribe("Hot", broken)
        rt.subscribe("Hot", seen.append)
        rt.post_many(EVENTS[:10])
        assert rt.wait_idle(10)
    assert rt.stats()["callback_errors"] == len(seen) > 0


FAULTY = """\
context c
stream Plain = R.context(c).where(v > 0).emit(v: v)
stream Faulty = R.context(c).where(v / d > 0).window(1s).aggregate(n: count())
"""


@pytest.mark.parametrize("inline", [False, True], ids=["worker-processes", "inline"])
def test_stats_count_late_events_and_expression_errors_under_their_own_stream(inline: bool) -> None:
    """Only the second stream has a late event (@500 after @3000 closed its window) and an
    expression error (a division by zero)."""
    with Runtime(FAULTY, inline=inline) as rt:
        assert rt.stats()["late_events"] == {"Plain": 0, "Faulty": 0}
        rt.post_many([("R", 1000, {"v": 1, "d": 1}), ("R", 3000, {"v": 2, "d": 0}), ("R", 500, {"v": 3, "d": 1})])
        assert rt.wait_idle(timeout=30.0)
        # With worker processes the counts come with the workers' heartbeats, at least once a second.
        deadline = time.monotonic() + 10.0
        while rt.stats()["late_events"]["Faulty"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = rt.stats()
        assert stats["late_events"] == {"Plain": 0, "Faulty": 1}
        assert stats["expression_errors"] == {"Plain": 0, "Faulty": 1}


@pytest.mark.parametrize("inline", [False, True], ids=["worker-processes", "inline"])
def test_stats_give_the_latency_of_every_record_by_context(inline: bool) -> None:
    start = time.monotonic()
    with Runtime(PROGRAM, inline=inline) as rt:
        before = rt.stats()["latency"]
        assert set(before) == {"ingest", "stats"} and all(c["count"] == 0 for c in before.values())
        rt.post_many(EVENTS)
        assert rt.wait_idle(timeout=30.0)

        def counted() -> tuple[int, int]:
            stats = rt.stats()
            return sum(c["count"] for c in stats["latency"].values()), sum(stats["records"].values())

        # With worker processes the runtime host sends it with the workers' heartbeats.
        deadline = time.monotonic() + 10.0
        while counted()[0] != counted()[1] and time.monotonic() < deadline:
            time.sleep(0.02)
        latency, records = counted()
        assert latency == records > 0
    stats = rt.stats()
    by_context = stats["latency"]
    total = sum(c["count"] for c in by_context.values())
    assert total == sum(stats["records"].values())  # the end-of-input flush's records too
    assert by_context["ingest"]["count"] == stats["records"]["Hot"]
    assert by_context["stats"]["count"] == stats["records"]["Counts"]
    assert 0 < sum(c["sum_s"] for c in by_context.values()) < (time.monotonic() - start) * total
    assert by_context["ingest"]["buckets"]["+Inf"] == by_context["ingest"]["count"]
