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


POOLS = """\
context ingest
context heavy (cores: [4000, 4001], workers: 3)
context loose (workers: 2)
connector Out = file(path: "out.jsonl")
connector In = file(path: "in.evt")

stream Clean = Reading.context(ingest).where(value > 0)
stream Stats = Clean.context(heavy).partition_by(zone).window(10s).aggregate(zone: zone, n: count())
stream Scaled = Clean.context(heavy).select(zone, v: value * 2).to(Out)
stream Totals = Clean.context(heavy).window(10).aggregate(n: count())
stream Polled = Order.from(In).context(loose).where(total > 1)
"""


def _pools(tmp_path: Path) -> Path:
    program = tmp_path / "pools.vpl"
    program.write_text(POOLS)
    return program


def test_text_plan_shows_each_worker_with_its_core_and_each_stream_with_its_strategy(tmp_path: Path) -> None:
    program = _pools(tmp_path)
    proc = run_cli("plan", str(program))
    assert proc.returncode == 0, proc.stderr
    assert "stream Totals has a window without partition_by: one of heavy's 3 workers runs it" in proc.stderr
    text = proc.stdout
    assert text.splitlines()[0] == f"{program}: 5 streams, 3 contexts, 6 worker processes"
    assert (
        "process 1: context ingest (any core)\n"
        "  streams: Clean\n"
        "  reads events: Reading\n"
        "processes 2-4: context heavy, 3 workers (cores 4000,4001 (not all available here: runs unpinned))\n"
        "  worker 0: process 2 (core 4000, runs unpinned here)\n"
        "  worker 1: process 3 (core 4001, runs unpinned here)\n"
        "  worker 2: process 4 (core 4000, runs unpinned here)\n"
        "  streams: Stats (consistent_hash by zone), Scaled (round_robin), Totals (single)\n"
        "  reads stream: Clean (from context ingest)\n"
        "processes 5-6: context loose, 2 workers (any core)\n"
        "  worker 0: process 5 (any core)\n"
        "  worker 1: process 6 (any core)\n"
        "  streams: Polled (round_robin)\n"
    ) in text
    assert "    writes Scaled in processes 2-4 (context heavy)\n" in text
    assert "    reads Order in process 5 (context loose, worker 0), declared by Polled\n" in text


def test_json_plan_has_the_workers_of_each_process_and_the_strategy_of_each_stream(tmp_path: Path) -> None:
    data = json.loads(run_cli("plan", str(_pools(tmp_path)), "--json").stdout)
    assert [(p["context"], p["index"]) for p in data["processes"]] == [("ingest", 0), ("heavy", 1), ("loose", 4)]
    ingest, heavy, loose = data["processes"]
    assert ingest["workers"] == [{"worker": 0, "process": 0, "cores": None, "pinned": False}]
    assert heavy["workers"] == [
        {"worker": 0, "process": 1, "cores": [4000], "pinned": False},
        {"worker": 1, "process": 2, "cores": [4001], "pinned": False},
        {"worker": 2, "process": 3, "cores": [4000], "pinned": False},
    ]
    assert heavy["cores"] == [4000, 4001] and heavy["pinned"] is False
    assert [w["process"] for w in loose["workers"]] == [4, 5]
    assert {s["name"]: s["strategy"] for s in data["streams"]} == {
        "Clean": None, "Stats": "consistent_hash", "Scaled": "round_robin", "Totals": "single", "Polled": "round_robin"}


def test_json_workers_of_a_pinned_single_process(tmp_path: Path) -> None:
    program = tmp_path / "p.vpl"
    program.write_text("context a (cores: [4000, 4001])\nstream S = R.context(a)\n")
    (row,) = json.loads(run_cli("plan", str(program), "--json").stdout)["processes"]
    assert row["workers"] == [{"worker": 0, "process": 0, "cores": [4000, 4001], "pinned": False}]


def test_dot_plan_labels_each_pool_with_its_workers_and_each_stream_with_its_strategy(tmp_path: Path) -> None:
    proc = run_cli("plan", str(_pools(tmp_path)), "--dot")
    assert proc.returncode == 0, proc.stderr
    dot = proc.stdout
    assert 'label="process 1: context ingest"; style=rounded' in dot
    assert ('label="processes 2-4: context heavy\\ncores 4000,4001\\nworker 0: core 4000\\nworker 1: core 4001'
            '\\nworker 2: core 4000"; style=rounded') in dot
    assert 'label="processes 5-6: context loose\\nworker 0: any core\\nworker 1: any core"; style=rounded' in dot
    assert '"stream:Clean" [label="Clean", shape=box];' in dot
    assert '"stream:Stats" [label="Stats\\nconsistent_hash by zone", shape=box];' in dot
    assert '"stream:Scaled" [label="Scaled\\nround_robin", shape=box];' in dot
    assert '"stream:Totals" [label="Totals\\nsingle", shape=box];' in dot
    assert '"connector:In" -> "type:Order" [label="context loose, worker 0", style=dotted];' in dot
