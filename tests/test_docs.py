"""The user manual stays true: its links lead somewhere and its examples run as printed.

Links: every relative link of README.md and docs/*.md names a file of the repository, and a
`#fragment` into a Markdown page names one of its headings.

Examples, by the info string of their fenced block:

* `vpl`: a program that `varpulis-mp check` accepts (exit 0);
* `vpl-error`: a program that `check` rejects (exit 2, nothing on standard output, no traceback);
* `evt`: an event file for the program block above it;
* `jsonl`: the exact standard output of
  `varpulis-mp simulate -p program.vpl -e events.evt --immediate --output jsonl` for the program
  and event blocks above it;
* `human`: the same for the human output (`--immediate`, no `--output`);
* `human-verbose`: the same with `--verbose`;
* `diagnostics`: the exact standard error of `varpulis-mp check program.vpl` for the program
  block above it (with `-e events.evt` when an event block follows that program).

Each example runs in a fresh folder holding `program.vpl` and `events.evt`, named so in the
commands, so that diagnostics show those names as the manual prints them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
PROGRAM_TAGS = frozenset({"vpl", "vpl-error"})
OUTPUT_TAGS = frozenset({"jsonl", "human", "human-verbose", "diagnostics"})

_FENCE = re.compile(r"^(`{3,})\s*([\w-]*)")
_INLINE_CODE = re.compile(r"(`+).+?\1")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    tag: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page: Path) -> tuple[list[Block], list[tuple[int, str]]]:
    """The fenced blocks of a page, and its other lines (number, text)."""
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    fence: tuple[str, str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if fence is None:
            m = _FENCE.match(line)
            if m:
                fence, body = (m[1], m[2], number), []
            else:
                prose.append((number, line))
        elif line.strip() == fence[0]:
            blocks.append(Block(page, fence[2], fence[1], "".join(x + "\n" for x in body)))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"{page.relative_to(ROOT)}:{fence[2]}: unclosed code block"
    return blocks, prose


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for _, line in _blocks(page)[1]:
        m = _HEADING.match(line)
        if m:
            slug = _slug(m[1])
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(page: Path) -> Iterator[tuple[int, str]]:
    for number, line in _blocks(page)[1]:
        for m in _LINK.finditer(_INLINE_CODE.sub("", line)):
            yield number, m[1]


def test_the_manual_has_an_index_that_lists_every_page() -> None:
    index = ROOT / "docs" / "README.md"
    linked = {target.split("#")[0] for _, target in _links(index)}
    unlisted = [p.name for p in (ROOT / "docs").iterdir()
                if p.suffix == ".md" and p.name != "README.md" and p.name not in linked]
    assert not unlisted, f"docs/README.md does not list {unlisted}"
    assert any(t.startswith("docs/README.md") for _, t in _links(ROOT / "README.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    broken: list[str] = []
    for number, target in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(ROOT)}:{number}: {target}"
        if not resolved.exists():
            broken.append(f"{where}: no such file")
        elif not resolved.is_relative_to(ROOT):
            broken.append(f"{where}: outside the repository")
        elif fragment and resolved.suffix == ".md" and fragment not in _anchors(resolved):
            broken.append(f"{where}: no heading '{fragment}' in {resolved.name}")
    assert not broken, "\n".join(broken)


@dataclass(frozen=True)
class Example:
    """A program block with what follows it up to the next program block."""

    program: Block
    events: Block | None
    outputs: tuple[Block, ...]


def _examples() -> list[Example]:
    found: list[Example] = []
    for page in PAGES:
        blocks = _blocks(page)[0]
        program: Block | None = None
        events: Block | None = None
        outputs: list[Block] = []
        for block in [*blocks, None]:
            if block is None or block.tag in PROGRAM_TAGS:
                if program is not None:
                    found.append(Example(program, events, tuple(outputs)))
                if block is None:
                    break
                program, events, outputs = block, None, []
            elif block.tag == "evt":
                assert program is not None and events is None, f"{block.where}: events without one program"
                events = block
            elif block.tag in OUTPUT_TAGS:
                assert program is not None, f"{block.where}: output without a program above it"
                outputs.append(block)
    return found


EXAMPLES = _examples()


def test_the_language_reference_has_examples_of_both_kinds() -> None:
    language = [e for e in EXAMPLES if e.program.page.name == "language.md"]
    assert sum(e.program.tag == "vpl" for e in language) >= 20
    assert any(e.program.tag == "vpl-error" for e in language)
    assert sum(any(o.tag == "jsonl" for o in e.outputs) for e in language) >= 10


def _run(example: Example, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    (tmp_path / "program.vpl").write_text(example.program.text, encoding="utf-8")
    if example.events is not None:
        (tmp_path / "events.evt").write_text(example.events.text, encoding="utf-8")
    proc = run_cli(*args, cwd=tmp_path, timeout=60.0)
    return proc.returncode, proc.stdout, proc.stderr


_SIMULATE_OPTIONS = {"jsonl": ("--output", "jsonl"), "human": (), "human-verbose": ("--verbose",)}


def _simulate_args(tag: str) -> tuple[str, ...]:
    return ("simulate", "-p", "program.vpl", "-e", "events.evt", "--immediate", *_SIMULATE_OPTIONS[tag])


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.program.where)
def test_every_example_checks_and_prints_what_the_manual_shows(example: Example, tmp_path: Path) -> None:
    where = example.program.where
    rc, out, err = _run(example, tmp_path, "check", "program.vpl")
    if example.program.tag == "vpl":
        assert rc == 0, f"{where}: check rejects the example:\n{err}"
    else:
        assert (rc, out) == (2, ""), f"{where}: check accepts a vpl-error example (exit {rc})"
    assert "Traceback" not in err, err
    for block in example.outputs:
        if block.tag == "diagnostics":
            args: tuple[str, ...] = ("check", "program.vpl")
            if example.events is not None:
                args += ("-e", "events.evt")
            _, _, shown = _run(example, tmp_path, *args)
        else:
            assert example.events is not None, f"{block.where}: output without an event block"
            rc, shown, err = _run(example, tmp_path, *_simulate_args(block.tag))
            assert rc == 0, f"{block.where}: simulate failed:\n{err}"
        assert shown == block.text, f"{block.where}: the {block.tag} shown differs from the real one"
