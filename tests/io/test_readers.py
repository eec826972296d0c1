"""The `.evt` reader: lines, times, text and JSON events, every diagnostic, and the fast path."""

from __future__ import annotations

import io
import json
import random
import time
import tracemalloc
from pathlib import Path

import pytest

from tests.conftest import CONFORMANCE, ROOT, needs_shared
from varpulis_mp.errors import EventFileError
from varpulis_mp.io import evt_shape_memory
from varpulis_mp.io.evt_fast import compile_shape, fast_kinds, shape_set
from varpulis_mp.io.readers import (
    LINE_LIMIT,
    Event,
    EventParser,
    check_events,
    iter_lines,
    read_events,
)

# Copies of the few conformance files these tests read, so that they run without ../shared.
COPIED = Path(__file__).resolve().parent / "data" / "conformance"


def events(data: bytes | str, streams: tuple[str, ...] = (), default_time: int | None = None) -> list[Event]:
    raw = data.encode() if isinstance(data, str) else data
    clock = (lambda: default_time) if default_time is not None else None
    return list(read_events(io.BytesIO(raw), "e.evt", streams, clock))


def one(line: str, **kw: object) -> Event:
    found = events(line + "\n", **kw)  # type: ignore[arg-type]
    assert len(found) == 1
    return found[0]


def error(data: bytes | str, streams: tuple[str, ...] = ()) -> tuple[int, int, str]:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(EventFileError) as info:
        check_events(io.BytesIO(raw), "e.evt", streams)
    diags = info.value.diagnostics
    assert len(diags) == 1
    d = diags[0]
    # read_events (which builds events) reports exactly what check_events (which counts them) does.
    with pytest.raises(EventFileError) as again:
        list(read_events(io.BytesIO(raw), "e.evt", streams))
    assert again.value.diagnostics == diags
    assert d.path == "e.evt" and d.severity == "error"
    return d.pos.line, d.pos.col, d.message


def canon(e: Event) -> tuple[str, int, str, int]:
    # repr tells True from 1 and 1.0 from 1, which == on dicts does not.
    return (e.type, e.ts, repr(e.fields), e.line)


# ---------------------------------------------------------------------------------------------------
# The conformance event file


@needs_shared
def test_copied_conformance_files_are_the_shared_ones() -> None:
    copies = sorted(p for p in COPIED.rglob("*") if p.is_file())
    assert len(copies) == 4
    for copy in copies:
        assert copy.read_bytes() == (CONFORMANCE / copy.relative_to(COPIED)).read_bytes(), copy


def test_evt_format_conformance_file_gives_the_expected_readings() -> None:
    case = COPIED / "evt_format"
    got = [e for e in read_events(case / "events.evt", "events.evt") if e.type == "Reading"]
    expected = [json.loads(line) for line in (case / "expected.jsonl").read_text().splitlines()]
    assert [(e.ts, json.dumps(e.fields)) for e in got] == [(x["ts"], json.dumps(x["fields"])) for x in expected]
    for e, x in zip(got, expected, strict=True):
        assert [type(v) for v in e.fields.values()] == [type(v) for v in x["fields"].values()]
    assert check_events(case / "events.evt", "events.evt") == 17


@pytest.mark.parametrize(("case", "where", "message"), [
    ("evt_bad_batch", (2, 7), "invalid BATCH time"),
    ("evt_trailing_text", (2, 53), "unexpected text after '}'"),
])
def test_conformance_error_cases(case: str, where: tuple[int, int], message: str) -> None:
    path = COPIED / "errors" / case / "events.evt"
    seen: list[Event] = []
    with pytest.raises(EventFileError) as info:
        seen.extend(read_events(path, "events.evt"))
    d = info.value.diagnostics[0]
    assert (d.pos.line, d.pos.col) == where and message in d.message
    assert len(seen) == 1  # the event before the bad line was yielded first
    assert d.render().startswith(f"events.evt:{where[0]}:{where[1]}: error: ")


# ---------------------------------------------------------------------------------------------------
# Times and BATCH


@pytest.mark.parametrize(("at", "ms"), [("@1500", 1500), ("@1500ms", 1500), ("@2s", 2000), ("@1m", 60000),
                                        ("@2h", 7_200_000), ("@9223372036854775807", 2**63 - 1), ("@007", 7)])
def test_at_times(at: str, ms: int) -> None:
    assert one(f"{at} A {{ x: 1 }}").ts == ms
    assert one(f'{at}\t{{"type": "A"}}').ts == ms


def test_batch_and_at_combinations() -> None:
    got = events("A {}\n@7 A {}\nBATCH 5s\nA {}\n@3 A {}\nA {}\nBATCH\t1m \nA{}\n"
                 '{"type": "A"}\n{"type": "A", "ts": 4}\n@9 {"type": "A"}\n')
    assert [e.ts for e in got] == [0, 7, 5000, 3, 5000, 60000, 60000, 4, 9]
    assert [e.line for e in got] == [1, 2, 4, 5, 6, 8, 9, 10, 11]


