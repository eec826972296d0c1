"""`workers: N` from the command line (RUN.md §7): each diagnostic of the context options as `check`
prints it (position, exit status 2), the pool warning (exit 0), the limit on worker processes, and
`simulate` of a program with pools giving the records of the same program without them: pools are
a performance setting and, until they run, a pool runs as one process."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from varpulis_mp.lang.frontend import load_program

EXAMPLES = sorted((ROOT / "examples").glob("*.vpl"))
STREAM = "\nstream S = R\n    .context(c)\n"


@pytest.mark.parametrize(
    ("decl", "first_line"),
    [
        ("context c (foo: 2)", "1:12: error: unknown context option 'foo'"),
        ("context c (workers: 2, workers: 2)", "1:24: error: the option 'workers' is given twice"),
        ("context c (cores: 5)", "1:19: error: cores must be a non-empty list of distinct non-negative integers"),
        ("context c (cores: [0, 0])", "1:23: error: cores must be a non-empty list of distinct non-negative integers"),
        ("context c (workers: 0)", "1:21: error: workers must be positive"),
        ("context c (workers: 2.5)", "1:21: error: workers must be an Int, not a Float"),
        ('context c (workers: "2")', "1:21: error: workers must be an Int, not a String"),
        ("context c (workers: 1 + 1)",
         "1:21: error: workers must be a positive Int literal or the name of an Int constant"),
        ("context c (workers: N)", "1:21: error: unknown constant 'N'"),
        ("context c (workers: 257)", "1:9: error: too many worker processes"),
    ],
)
def test_each_context_option_error_at_its_token_with_exit_2(tmp_path: Path, decl: str, first_line: str) -> None:
    program = tmp_path / "p.vpl"
    program.write_text(decl + STREAM)
    proc = run_cli("check", str(program))
    assert (proc.returncode, proc.stdout) == (2, "")
    first, source, caret, *rest = proc.stderr.splitlines()
    assert first == f"{program}:{first_line}"
    assert source == f"    1 | {decl}"
    column = int(first_line.split(":")[1])
    assert caret.index("^") == len("    1 | ") + column - 1
    assert rest[-1] == "1 error(s), 0 warning(s)"
    assert "Traceback" not in proc.stderr


def test_the_unknown_option_message_replaces_the_syntax_error(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("context c (foo: 2)" + STREAM)
    proc = run_cli("check", str(program))
    assert "expected '['" not in proc.stderr
    assert "  hint: the context options are cores and workers\n" in proc.stderr


def test_a_pool_window_without_partition_by_is_a_warning_with_exit_0(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("context heavy (cores: [2, 3, 4, 5], workers: 4)\n"
                       "stream Totals = R\n    .context(heavy)\n    .window(10s)\n    .aggregate(n: count())\n")
    proc = run_cli("check", str(program))
    assert proc.returncode == 0
    assert proc.stderr == (
        f"{program}:4:6: warning: stream Totals has a window without partition_by: one of heavy's 4 workers runs it\n"
        "    4 |     .window(10s)\n"
        "      |      ^^^^^^\n"
        "  hint: add .partition_by(FIELD) before .window to share its windows among the workers by key\n"
        "0 error(s), 1 warning(s)\n"
    )


def test_the_limit_is_at_the_context_that_passes_256(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("".join(f"context c{i} (workers: 100)\nstream S{i} = R.context(c{i})\n" for i in range(3)))
    proc = run_cli("check", str(program))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{program}:5:9: error: too many worker processes\n    5 | context c2 (workers: 100)\n")


# ---------------------------------------------------------------- simulate: the same records


_CONTEXT = re.compile(r"^context\s+(\w+)\s*(?:\((.*)\))?\s*$", re.MULTILINE)


def with_workers(text: str, workers: int) -> str:
    """The program with `workers: N` added to every context declaration."""

    def add(m: re.Match[str]) -> str:
        options = m[2].strip().rstrip(",") + ", " if m[2] else ""
        return f"context {m[1]} ({options}workers: {workers})"

    return _CONTEXT.sub(add, text)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("mode", [[], ["--inline"]], ids=["processes", "inline"])
def test_simulate_with_workers_gives_the_records_without_them(tmp_path: Path, example: Path, mode: list[str]) -> None:
    pooled = tmp_path / example.name
    pooled.write_text(with_workers(example.read_text(), 2))
    declared = load_program(example.read_bytes(), str(example)).contexts
    assert [c.workers for c in load_program(pooled.read_bytes(), str(pooled)).contexts] == [2] * len(declared)
    events = str(example.with_suffix(".evt"))
    plain = run_cli("simulate", "-p", str(example), "-e", events, "--output", "jsonl", "--immediate", *mode)
    pools = run_cli("simulate", "-p", str(pooled), "-e", events, "--output", "jsonl", "--immediate", *mode)
    assert plain.returncode == 0, plain.stderr
    assert pools.returncode == 0, pools.stderr
    assert plain.stdout and pools.stdout == plain.stdout


def test_with_workers_keeps_other_options() -> None:
    text = "context a\ncontext b (cores: [1, 2])\ncontext c (cores: [3],)\nstream S = R\n"
    assert with_workers(text, 3) == (
        "context a (workers: 3)\ncontext b (cores: [1, 2], workers: 3)\ncontext c (cores: [3], workers: 3)\n"
        "stream S = R\n"
    )
