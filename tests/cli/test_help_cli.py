"""What `--help` shows: usage lines, argument and option names, and paragraphs that read well."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli

COMMANDS = ("check", "simulate", "run", "plan")
WIDTH = 80  # a terminal's usual width, where rich wraps the help text


def _help(*command: str, columns: int = WIDTH) -> str:
    proc = run_cli(*command, "--help", columns=columns)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _paragraphs(help_text: str) -> list[list[str]]:
    """The description paragraphs: the lines between the usage line and the first box."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("╭"))
    paragraphs: list[list[str]] = [[]]
    for line in lines[start:end]:
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


@pytest.mark.parametrize("command", [(), *((c,) for c in COMMANDS)], ids=["main", *COMMANDS])
@pytest.mark.parametrize("columns", [WIDTH, 60])
def test_help_paragraphs_break_lines_only_where_the_width_ends(command: tuple[str, ...], columns: int) -> None:
    paragraphs = _paragraphs(_help(*command, columns=columns))
    assert paragraphs, "no description"
    for paragraph in paragraphs:
        for line, following in zip(paragraph, paragraph[1:], strict=False):
            # The next line's first word would have fitted: the line was broken by the source text.
            fits = len(line) + 1 + len(following.split()[0]) <= columns - 2
            assert not fits, f"line broken early: {line!r} / {following!r}"


@pytest.mark.parametrize(("command", "usage"), [
    ("check", "Usage: varpulis-mp check [OPTIONS] PROGRAM"),
    ("plan", "Usage: varpulis-mp plan [OPTIONS] PROGRAM"),
    # Optional here: --file gives the program too.
    ("run", "Usage: varpulis-mp run [OPTIONS] [PROGRAM]"),
    ("simulate", "Usage: varpulis-mp simulate [OPTIONS]"),
])
def test_usage_lines_name_the_program_alike(command: str, usage: str) -> None:
    assert [line.strip() for line in _help(command).splitlines() if "Usage:" in line] == [usage]


def test_missing_program_names_the_argument_as_the_usage_does() -> None:
    proc = run_cli("check")
    assert proc.returncode == 2
    assert "Usage: varpulis-mp check [OPTIONS] PROGRAM" in proc.stderr
    assert "Missing argument 'PROGRAM'." in proc.stderr


@pytest.mark.parametrize("command", ["check", "simulate"])
def test_event_file_option_shows_a_path(command: str) -> None:
    assert re.search(r"--events\s+-e\s+<path>\s", _help(command, columns=200))