def test_default_time_applies_only_before_any_batch() -> None:
    got = events('A {}\n{"type": "A"}\n@3 A {}\nBATCH 0\nA {}\n', default_time=123)
    assert [e.ts for e in got] == [123, 123, 3, 0]


def test_comments_and_empty_lines_are_skipped() -> None:
    got = events("# c\n// c\n\n   \n\t# c\nA { x: 1 }\n")
    assert [(e.type, e.line) for e in got] == [("A", 6)]


@pytest.mark.parametrize(("line", "col"), [
    ("@12x A {}", 2), ("@ A {}", 2), ("@-5 A {}", 2), ("@1.5 A {}", 2), ("@5min A {}", 2),
    ("@9223372036854775808 A {}", 2), ("@2562047788015216h A {}", 2), ("  @1_000 A {}", 4),
    ("@5A {}", 2), ("@" + "9" * 5000 + " A {}", 2),
])
def test_invalid_event_time(line: str, col: int) -> None:
    assert error(line) == (1, col, "invalid event time")


@pytest.mark.parametrize(("line", "col"), [
    ("BATCH soon", 7), ("BATCH", 6), ("BATCH   ", 9), ("BATCH 5 x", 7), ("BATCH -5", 7), ("BATCH 5 s", 7),
    ("  BATCH\t2x", 9), ("BATCH 99999999999999999999", 7), ("BATCH:5", 6),
])
def test_invalid_batch_time(line: str, col: int) -> None:
    assert error("A {}\n" + line + "\n") == (2, col, "invalid BATCH time")


# ---------------------------------------------------------------------------------------------------
# Text events


def test_text_values_of_every_kind() -> None:
    e = one(r"""A { s: "a\"b\\c\n\t\r", q: 'it\'s "x"', w: active, w2: a.b-c_9, t: true, f: false,"""
            r""" n: null, nil_v: nil, i: -7, p: +3, big: 9223372036854775807, small: -9223372036854775808,"""
            r""" fl: 1.5, dot: 1., half: .5, e: 2e3, e2: -1.5E-2, z: 007, l: [1, [2, []], "x"], u: "é😀" }""")
    assert list(e.fields.items()) == [
        ("s", 'a"b\\c\n\t\r'), ("q", "it's \"x\""), ("w", "active"), ("w2", "a.b-c_9"), ("t", True),
        ("f", False), ("n", None), ("nil_v", None), ("i", -7), ("p", 3), ("big", 2**63 - 1),
        ("small", -(2**63)), ("fl", 1.5), ("dot", 1.0), ("half", 0.5), ("e", 2000.0), ("e2", -0.015),
        ("z", 7), ("l", [1, [2, []], "x"]), ("u", "é😀"),
    ]
    assert type(e.fields["e"]) is float and type(e.fields["i"]) is int and e.fields["t"] is True


def test_text_event_layouts() -> None:
    assert one("A{}").fields == {}
    assert one("  A  {  }  ;  ").fields == {}
    assert one("A{x:1,y:2,}").fields == {"x": 1, "y": 2}
    assert one("A { if: 1, true_x: 2 };").fields == {"if": 1, "true_x": 2}
    assert one("A { x: [ 1 , 2 , ] }").fields == {"x": [1, 2]}
    deep = "[" * 5000 + "]" * 5000
    value = one(f"A {{ x: {deep} }}").fields["x"]
    for _ in range(4999):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == []


@pytest.mark.parametrize(("line", "col", "message"), [
    ("123 { }", 1, "expected an event type"),
    ("@5 9A {}", 4, "expected an event type"),
    ("@5", 3, "expected an event type"),
    ("A x", 3, "expected '{'"),
    ("A   ", 5, "expected '{'"),
    ("A", 2, "expected '{'"),
    ("A { x 1 }", 7, "expected ':' after field name"),
    ("A { x", 6, "expected ':' after field name"),
    ("A { x: }", 8, "invalid value"),
    ("A { x: , }", 8, "invalid value"),
    ("A { x: 1a }", 8, "invalid value"),
    ("A { x: 'a'b }", 8, "invalid value"),
    ("A { x: @ }", 8, "invalid value"),
    ("A { x: 1.2.3 }", 8, "invalid value"),
    ("A { x: [1 2] }", 11, "invalid value"),
    ("A { x: [1, 2 }", 14, "invalid value"),
    ("A { x: [1, 2x] }", 12, "invalid value"),
    ("A { x: {} }", 8, "invalid value"),
    ('A { x: "abc }', 8, "unterminated string"),
    ("A { x: 'abc }", 8, "unterminated string"),
    ('A { x: "a\\qb" }', 10, "invalid escape sequence"),
    ('A { x: "a\\u0041" }', 10, "invalid escape sequence"),
    ("A { x: 9223372036854775808 }", 8, "number out of range"),
    ("A { x: -9223372036854775809 }", 8, "number out of range"),
    ("A { x: " + "9" * 5000 + " }", 8, "number out of range"),
    ("A { x: 1e999 }", 8, "number out of range"),
    ("A { x: [1, -1.5e400] }", 12, "number out of range"),
    ("A { x: 1 } y", 12, "unexpected text after '}'"),
    ("A { }; ;", 8, "unexpected text after '}'"),
    ("A { } # no trailing comments", 7, "unexpected text after '}'"),
    ("A { x: 1, x: 2 }", 11, "duplicate field 'x'"),
    ("A { x: inf }", 8, "non-finite numbers are not allowed"),
    ("A { x: Infinity }", 8, "non-finite numbers are not allowed"),
    ("A { x: NaN }", 8, "non-finite numbers are not allowed"),
    ("A { x: [-inf] }", 9, "non-finite numbers are not allowed"),
])
def test_text_event_errors(line: str, col: int, message: str) -> None:
    got = error(line)
    assert got[:2] == (1, col) and message in got[2], got


