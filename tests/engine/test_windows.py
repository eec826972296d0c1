"""Window kinds with explicit times (VPL.md §8): instances, due, late, close order, flush."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from varpulis_mp.engine.output import Counters
from varpulis_mp.engine.windows import (
    CountWindow,
    SessionWindow,
    SlidingCountWindow,
    TimeWindow,
    make_window,
)

_add = None  # windows without an aggregate keep their (ts, fields) records


def feed(w: Any, ts: int, key: Any = None, v: Any = None) -> list[tuple[Any, int, list[Any]]]:
    """One arriving record: watermark step, then assignment; returns everything that closed."""
    out = list(w.advance(ts))
    out += w.add(key, key, ts, {"v": v if v is not None else ts})
    return out


def values(closed: list[tuple[Any, int, list[Any]]]) -> list[tuple[Any, int, list[Any]]]:
    return [(k, t, [f["v"] for _ts, f in st]) for k, t, st in closed]


# ---------------------------------------------------------------- tumbling time


def test_tumbling_aligned_to_zero_and_due_at_end() -> None:
    # D = 1000:  [0,1000) [1000,2000) ...
    #   t:  500  999 | 1000 (closes [0,1000): due when watermark >= 1000)
    c = Counters()
    w = TimeWindow(1000, None, list, _add, c)
    assert feed(w, 500) == []
    assert feed(w, 999) == []
    closed = feed(w, 1000)
    assert values(closed) == [(None, 999, [500, 999])]
    assert values(w.flush()) == [(None, 1999, [1000])]
    assert c.late_events == 0


def test_tumbling_out_of_order_not_late_until_due() -> None:
    c = Counters()
    w = TimeWindow(1000, None, list, _add, c)
    feed(w, 1500)
    assert feed(w, 1200) == []  # same window, behind the watermark but not due
    assert feed(w, 400) == []  # [0,1000) not due: watermark 1500 >= 1000 -> it IS due -> late
    assert c.late_events == 1
    assert values(w.flush()) == [(None, 1999, [1500, 1200])]


def test_tumbling_gaps_make_no_empty_windows() -> None:
    w = TimeWindow(10, None, list, _add, Counters())
    feed(w, 5)
    closed = feed(w, 95)
    assert values(closed) == [(None, 9, [5])]
    assert values(w.flush()) == [(None, 99, [95])]


def test_simultaneous_closes_by_end_then_key_order() -> None:
    # D = 10, S = 5. Keys first reach the window in order b, a; t=7 and t=8 each join [0,10)
    # and [5,15); at t=30 both ends are due: end 10 first, then 15, each in key order b, a.
    w = TimeWindow(10, 5, list, _add, Counters())
    feed(w, 7, "b")
    feed(w, 8, "a")
    closed = feed(w, 30, "c")
    assert [(k, t) for k, t, _ in closed] == [("b", 9), ("a", 9), ("b", 14), ("a", 14)]


def test_key_keeps_its_place_and_late_record_gives_none() -> None:
    c = Counters()
    w = TimeWindow(10, None, list, _add, c)
    feed(w, 15, "a")
    feed(w, 3, "z")  # late: z gets no place
    feed(w, 16, "z")
    feed(w, 17, "b")
    closed = feed(w, 20, "b")
    assert [k for k, _, _ in closed] == ["a", "z", "b"]
    assert c.late_events == 1
    # a comes back after its windows closed: it keeps rank 0
    feed(w, 21, "b")
    feed(w, 22, "a")
    assert [k for k, _, _ in w.flush()] == ["a", "b"]


def test_sliding_time_windows_and_partial_late() -> None:
    # D = 10, S = 5: windows [0,10) [5,15) [10,20) ...; t = 7 belongs to [0,10) and [5,15).
    c = Counters()
    w = TimeWindow(10, 5, list, _add, c)
    feed(w, 7)
    closed = feed(w, 12)  # [0,10) due
    assert values(closed) == [(None, 9, [7])]
    # t = 8 arrives: [0,10) due, [5,15) not: joins only [5,15), not late
    assert feed(w, 8) == []
    assert c.late_events == 0
    closed = feed(w, 15)
    assert values(closed) == [(None, 14, [7, 12, 8])]
    assert feed(w, 2) == []  # [0,10) only, due: late
    assert c.late_events == 1
    assert values(w.flush()) == [(None, 19, [12, 15]), (None, 24, [15])]


def test_sliding_time_no_windows_before_zero() -> None:
    w = TimeWindow(10, 5, list, _add, Counters())
    feed(w, 2)  # only [0,10): k = -1 does not exist
    assert values(w.flush()) == [(None, 9, [2])]


# ---------------------------------------------------------------- count


def test_count_tumbling_releases_at_n_and_flushes_partial_in_key_order() -> None:
    w = CountWindow(3, list, _add)
    assert w.advance(100) == []
    out = []
    for i, k in enumerate("babab"):
        out += w.add(k, k, i * 10, {"v": i})
    assert values(out) == [("b", 40, [0, 2, 4])]
    out = []
    for i, k in enumerate("aa"):
        out += w.add(k, k, 100 + i, {"v": 10 + i})
    assert values(out) == [("a", 100, [1, 3, 10])]
    w.add("b", "b", 200, {"v": 7})
    w.add("a", "a", 300, {"v": 8})
    assert values(w.flush()) == [("b", 200, [7]), ("a", 300, [11, 8])]


def test_count_sliding_releases_at_n_n_plus_m_and_flush_last_n() -> None:
    # N = 5, M = 2: releases at records 5, 7, 9; flush after 10 releases the last 5.
    w = SlidingCountWindow(5, 2, list, _add)
    released = []
    for i in range(1, 11):
        for _k, t, state in w.add(None, None, i, {"v": i}):
            released.append((i, [f["v"] for _, f in state], t))
    assert released == [(5, [1, 2, 3, 4, 5], 5), (7, [3, 4, 5, 6, 7], 7), (9, [5, 6, 7, 8, 9], 9)]
    assert values(w.flush()) == [(None, 10, [6, 7, 8, 9, 10])]
    assert w.flush() == []


def test_count_sliding_flush_partial_and_nothing_new() -> None:
    w = SlidingCountWindow(3, 1, list, _add)
    w.add(None, None, 1, {"v": 1})
    assert values(w.flush()) == [(None, 1, [1])]
    w2 = SlidingCountWindow(3, 3, list, _add)
    for i in range(3):
        w2.add(None, None, i, {"v": i})
    assert w2.flush() == []  # released at 3, nothing since


def test_sliding_count_key_value_of_first_record() -> None:
    w = SlidingCountWindow(2, 1, list, _add)
    w.add(1, 1, 0, {"v": 0})
    out = w.add(1, 1.0, 1, {"v": 1})
    assert out[0][0] == 1
    out = w.add(1, 1, 2, {"v": 2})
    assert out[0][0] == 1.0 and type(out[0][0]) is float


# ---------------------------------------------------------------- session


def test_session_gap_exactly_g_keeps_open() -> None:
    c = Counters()
    w = SessionWindow(5000, list, _add, c)
    feed(w, 0, "k")
    assert feed(w, 5000, "k") == []  # 0 + 5000 < 5000 is false
    closed = feed(w, 10001, "k")  # 5000 + 5000 < 10001: closes before the record joins
    assert values(closed) == [("k", 5000, [0, 5000])]
    assert c.sessions_closed == 1
    assert values(w.flush()) == [("k", 10001, [10001])]
    assert c.sessions_closed == 2


def test_session_sweep_closes_other_keys_in_end_then_key_order() -> None:
    # G = 2000: b@5000 (end 7000), a@1000 (end 3000), c@12000 sweeps both: a first (smaller end).
    c = Counters()
    w = SessionWindow(2000, list, _add, c)
    feed(w, 5000, "b")
    feed(w, 1000, "a")  # late: 1000 + 2000 < 5000
    assert c.late_events == 1
    feed(w, 4000, "x")
    closed = feed(w, 12000, "c")
    assert [(k, t) for k, t, _ in closed] == [("x", 4000), ("b", 5000)]


def test_session_out_of_order_never_moves_last_back() -> None:
    w = SessionWindow(10, list, _add, Counters())
    feed(w, 100, "k")
    feed(w, 95, "k")  # 95 + 10 >= 100: joins, last stays 100
    assert values(w.advance(111)) == [("k", 100, [100, 95])]


def test_session_equal_ends_in_key_order() -> None:
    w = SessionWindow(10, list, _add, Counters())
    feed(w, 50, "y")
    feed(w, 50, "x")
    closed = feed(w, 100, "z")
    assert [k for k, _, _ in closed] == ["y", "x"]


def test_make_window_kinds() -> None:
    c = Counters()
    assert isinstance(make_window("time", 10, None, list, _add, c), TimeWindow)
    assert isinstance(make_window("session", 10, None, list, _add, c), SessionWindow)
    assert isinstance(make_window("count", 10, None, list, _add, c), CountWindow)
    assert isinstance(make_window("count", 10, 2, list, _add, c), SlidingCountWindow)


def test_session_expires_after_gap_of_wall_clock_time() -> None:
    c = Counters()
    w = SessionWindow(1000, list, _add, c)
    feed(w, 5, "a")  # before any clock: its wall-clock age starts at the first expire
    assert w.expire(10_000) == []
    feed(w, 6, "b")  # seen at wall clock 10_000
    assert w.expire(10_999) == []
    closed = w.expire(11_000)
    assert [(k, t) for k, t, _ in closed] == [("a", 5), ("b", 6)]
    assert c.sessions_closed == 2
    assert w.flush() == []


# ---------------------------------------------------------------- against brute-force models

_records = st.lists(st.tuples(st.integers(0, 60), st.sampled_from("abc")), max_size=40)


def _time_model(size: int, slide: int, recs: list[tuple[int, str]]) -> tuple[list[Any], int]:
    """Every window [k*S, k*S+D) checked by containment, everything rescanned at each record."""
    wm = -1
    open_: dict[tuple[int, str], list[int]] = {}
    rank: dict[str, int] = {}
    out: list[Any] = []
    late = 0

    def close(limit: float) -> None:
        due = sorted((k for k in open_ if k[0] <= limit), key=lambda k: (k[0], rank[k[1]]))
        for k in due:
            out.append((k[1], k[0] - 1, open_.pop(k)))

    for ts, key in recs:
        wm = max(wm, ts)
        close(wm)
        ends = [k * slide + size for k in range(0, ts // slide + 1) if k * slide <= ts < k * slide + size]
        live = [e for e in ends if e > wm]
        if not live:
            late += 1
            continue
        rank.setdefault(key, len(rank))
        for e in live:
            open_.setdefault((e, key), []).append(ts)
    close(float("inf"))
    return out, late


def _session_model(gap: int, recs: list[tuple[int, str]]) -> tuple[list[Any], int]:
    wm = -1
    open_: dict[str, tuple[int, list[int]]] = {}
    rank: dict[str, int] = {}
    out: list[Any] = []
    late = 0

    def close(keys: list[str]) -> None:
        for key in sorted(keys, key=lambda k: (open_[k][0] + gap, rank[k])):
            last, vals = open_.pop(key)
            out.append((key, last, vals))

    for ts, key in recs:
        wm = max(wm, ts)
        close([k for k, (last, _) in open_.items() if last + gap < wm])
        if ts + gap < wm:
            late += 1
            continue
        rank.setdefault(key, len(rank))
        last, vals = open_.get(key, (ts, []))
        open_[key] = (max(last, ts), [*vals, ts])
    close(list(open_))
    return out, late


def _run(w: Any, recs: list[tuple[int, str]]) -> list[Any]:
    out: list[Any] = []
    for ts, key in recs:
        out += feed(w, ts, key)
    out += w.flush()
    return [(k, t, [f["v"] for _ts, f in s]) for k, t, s in out]


@settings(max_examples=200, deadline=None)
@given(_records, st.integers(1, 12), st.integers(1, 12))
def test_time_windows_match_model(recs: list[tuple[int, str]], size: int, slide: int) -> None:
    slide = min(slide, size)
    c = Counters()
    got = _run(TimeWindow(size, slide, list, _add, c), recs)
    want, late = _time_model(size, slide, recs)
    assert got == want
    assert c.late_events == late


@settings(max_examples=200, deadline=None)
@given(_records, st.integers(0, 10))
def test_sessions_match_model(recs: list[tuple[int, str]], gap: int) -> None:
    c = Counters()
    got = _run(SessionWindow(max(gap, 1), list, _add, c), recs)
    want, late = _session_model(max(gap, 1), recs)
    assert got == want
    assert c.late_events == late
    assert c.sessions_closed == len(want)
