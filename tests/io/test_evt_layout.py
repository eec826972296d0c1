"""Layouts (io/evt_layout.py): a subset of their shape's lines with the same rows, and key texts that
are the precise parser's values; and the learned shapes that try them first (runtime/shapes.py)."""

from __future__ import annotations

import pytest

from tests.io.test_readers import SIMPLE_LINES, _precise
from varpulis_mp.io.evt_fast import compile_shape, fast_kinds, shape_set
from varpulis_mp.io.evt_layout import Layout, kind_value, layout, layout_alternation
from varpulis_mp.io.readers import Event, EventParser
from varpulis_mp.runtime.shapes import learned_shape

LINES = [*SIMPLE_LINES, '@7 T { k: -12, w: on, f: 1e5 , s: "x" ,}', "@3ms U{k:abc,v:2.5};"]
# Characters a mutation puts in: spacing, delimiters, value characters.
ALPHABET = ' \t"\\,:;{}@.+-eE019abinfkN_'


def shape_and_layout(line: str) -> tuple[Event, str, Layout]:
    event = _precise(line)
    assert isinstance(event, Event)
    kinds = fast_kinds(event.type, tuple(event.fields), line)
    assert kinds is not None
    found = layout(compile_shape(event.type, tuple(event.fields), kinds), line)
    assert found is not None
    return event, kinds, found


def edits(base: str) -> list[str]:
    """Every line one edit away from `base`: a character removed, replaced or put in."""
    out = [base[:p] + base[p + 1:] for p in range(len(base))]
    for p in range(len(base) + 1):
        out += [base[:p] + c + base[p + 1:] for c in ALPHABET if p < len(base)]
        out += [base[:p] + c + base[p:] for c in ALPHABET]
    return out


@pytest.mark.parametrize("line", LINES)
def test_a_layout_matches_its_sample_with_the_shapes_rows(line: str) -> None:
    event, kinds, lay = shape_and_layout(line)
    whole = shape_set((compile_shape(event.type, tuple(event.fields), kinds),)).pattern
    assert lay.pattern.findall(line) == whole.findall(line) and len(whole.findall(line)) == 1
    for k, name in enumerate(event.fields):
        texts = lay.keys(k, line)
        assert len(texts) == 1 and canon_value(kind_value(kinds[k])(texts[0])) == canon_value(event.fields[name])


def canon_value(value: object) -> tuple[str, object]:
    return type(value).__name__, value


@pytest.mark.parametrize("line", LINES)
def test_what_a_layout_reads_the_shape_and_the_precise_parser_read_alike(line: str) -> None:
    event, kinds, lay = shape_and_layout(line)
    whole = shape_set((compile_shape(event.type, tuple(event.fields), kinds),)).pattern
    names = list(event.fields)
    compared = 0
    for variant in edits(line):
        rows = lay.pattern.findall(variant)
        if rows:  # a subset of the shape's lines, with the same rows
            assert whole.findall(variant) == rows, variant
        precise = _precise(variant)
        for k, name in enumerate(names):
            texts = lay.keys(k, variant)
            assert len(texts) <= 1
            if texts and isinstance(precise, Event):
                # A valid line whose start the cut layout reads has that field's value there.
                assert name in precise.fields, variant
                assert canon_value(kind_value(kinds[k])(texts[0])) == canon_value(precise.fields[name]), variant
                compared += 1
    assert compared >= 10 * len(names), compared


def test_keys_give_one_text_per_line_read_and_only_at_line_starts() -> None:
    _, _, lay = shape_and_layout('@1 T { k: "a", v: 1.5 }')
    text = '@2 T { k: "b", v: 2.5 }\n# @3 T { k: "c", v: 1.0 }\n@4 T { k: "d", v: 1 }\n\n@5 T {  k: "e", v: 1.0 }'
    assert lay.keys(0, text) == ["b", "d"]
    assert lay.keys(1, text) == ["2.5"]  # the int is not the layout's float
    assert lay.pattern.findall(text) == [("2", "", "T", "b", "2.5")]


