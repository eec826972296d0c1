"""`varpulis-mp plan`: text, --json and --dot say what runs where."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CONFORMANCE, ROOT, needs_shared, run_cli

PIPELINE = ROOT / "examples" / "pipeline_three_stages.vpl"


def test_text_plan_of_three_stage_pipeline() -> None:
    proc = run_cli("plan", str(PIPELINE))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.splitlines()[0] == f"{PIPELINE}: 3 streams, 3 contexts, 3 worker processes"
    assert "process 1: context ingest (any core)" in text
    assert "  streams: ValidReadings" in text
    assert "  reads events: SensorReading" in text
    assert "  reads stream: ValidReadings (from context ingest)" in text
    assert "  SensorReading -> ingest" in text
    assert "  ingest -> compute: ValidReadings (read by ZoneStats; declared)" in text
    assert "  compute -> alert: ZoneStats (read by OverheatAlerts; declared)" in text


def test_json_plan_has_processes_routes_and_channels() -> None:
    proc = run_cli("plan", str(PIPELINE), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["mode"] == "processes"
    assert [p["context"] for p in data["processes"]] == ["ingest", "compute", "alert"]
    assert data["processes"][1]["streams"] == ["ZoneStats"]
    assert data["processes"][1]["inputs_from"] == {"ValidReadings": "ingest"}
    assert data["ingress"] == {"SensorReading": ["ingest"]}
    assert data["channels"] == [
        {"from": "ingest", "to": "compute", "stream": "ValidReadings", "readers": ["ZoneStats"], "kind": "declared"},
        {"from": "compute", "to": "alert", "stream": "ZoneStats", "readers": ["OverheatAlerts"], "kind": "declared"},
    ]


@needs_shared
def test_implicit_edges_and_default_context_are_shown() -> None:
    program = CONFORMANCE / "route_implicit_edge_and_main" / "program.vpl"
    proc = run_cli("plan", str(program), "--json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert [p["context"] for p in data["processes"]] == ["worker", "default"]
    kinds = {(c["from"], c["to"], c["stream"]): c["kind"] for c in data["channels"]}
    assert kinds == {("default", "worker", "Prepared"): "implicit", ("worker", "default", "Costly"): "implicit"}
    assert "is sent from context" in proc.stderr  # the check warnings still show, on stderr


def test_program_without_contexts_runs_in_one_process(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("stream A = R.where(x > 1)\nstream B = A.emit(y: x)\n")
    proc = run_cli("plan", str(program))
    assert proc.returncode == 0
    assert "no contexts: one process, no sockets" in proc.stdout
    data = json.loads(run_cli("plan", str(program), "--json").stdout)
    assert data["mode"] == "single-process" and data["processes"] == []


def test_dot_plan_is_a_graph_with_one_cluster_per_process() -> None:
    proc = run_cli("plan", str(PIPELINE), "--dot")
    assert proc.returncode == 0
    dot = proc.stdout
    assert dot.startswith("digraph plan {") and dot.rstrip().endswith("}")
    assert dot.count("subgraph cluster_") == 3
    assert '"stream:ValidReadings" -> "stream:ZoneStats"' in dot
    assert '"type:SensorReading" -> "stream:ValidReadings"' in dot
    committed = (ROOT / "docs" / "pipeline_three_stages.dot").read_text()
    assert committed == dot, "docs/pipeline_three_stages.dot is out of date: regenerate it with `plan --dot`"


def test_bad_program_gets_diagnostics_and_exit_2(tmp_path: Path) -> None:
    program = tmp_path / "bad.vpl"
    program.write_text("stream A = R.context(nowhere)\n")
    proc = run_cli("plan", str(program))
    assert proc.returncode == 2
    assert "unknown context 'nowhere'" in proc.stderr and proc.stdout == ""


def test_json_and_dot_together_is_a_usage_error() -> None:
    proc = run_cli("plan", str(PIPELINE), "--json", "--dot")
    assert proc.returncode == 2


def test_dot_label_breaks_the_line_before_the_cores(tmp_path: Path) -> None:
    program = tmp_path / "pinned.vpl"
    program.write_text("context ingest (cores: [1])\nstream A = R.context(ingest).where(x > 1)\n")
    proc = run_cli("plan", str(program), "--dot")
    assert proc.returncode == 0, proc.stderr
    # `\n` is DOT's line break inside a quoted label; `\\n` would draw a backslash and an n.
    assert 'label="process 1: context ingest\\ncores 1";' in proc.stdout
    assert "\\\\n" not in proc.stdout