def test_columns_count_code_points_and_tabs() -> None:
    assert error('\tA { s: "éé😀", x: 1 } z') == (1, 23, "unexpected text after '}'")


def test_event_type_that_names_a_stream() -> None:
    assert error("  @5 S { x: 1 }", ("S",)) == (1, 6, "event type 'S' is a stream of the program")
    assert error('@5 {"type": "S"}', ("S",)) == (1, 4, "event type 'S' is a stream of the program")
    assert [e.type for e in events("Sx {}\nA {}\n", ("S",))] == ["Sx", "A"]


# ---------------------------------------------------------------------------------------------------
# JSON events (§11.3)


def test_json_events() -> None:
    e = one('{"event_type": "A", "ts": 7, "b": true, "n": null, "i": -0, "f": 1.0, "g": 1e2, "l": [1, ["x"]],'
            ' "u": "\\ud83d\\ude00\\u00e9"}   \t')
    assert (e.type, e.ts) == ("A", 7)
    assert list(e.fields.items()) == [("b", True), ("n", None), ("i", 0), ("f", 1.0), ("g", 100.0),
                                      ("l", [1, ["x"]]), ("u", "😀é")]
    assert type(e.fields["g"]) is float
    d = one('@4 {"data": {"ts": 1, "type": "x"}, "type": "B"}')
    assert (d.type, d.ts, d.fields) == ("B", 4, {"ts": 1, "type": "x"})
    assert one('{"type": "C", "timestamp": 9223372036854775807}').ts == 2**63 - 1


@pytest.mark.parametrize(("text", "reason"), [
    ('{"type": "A",}', "not valid JSON"),
    ('{"type": "A"', "not valid JSON"),
    ('{"type": "A"} x', "not valid JSON"),
    ('{"type": "A"}{}', "not valid JSON"),
    ('{"type": "A", "x": 01}', "not valid JSON"),
    ("{'type': 'A'}", "not valid JSON"),
    ('{"type": "A", "x": "a\tb"}', "not valid JSON"),
    ('{"type": "A", "type": "B"}', "duplicate member 'type'"),
    ('{"type": "A", "x": [{"k": 1, "k": 2}]}', "duplicate member 'k'"),
    ('{"type": "A", "x": NaN}', "non-finite numbers are not allowed"),
    ('{"type": "A", "x": -Infinity}', "non-finite numbers are not allowed"),
    ('{"type": "A", "x": 9223372036854775808}', "number out of range"),
    ('{"type": "A", "x": -9223372036854775809}', "number out of range"),
    ('{"type": "A", "x": 1e999}', "number out of range"),
    ('{"type": "A", "x": "\\ud800"}', "lone surrogate"),
    ('{"type": "A", "\\udc00": 1}', "lone surrogate"),
    ('{"type": "A", "x": ["\\ude00\\ud83d"]}', "lone surrogate"),
    # 2 (not an object) cannot happen: the text starts with `{`.
    ("{}", "missing event_type"),
    # 3: the event type
    ('{"event_type": "A", "type": "A"}', "both event_type and type"),
    ('{"type": 5}', "missing event_type"),
    ('{"x": 1}', "missing event_type"),
    ('{"data": 5}', "missing event_type"),
    # 4: the time
    ('{"type": "A", "ts": -1}', "bad ts"),
    ('{"type": "A", "ts": 1.0}', "bad ts"),
    ('{"type": "A", "ts": 1e3}', "bad ts"),
    ('{"type": "A", "ts": true}', "bad ts"),
    ('{"type": "A", "ts": "5"}', "bad ts"),
    ('{"type": "A", "timestamp": null}', "bad timestamp"),
    ('{"type": "A", "ts": -1, "data": 5}', "bad ts"),
    # 5: data
    ('{"type": "A", "data": 5}', "data must be an object"),
    ('{"type": "A", "data": [1]}', "data must be an object"),
    ('{"type": "A", "x": 1, "data": {}, "y": 2}', "unknown member 'x'"),
    ('{"type": "A", "data": 5, "x": 1}', "data must be an object"),
    # 6: nested objects
    ('{"type": "A", "x": {}}', "nested objects are not supported"),
    ('{"type": "A", "x": [1, [{}]]}', "nested objects are not supported"),
    ('{"type": "A", "data": {"x": {"y": 1}}}', "nested objects are not supported"),
])
def test_json_event_errors(text: str, reason: str) -> None:
    assert error("  " + text) == (1, 3, "invalid JSON event: " + reason)