def test_a_learned_shape_takes_the_layout_of_a_block_only_its_shape_covers() -> None:
    parser = EventParser("e")
    sample = '@1 T { k: "a", v: 1.5 }'
    event = parser.parse_line(sample, 0)
    assert event is not None
    learned = learned_shape(event, sample)
    assert learned is not None and learned.layout is not None
    spaced = "\n".join(f'@{i}  T {{k: "a{i}", v: {i}.5}}' for i in range(4))
    assert learned.layout.pattern.findall(spaced) == []
    rows = learned.rows(spaced, 4)
    assert rows is not None and [r[3] for r in rows] == ["a0", "a1", "a2", "a3"]
    assert learned.layout.pattern.findall(spaced) == rows  # now the layout of that block's lines
    assert learned.covers(spaced + "\n" + sample, 5) and not learned.covers(spaced + "\n@9 T { k: 1 }", 5)


def test_a_learned_shape_whose_lines_keep_changing_their_spacing_stops_trying_layouts() -> None:
    sample = '@1 T { k: "a", v: 1.5 }'
    event = EventParser("e").parse_line(sample, 0)
    assert event is not None
    learned = learned_shape(event, sample)
    assert learned is not None
    for n in range(1, 6):
        spaced = "\n".join(f'@{i}{" " * n}T {{ k: "a", v: 1.5 }}' for i in range(3))
        assert learned.rows(spaced, 3) is not None
    assert learned.layout is None and learned.rows(sample, 1) is not None


# -- the layouts of a reader's block alternation (io/evt_shape_memory.py, io/evt_block_scan.py) ----

MIXED = ['@1 A { id: "a", v: 1.5 }', '@2 B { id: "b", n: 3 }', '@3 C { id: "c", on: true, s: "x" }']


def test_the_layout_alternation_gives_the_alternations_rows_for_every_line_it_matches() -> None:
    found = [shape_and_layout(line) for line in MIXED]
    shapes = tuple(compile_shape(e.type, tuple(e.fields), kinds) for e, kinds, _ in found)
    whole = shape_set(shapes).pattern
    lays = layout_alternation(tuple(lay for _, _, lay in found))
    assert lays is not None and lays.groups == whole.groups
    compared = 0
    for base in MIXED:
        for variant in [base, *edits(base)]:
            rows = lays.findall(variant)
            if rows:  # a subset of the alternation's lines, with the same rows
                assert rows == whole.findall(variant), variant
                compared += 1
    assert compared > len(MIXED)


def test_layouts_of_lines_that_begin_differently_make_no_alternation() -> None:
    found = [shape_and_layout(line) for line in ['@1 A { id: "a", v: 1.5 }', '@2ms B { id: "b", n: 3 }']]
    assert layout_alternation(tuple(lay for _, _, lay in found)) is None


def _blocks(lines: list[str], size: int) -> list[str]:
    return ["\n".join(lines[i:i + size]) for i in range(0, len(lines), size)]


def test_a_reader_scans_with_the_layouts_and_stops_when_the_lines_are_spaced_otherwise() -> None:
    spaced = [f'@{t} A {{ id: "a{t % 7}", v: {t}.5 }}' if t % 3 else f'@{t} B {{ id: "b", n: {t} }}'
              for t in range(1, 301)]
    # The same events, written with other spacing from line 151 on.
    odd = spaced[:150] + [line.replace(" { ", "{").replace(": ", ":") for line in spaced[150:]]
    for lines in (spaced, odd):
        parser = EventParser("x.evt", [])
        events = [e for i, block in enumerate(_blocks(lines, 30)) for e in parser.parse_block(block, 1 + 30 * i)]
        assert events == [EventParser("x.evt", []).parse_line(line, n) for n, line in enumerate(lines, 1)]
        if lines is spaced:
            assert parser.learned.layouts() is not None
    assert parser.learned.layouts() is None  # three blocks the layouts missed: no longer tried
