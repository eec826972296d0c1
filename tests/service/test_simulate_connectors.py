"""`simulate` ignores connectors (RUN.md §1.2): each program the service tests run gives, for the
same events, exactly the records and counters of the same program with its `connector`
declarations, `.from`s and `.to`s taken out; nothing is opened (no broker listens on the ports
the programs name, no file they name exists)."""

from __future__ import annotations

from pathlib import Path

import pytest

import varpulis_mp
from tests.brokers import free_port
from tests.service.live import reading_events
from tests.service.programs import ALL, program_file, without_connectors

# Every type the programs read, interleaved in time.
EVENTS = sorted(
    [*reading_events(),
     *(("R", 50 + 300 * i, {"v": i - 2}) for i in range(8)),
     *(("Job", 75 + 250 * n, {"n": n}) for n in range(10)),
     *(("Manual", 90 + 400 * i, {"v": i}) for i in range(5))],
    key=lambda event: event[1])


def test_simulate_gives_what_the_program_without_connectors_gives(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"port": free_port(), "url": f"http://127.0.0.1:{free_port()}/alerts"}
    for name, template in ALL.items():
        folder = tmp_path / name
        (folder / "out").mkdir(parents=True)
        monkeypatch.chdir(folder)  # where a `file` connector's relative path would be opened
        with_connectors = varpulis_mp.simulate(program_file(folder, template, **values), EVENTS)
        plain_text = without_connectors(program_file(folder, template, **values).read_text())
        assert "connector" not in plain_text and ".from(" not in plain_text and ".to(" not in plain_text, name
        plain = varpulis_mp.simulate(plain_text, EVENTS)
        assert with_connectors.records, f"{name}: no records to compare"
        assert (with_connectors.records, with_connectors.summary) == (plain.records, plain.summary), name
        assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == ["out", "program.vpl"], name