def test_deeply_nested_json_is_rejected_quickly() -> None:
    start = time.monotonic()
    line, col, message = error('{"type": "A", "x": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert (line, col) == (1, 1) and message.startswith("invalid JSON event: ")
    assert time.monotonic() - start < 1.0


def test_parse_line_takes_the_fast_path_only_for_a_whole_line() -> None:
    parser = EventParser("e")
    assert parser.parse_line("A { x: 1 }", 1) == Event("A", 0, {"x": 1}, 1)
    assert parser.parse_line("A { x: 2 }", 2) == Event("A", 0, {"x": 2}, 2)
    with pytest.raises(EventFileError):
        parser.parse_line("A { x: 3 }\nB {}", 3)


def test_json_step_order() -> None:
    assert error('{"type": "S", "x": {}}', ("S",))[2] == "invalid JSON event: nested objects are not supported"
    assert error('{"type": "A", "type": 5, "ts": -1}')[2] == "invalid JSON event: duplicate member 'type'"
    assert error('{"ts": -1}')[2] == "invalid JSON event: missing event_type"


@pytest.mark.parametrize(("text", "col"), [
    ('@5 {"type": "A", "ts": 1}', 18),
    ('{"ts": 1, "type": "A", "timestamp": 2}', 24),
    ('@5 {"timestamp": 1, "type": "A", "ts": 2}', 5),
    ('{"timestamp" : 1, "type": "A", "x": "\\"ts\\"", "ts": 2}', 47),
    ('{"type": "A", "x": [{"ts": 1}]}', 0),
])
def test_time_given_twice(text: str, col: int) -> None:
    if col == 0:
        assert "nested objects" in error(text)[2]
        return
    line, c, message = error(text)
    assert (line, c, message) == (1, col, "the event time is given twice")
    assert text[c - 1] == '"'


# ---------------------------------------------------------------------------------------------------
# Lines: UTF-8, BOM, CRLF, the 1 MiB limit


def test_crlf_and_lone_cr() -> None:
    got = events(b'A { x: 1 }\r\nB { s: "a\rb" }\r\n\r\n{"type": "C"}\r\n')
    assert [(e.type, e.fields, e.line) for e in got] == [("A", {"x": 1}, 1), ("B", {"s": "a\rb"}, 2), ("C", {}, 4)]
    # A CR not followed by LF is an ordinary character, also at the very end of the file.
    assert error(b"A {}\r\nA {}\r") == (2, 5, "unexpected text after '}'")
    assert [t for _, t in iter_lines(io.BytesIO(b"a\r\r\nb\rc"), "e")] == ["a\r", "b\rc"]


def test_bom_is_skipped_only_at_the_very_start() -> None:
    assert [e.fields for e in events(b"\xef\xbb\xbfA { x: 1 }\n")] == [{"x": 1}]
    assert error(b"\xef\xbb\xbfA x") == (1, 3, "expected '{'")
    assert error(b"A {}\n\xef\xbb\xbfA {}") == (2, 1, "expected an event type")
    assert list(iter_lines(io.BytesIO(b"\xef\xbb\xbf"), "e")) == []


def test_iter_lines_numbers_and_last_line() -> None:
    assert list(iter_lines(io.BytesIO(b"a\n\nb"), "e")) == [(1, "a"), (2, ""), (3, "b")]
    assert list(iter_lines(io.BytesIO(b"a\n"), "e")) == [(1, "a")]
    assert list(iter_lines(io.BytesIO(b""), "e")) == []


@pytest.mark.parametrize(("data", "where"), [
    (b'A { s: "ab\xff" }', (1, 11)),
    ('A {}\nB { s: "é'.encode() + b"\xc3\x28" + b'" }\n', (2, 10)),
    (b"A {}\nA {}\n\xed\xa0\x80\n", (3, 1)),  # an encoded surrogate is not UTF-8
    (b"A {}\n\xf0\x9f\x98", (2, 1)),  # truncated at the end of the file
])
def test_invalid_utf8(data: bytes, where: tuple[int, int]) -> None:
    assert error(data) == (*where, "invalid UTF-8")


def test_invalid_utf8_after_earlier_events_yields_them_first() -> None:
    seen: list[int] = []
    with pytest.raises(EventFileError):
        for e in read_events(io.BytesIO(b"A {}\n" * 3 + b"\x80\n"), "e"):
            seen.append(e.line)
    assert seen == [1, 2, 3]


def test_line_limit_exact_and_one_over() -> None:
    body = 'A { s: "" }'
    fill = "x" * (LINE_LIMIT - len(body))
    ok = f'A {{ s: "{fill}" }}'
    assert len(ok.encode()) == LINE_LIMIT
    assert check_events(io.BytesIO(ok.encode() + b"\r\n" + ok.encode()), "e") == 2
    over = f'A {{ s: "{fill}x" }}'
    assert error(over.encode() + b"\n") == (1, LINE_LIMIT + 1, "event line is longer than 1 MiB")
    assert error(b"A {}\n" + over.encode()) == (2, LINE_LIMIT + 1, "event line is longer than 1 MiB")


def test_line_limit_counts_bytes_and_columns_count_characters() -> None:
    line = "x" + "é" * (LINE_LIMIT // 2)  # 1 + LIMIT bytes: the last é straddles the limit
    assert error(line + "\n") == (1, LINE_LIMIT // 2 + 1, "event line is longer than 1 MiB")
    # An invalid byte past the limit: the line is too long first.
    assert error(b"x" * (LINE_LIMIT + 5) + b"\xff\n")[2] == "event line is longer than 1 MiB"
    # An invalid byte within the limit comes first.
    assert error(b"x" * 10 + b"\xff" + b"x" * LINE_LIMIT) == (1, 11, "invalid UTF-8")


class _Endless(io.RawIOBase):
    """An endless line of `x`, counting what was read."""

    def __init__(self) -> None:
        self.given = 0

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        chunk = min(n if n > 0 else 65536, 65536)
        self.given += chunk
        return b"x" * chunk


def test_long_line_is_rejected_without_reading_it_whole() -> None:
    source = _Endless()
    start = time.monotonic()
    with pytest.raises(EventFileError) as info:
        check_events(source, "stdin")  # type: ignore[arg-type]
    assert time.monotonic() - start < 1.0
    assert source.given <= LINE_LIMIT + 2 * 65536
    d = info.value.diagnostics[0]
    assert (d.pos.line, d.pos.col, d.message) == (1, LINE_LIMIT + 1, "event line is longer than 1 MiB")
    assert len(d.render()) < 2000


@pytest.mark.parametrize("size", [2 * LINE_LIMIT, 16 * LINE_LIMIT])
def test_long_line_in_a_file(tmp_path: Path, size: int) -> None:
    path = tmp_path / "long.evt"
    path.write_bytes(b"A { x: 1 }\n" + b"A { s: \"" + b"y" * size + b"\" }\nA {}\n")
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(EventFileError) as info:
            check_events(path, "long.evt")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 1.0
    d = info.value.diagnostics[0]
    assert (d.pos.line, d.pos.col, d.message) == (2, LINE_LIMIT + 1, "event line is longer than 1 MiB")
    # A few chunks of the line at most, whatever its length.
    assert peak < 6 * LINE_LIMIT


def test_stdin_like_source_and_path_source(tmp_path: Path) -> None:
    path = tmp_path / "e.evt"
    path.write_text("A { x: 1 }\nB {}\n")
    assert [e.type for e in read_events(path, "e.evt")] == ["A", "B"]
    assert [e.type for e in read_events(str(path), "e.evt")] == ["A", "B"]
    with open(path, "rb") as f:
        assert [e.type for e in read_events(f, "e.evt")] == ["A", "B"]


class _Trickle(io.RawIOBase):
    """A pipe-like source giving its bytes a few at a time, as live input arrives."""

    def __init__(self, data: bytes, seed: int) -> None:
        self.data = data
        self.pos = 0
        self.rng = random.Random(seed)

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        size = self.rng.randint(1, 3)
        piece = self.data[self.pos: self.pos + size]
        self.pos += len(piece)
        return piece


@pytest.mark.parametrize("seed", range(5))
def test_small_reads_split_anywhere(seed: int) -> None:
    data = '\ufeffA { s: "é😀" }\r\nBATCH 2s\r\n{"type": "B", "x": [1]}\r\n\r\nC { t: 1.5 }'.encode()
    got = list(read_events(_Trickle(data, seed), "stdin"))  # type: ignore[arg-type]
    expected = list(read_events(io.BytesIO(data), "stdin"))
    assert [canon(e) for e in got] == [canon(e) for e in expected]
    assert [(e.type, e.ts, e.line) for e in got] == [("A", 0, 1), ("B", 2000, 3), ("C", 2000, 5)]
    assert got[0].fields == {"s": "é😀"}


def test_many_chunks_give_the_same_lines(tmp_path: Path) -> None:
    lines = [f'@{i} A {{ i: {i}, s: "{"é" * (i % 7)}" }}' for i in range(60_000)]
    path = tmp_path / "big.evt"
    path.write_text("\r\n".join(lines) + "\n", encoding="utf-8")
    got = list(read_events(path, "big.evt"))
    assert [e.fields["i"] for e in got] == list(range(60_000))
    assert [e.line for e in got] == list(range(1, 60_001))


# ---------------------------------------------------------------------------------------------------
# line_type and the parser's state


def test_line_type() -> None:
    parser = EventParser("e", ("S",))
    assert parser.line_type("# c") is None
    assert parser.line_type("BATCH 5s") is None and parser.batch_time == 5000
    assert parser.line_type("@5 Temp { x: 1 }") == "Temp"
    assert parser.line_type(' {"type": "J"}') == "J"
    with pytest.raises(EventFileError):
        parser.line_type_at("S { }", 3)
    with pytest.raises(EventFileError) as info:
        parser.line_type_at("BATCH x", 4)
    assert info.value.diagnostics[0].pos.line == 4
    assert parser.parse_line("A {}", 9) == Event("A", 5000, {}, 9)
    assert parser.line_type("@5 BATCH { }") == "BATCH"
    for bad in ("@99999999999999999999 A { }", "BATCH { }", "@5x A {}", "@5 S {}"):
        with pytest.raises(EventFileError):
            parser.line_type(bad)
    assert parser.line_type("\t@2m Temp\t{ x: 1 }") == "Temp"
    assert parser.batch_time == 5000


# ---------------------------------------------------------------------------------------------------
# Fast path == precise parser


def _precise(line: str) -> Event | None | str:
    parser = EventParser("e")
    try:
        return parser._parse_precise(line, len(line) - len(line.lstrip(" \t")), 1)
    except Exception as exc:  # LineProblem
        return f"error: {exc}"


def _fast(line: str) -> Event | None:
    """The fast path's event for a line, learning its shape from the precise parser's result."""
    precise = _precise(line)
    if not isinstance(precise, Event):
        return None
    kinds = fast_kinds(precise.type, tuple(precise.fields), line)
    if kinds is None:
        return None
    shape = compile_shape(precise.type, tuple(precise.fields), kinds)
    m = shape.pattern.match(line)
    assert m is not None
    return shape.make(m.groups(), 1, lambda: 0)


SIMPLE_LINES = [
    '@1234 SensorReading { sensor_id: "S17", temperature: 72.5, value: 103.25, zone: "zone3" }',
    "A{x:1,y:-2,z:+3,w:1.,v:.5,u:2e3,t:-1.5E-2,}",
    "\t@5s  A { b: true, c: false, n: null, m: nil, w: active, w2: a.b-c, e: \"\" } ; ",
    "A {}",
    "@1h B { big: 999999999999999999, f: 123456789012345.25 }",
    "C { s: \"with 'single' and é😀 and \r inside\" }",
]


@pytest.mark.parametrize("line", SIMPLE_LINES)
def test_fast_path_equals_precise_parser(line: str) -> None:
    fast = _fast(line)
    precise = _precise(line)
    assert isinstance(fast, Event) and isinstance(precise, Event)
    assert canon(fast) == canon(precise)


PROJECT_EVENT_FILES = [*sorted((ROOT / "examples").glob("*.evt")), COPIED / "evt_format" / "events.evt"]
CONFORMANCE_EVENT_FILES = sorted(CONFORMANCE.glob("*/events.evt"))  # none without ../shared


def test_project_event_files_exist() -> None:
    assert len(PROJECT_EVENT_FILES) >= 8 and all(p.is_file() for p in PROJECT_EVENT_FILES)


@needs_shared
def test_conformance_event_files_exist() -> None:
    assert len(CONFORMANCE_EVENT_FILES) >= 10


@pytest.mark.parametrize("path", PROJECT_EVENT_FILES + CONFORMANCE_EVENT_FILES,
                         ids=lambda p: str(p.relative_to(ROOT if p.is_relative_to(ROOT) else ROOT.parent)))
def test_fast_path_on_event_files(path: Path) -> None:
    # The whole reader (fast path where it applies) against the precise parser alone, line by line.
    precise = EventParser("events.evt")
    expected = []
    for lineno, line in iter_lines(path, "events.evt"):
        head = len(line) - len(line.lstrip(" \t"))
        event = precise._parse_precise(line, head, lineno)
        if event is not None:
            expected.append(canon(event))
    assert [canon(e) for e in read_events(path, "events.evt")] == expected
    assert check_events(path, "events.evt") == len(expected)
    for _, line in iter_lines(path, "events.evt"):
        fast = _fast(line)
        if fast is not None:
            single = _precise(line)
            assert isinstance(single, Event) and canon(fast) == canon(single)


def test_fast_path_is_taken_on_the_conformance_format_file() -> None:
    path = COPIED / "evt_format" / "events.evt"
    taken = sum(1 for _, line in iter_lines(path, "events.evt") if _fast(line) is not None)
    assert taken >= 8


def test_fast_path_never_accepts_what_the_precise_parser_rejects() -> None:
    rng = random.Random(7)
    alphabet = ' \t"\'\\,:;{}[]@.+-eE0123456789abinftrulsxyzN_'
    for base in SIMPLE_LINES:
        precise = _precise(base)
        assert isinstance(precise, Event)
        kinds = fast_kinds(precise.type, tuple(precise.fields), base)
        assert kinds is not None
        shape = compile_shape(precise.type, tuple(precise.fields), kinds)
        for _ in range(400):
            chars = list(base)
            for _ in range(rng.randint(1, 3)):
                pos = rng.randrange(len(chars) + 1)
                op = rng.random()
                if op < 0.4 and chars:
                    del chars[min(pos, len(chars) - 1)]
                elif op < 0.7 and chars:
                    chars[min(pos, len(chars) - 1)] = rng.choice(alphabet)
                else:
                    chars.insert(pos, rng.choice(alphabet))
            variant = "".join(chars)
            m = shape.pattern.match(variant)
            if m is None:
                continue
            got = shape.make(m.groups(), 1, lambda: 0)
            expected = _precise(variant)
            assert isinstance(expected, Event), (variant, expected)
            assert canon(got) == canon(expected), variant


def test_parser_results_do_not_depend_on_shapes_seen_before() -> None:
    lines = [
        'A { x: 1, s: "a" }', 'A { x: 1.5, s: "b" }', 'A { x: 2, s: c }', 'A { x: "s", s: "d" }',
        "A { x: [1], s: 'e' }", 'A { s: "f", x: 1 }', "BATCH 3", 'A { x: -0, s: "g\\n" }', "@2 A { x: nil, s: h }",
    ] * 3
    warm = EventParser("e")
    got = [warm.parse_line(line, i) for i, line in enumerate(lines, 1)]
    cold = [EventParser("e").parse_line(line, i) for i, line in enumerate(lines, 1)]
    batch = 0
    for g, c, line in zip(got, cold, lines, strict=True):
        if line.startswith("BATCH"):
            batch = 3
            continue
        assert isinstance(g, Event) and isinstance(c, Event)
        assert canon(g) == canon(Event(c.type, c.ts if line.startswith("@") else batch, c.fields, c.line))


# ---------------------------------------------------------------------------------------------------
# Files that mix shapes: the block alternation == the precise parser


def _mixed_line(rng: random.Random, i: int) -> str:
    word = rng.choice(["true", "false", "null", "nil", "on", "a.b-c", "_x", "info", "nano"])
    pick = rng.randrange(16)
    if pick == 0:
        return f"BATCH {rng.randrange(10)}{rng.choice(['', 'ms', 's', 'm', 'h'])}"
    if pick == 1:
        return rng.choice(["", "# note", "  // note", "\t"])
    if pick == 2:
        return f'{{"type": "J", "v": {rng.randrange(100)}, "s": "q"}}'
    if pick == 3:
        return f"D {{ y: {rng.randrange(-9, 9)}, z: 'single' }}"
    if pick == 4:
        return f'A {{ x: {rng.randrange(9)}, s: "esc\\n{i}" }}'
    if pick == 5:
        return f'A {{ s: "{i}", x: {rng.randrange(9)} }}'
    if pick == 6:
        return "C {}" + rng.choice(["", " ;", "\t"])
    if pick == 7:
        return f'@{i}{rng.choice(["", "ms", "s"])} A {{ x: {rng.uniform(-5, 5):.3f}, s: "f" }}'
    if pick in (8, 9):
        return f"\t B{{f:{rng.uniform(0, 9):.2f} , w: {word},}}"
    return f'@{i} A {{ x: {rng.randrange(-10**6, 10**6)}, s: "s{i}" }}'


def _mixed_expected(lines: list[str]) -> list[tuple[str, int, str, int]]:
    precise = EventParser("e.evt")
    expected = []
    for lineno, line in enumerate(lines, 1):
        event = precise._parse_precise(line, len(line) - len(line.lstrip(" \t")), lineno)
        if event is not None:
            expected.append(canon(event))
    return expected


@pytest.mark.parametrize("rebuild", [0, 1, evt_shape_memory.REBUILD_LINES_PER_GROUP])
@pytest.mark.parametrize("seed", range(4))
def test_random_interleavings_of_shapes(monkeypatch: pytest.MonkeyPatch, seed: int, rebuild: int) -> None:
    monkeypatch.setattr(evt_shape_memory, "REBUILD_LINES_PER_GROUP", rebuild)
    rng = random.Random(seed)
    lines = [_mixed_line(rng, i) for i in range(3000)]
    expected = _mixed_expected(lines)
    data = "\n".join(lines)
    assert [canon(e) for e in events(data)] == expected
    assert check_events(io.BytesIO(data.encode()), "e.evt") == len(expected)
    # Blocks cut at random lines take every path: whole blocks, gaps, rebuilds mid-block.
    parser, counter = EventParser("e.evt"), EventParser("e.evt")
    got: list[Event] = []
    count = 0
    start = 0
    while start < len(lines):
        end = min(len(lines), start + rng.choice([1, 2, 7, 50, 400]))
        block = "\n".join(lines[start:end])
        got.extend(parser.parse_block(block, start + 1))
        count += counter.count_block(block, start + 1)
        start = end
    assert [canon(e) for e in got] == expected
    assert count == len(expected)
    alternation = parser.learned._set
    assert alternation is not None and len(alternation.shapes) >= 5


@pytest.mark.parametrize("rebuild", [0, evt_shape_memory.REBUILD_LINES_PER_GROUP])
def test_benchmark_like_mixed_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rebuild: int) -> None:
    monkeypatch.setattr(evt_shape_memory, "REBUILD_LINES_PER_GROUP", rebuild)
    rng = random.Random(3)
    lines = []
    for i in range(30_000):
        kind = i % 3
        if kind == 0:
            lines.append(f'@{i} SensorReading {{ sensor_id: "S{rng.randrange(100)}", temperature: '
                         f'{rng.uniform(0, 120):.2f}, value: {rng.uniform(-10, 200):.2f}, zone: "zone{i % 10}" }}')
        elif kind == 1:
            lines.append(f'@{i} TempReading {{ sensor_id: "S{i % 100}", temperature: {rng.uniform(0, 120):.2f} }}')
        else:
            lines.append(f'@{i} PressureReading {{ sensor_id: "S{i % 7}", pressure: {rng.uniform(950, 1100):.2f} }}')
    path = tmp_path / "mixed.evt"
    path.write_text("\n".join(lines) + "\n")
    expected = _mixed_expected(lines)
    assert [canon(e) for e in read_events(path, "mixed.evt")] == expected
    assert check_events(path, "mixed.evt") == len(expected)


@pytest.mark.parametrize("bad", ['TempReading { sensor_id: "S1", temperature: 1e999 }',
                                 'TempReading { sensor_id: "S1", temperature: inf }',
                                 '@1x TempReading { sensor_id: "S1", temperature: 1.5 }',
                                 'TempReading { sensor_id: "S1", temperature: 1.5 } x',
                                 'TempReading { sensor_id: "S1", sensor_id: 1.5 }',
                                 'S { v: 1 }'])
def test_errors_in_mixed_files_stop_at_their_line(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setattr(evt_shape_memory, "REBUILD_LINES_PER_GROUP", 0)
    good = ['@1 TempReading { sensor_id: "S1", temperature: 1.5 }', 'PressureReading { sensor_id: "S", p: 9.5 }',
            "BATCH 4", 'TempReading { sensor_id: "S2", temperature: 2 }']
    lines = good * 50 + [bad] + good
    data = "\n".join(lines)
    line, _, _ = error(data, ("S",))
    assert line == 201
    seen: list[Event] = []
    with pytest.raises(EventFileError):
        for e in read_events(io.BytesIO(data.encode()), "e.evt", ("S",)):
            seen.append(e)
    assert len(seen) == 150


def test_alternation_never_accepts_what_the_precise_parser_rejects() -> None:
    rng = random.Random(11)
    alphabet = ' \t"\'\\,:;{}[]@.+-eE0123456789abinftrulsxyzN_\n'
    shapes = []
    for base in SIMPLE_LINES:
        precise = _precise(base)
        assert isinstance(precise, Event)
        kinds = fast_kinds(precise.type, tuple(precise.fields), base)
        assert kinds is not None
        shapes.append(compile_shape(precise.type, tuple(precise.fields), kinds))
    alternation = shape_set(tuple(shapes))
    for base in SIMPLE_LINES:
        for _ in range(400):
            chars = list(base)
            for _ in range(rng.randint(1, 3)):
                pos = rng.randrange(len(chars) + 1)
                if rng.random() < 0.5 or not chars:
                    chars.insert(pos, rng.choice(alphabet))
                else:
                    chars[min(pos, len(chars) - 1)] = rng.choice(alphabet)
            variant = "".join(chars)
            rows = alternation.pattern.findall(variant)
            if "\n" in variant or len(rows) != 1:
                continue
            (got,) = list(alternation.run(rows, 1, lambda: 0))
            expected = _precise(variant)
            assert isinstance(expected, Event), (variant, expected)
            assert canon(got) == canon(expected), variant
    # Each base line is matched by its own branch, through findall and through match groups alike.
    for base in SIMPLE_LINES:
        m = alternation.pattern.fullmatch(base)
        assert m is not None
        (via_groups,) = list(alternation.run([m.groups()], 1, lambda: 0))
        (via_findall,) = list(alternation.run(alternation.pattern.findall(base), 1, lambda: 0))
        expected = _precise(base)
        assert isinstance(expected, Event)
        assert canon(via_groups) == canon(via_findall) == canon(Event(expected.type, expected.ts, expected.fields, 1))
