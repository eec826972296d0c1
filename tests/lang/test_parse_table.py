"""The stored LALR table (`vpl_table.json`): up to date with `vpl.lark`, equal to what lark builds,
ignored when stale, and loaded without importing lark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from varpulis_mp.lang import parser
from varpulis_mp.lang.parser import (
    TableData,
    grammar_sha256,
    lark_parse_table,
    load_table_data,
    table_from_json,
    table_from_lark,
    table_to_json,
)

LANG = Path(parser.__file__).parent
GRAMMAR = (LANG / "vpl.lark").read_text("utf-8")
STORED = (LANG / "vpl_table.json").read_text("utf-8")
REGENERATE = "run: python -m varpulis_mp.lang.parser --write-table"


@pytest.fixture(scope="module")
def built() -> TableData:
    return table_from_lark(GRAMMAR)


def test_stored_table_is_up_to_date_with_the_grammar() -> None:
    doc = json.loads(STORED)
    assert doc["grammar_sha256"] == grammar_sha256(GRAMMAR), f"vpl_table.json is stale; {REGENERATE}"


def test_stored_table_equals_the_one_lark_builds(built: TableData) -> None:
    stored = table_from_json(STORED, GRAMMAR)
    assert stored is not None
    assert (stored.start, stored.end) == (built.start, built.end)
    assert len(stored.shifts) == len(built.shifts)
    assert stored.shifts == built.shifts
    assert stored.rules == built.rules  # size, lhs and callback name of every reduction
    assert stored.reduces == built.reduces
    assert stored == built
    assert STORED == table_to_json(built, GRAMMAR), REGENERATE


def test_resolved_tables_run_the_same_callbacks(built: TableData) -> None:
    from_json = parser._Table(load_table_data())
    from_lark = parser._Table(built)
    assert (from_json.start_state, from_json.end_state) == (from_lark.start_state, from_lark.end_state)
    assert len(from_json.states) == len(from_lark.states)
    for got, want in zip(from_json.states, from_lark.states, strict=True):
        assert got.keys() == want.keys()
        for sym, (is_shift, arg) in got.items():
            assert want[sym][0] == is_shift
            if is_shift:
                assert arg == want[sym][1]
            else:
                (size, lhs, cb), (want_size, want_lhs, want_cb) = arg, want[sym][1]
                assert (size, lhs) == (want_size, want_lhs)
                # bound to different builders: compare the functions behind them
                assert getattr(cb, "__func__", cb) is getattr(want_cb, "__func__", want_cb)


def test_renumbering_keeps_lark_table(built: TableData) -> None:
    """The stored numbering is a relabelling of lark's states, nothing more."""
    from lark.parsers.lalr_analysis import Shift

    table = lark_parse_table(GRAMMAR)
    to_ours = {table.start_states["start"]: built.start}
    todo = [table.start_states["start"]]
    while todo:
        theirs = todo.pop()
        ours = to_ours[theirs]
        acts = table.states[theirs]
        assert {str(s) for s in acts} == built.shifts[ours].keys() | built.reduces[ours].keys()
        for sym, (action, arg) in acts.items():
            if action is Shift:
                target = built.shifts[ours][str(sym)]
                if arg not in to_ours:
                    to_ours[arg] = target
                    todo.append(arg)
                assert to_ours[arg] == target
            else:
                rule = built.rules[built.reduces[ours][str(sym)]]
                assert rule == (len(arg.expansion), str(arg.origin.name), str(arg.alias or arg.origin.name))
    assert len(to_ours) == len(table.states) == len(built.shifts)
    assert len(set(to_ours.values())) == len(to_ours)
    assert to_ours[table.end_states["start"]] == built.end


def _damaged(**changes: Any) -> str:
    doc = json.loads(STORED)
    doc["states"] = doc["states"][:3]  # would break every parse if it were used
    doc.update(changes)
    return json.dumps(doc)


def test_table_with_a_wrong_hash_is_ignored(tmp_path: Path, built: TableData) -> None:
    text = _damaged(grammar_sha256=grammar_sha256(GRAMMAR + "\n// edited"))
    assert table_from_json(text, GRAMMAR) is None
    stale = tmp_path / "vpl_table.json"
    stale.write_text(text, "utf-8")
    assert load_table_data(stale) == built


@pytest.mark.parametrize("text", [_damaged(format=0), "{", "[]", '{"format": 1}'])
def test_unusable_table_is_ignored(text: str) -> None:
    assert table_from_json(text, GRAMMAR) is None


def test_missing_table_falls_back_to_lark(tmp_path: Path, built: TableData) -> None:
    assert load_table_data(tmp_path / "absent.json") == built


def test_parsing_with_the_stored_table_does_not_import_lark() -> None:
    code = (
        "import sys\n"
        "from varpulis_mp.lang.parser import parse_program\n"
        "parse_program('stream S = A.where(x > 1)', 'p.vpl')\n"
        "print(sorted(m for m in sys.modules if m == 'lark' or m.startswith('lark.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
