"""load_program over the shared conformance programs: the accepted ones, their warnings, the rejected ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import conformance_cases, needs_shared
from varpulis_mp.errors import ProgramError
from varpulis_mp.lang.frontend import load_program

# The warnings each accepted program gets (VPL.md §15 for the parallelism example, §9.3 for the
# implicit edges); every other conformance program is clean.
EXPECTED_WARNINGS = {
    "parallelism_no_consumer": [
        "3:9: context 'alert' holds no streams",
        "12:25: unknown name 'value'",
        "13:20: context 'alert' has no stream that reads 'Stats'",
    ],
    "route_implicit_edge_and_main": [
        "6:17: 'Prepared' is sent from context 'default' to context 'worker' without .emit(context: worker)",
        "10:18: 'Costly' is sent from context 'worker' to context 'default' without .emit(context: default)",
    ],
}



@needs_shared
@pytest.mark.parametrize("case", conformance_cases("records"), ids=lambda p: p.name)
def test_conformance_program_loads_with_expected_warnings(case: Path) -> None:
    checked = load_program((case / "program.vpl").read_bytes(), "program.vpl")
    got = [f"{w.pos.line}:{w.pos.col}: {w.message}" for w in checked.warnings]
    assert got == EXPECTED_WARNINGS.get(case.name, [])
    assert all(w.severity == "warning" and w.path == "program.vpl" for w in checked.warnings)
    assert len(checked.streams) == (case / "program.vpl").read_text().count("\nstream ") + (
        (case / "program.vpl").read_text().startswith("stream ")
    )


@needs_shared
@pytest.mark.parametrize(
    "case", [c for c in conformance_cases("errors") if not (c / "events.evt").exists()], ids=lambda p: p.name
)
def test_conformance_error_program_is_rejected_where_expected(case: Path) -> None:
    where, phrase = (case / "expected_error.txt").read_text().splitlines()[:2]
    file, line, col = where.rsplit(":", 2)
    assert file == "program.vpl"
    with pytest.raises(ProgramError) as info:
        load_program((case / "program.vpl").read_bytes(), "program.vpl")
    hits = [d for d in info.value.diagnostics if (d.pos.line, d.pos.col) == (int(line), int(col))]
    assert any(d.severity == "error" and phrase in d.message for d in hits), [
        d.render() for d in info.value.diagnostics
    ]


def test_load_program_accepts_text_and_keeps_the_path() -> None:
    checked = load_program("stream S = E .where(x > 1)\n", "given/path.vpl")
    assert checked.path == "given/path.vpl" and [s.name for s in checked.streams] == ["S"]


def test_load_program_raises_with_every_diagnostic() -> None:
    with pytest.raises(ProgramError) as info:
        load_program(b"stream S = E .context(x)\nstream S = F\n", "p.vpl")
    assert [(d.pos.line, d.pos.col) for d in info.value.diagnostics] == [(1, 23), (2, 8)]
    assert info.value.diagnostics[0].render().startswith("p.vpl:1:23: error: unknown context 'x'")
