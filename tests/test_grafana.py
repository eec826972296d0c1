"""The Grafana dashboard (examples/grafana/varpulis-mp.json) asks only for what the runtime exports:
every metric its PromQL expressions name, and every label they group by (one of those metrics'),
is in what a metrics server serves for a program with contexts, a channel, a subscription and a
sink, with a rejection and a dead letter counted (their series appear with their first count)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.runtime.test_metrics import PROGRAM
from tests.scrape import http_get
from varpulis_mp.engine.plan import build_plan
from varpulis_mp.lang.frontend import load_program
from varpulis_mp.runtime.metrics_server import MetricsServer
from varpulis_mp.runtime.metrics_state import MetricsLayout, MetricsState

DASHBOARD = Path(__file__).resolve().parent.parent / "examples" / "grafana" / "varpulis-mp.json"
METRIC = re.compile(r"\bvarpulis_[A-Za-z0-9_]*")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
# Labels Prometheus adds to every scraped series, and the histogram's bucket bound.
SCRAPE_LABELS = {"job", "instance", "le"}


def exported() -> dict[str, set[str]]:
    """Each sample name a metrics server serves, with its label names."""
    state = MetricsState(MetricsLayout.from_plan(build_plan(load_program(PROGRAM, "p.vpl"))))
    state.set_events({"SensorReading": 1})
    state.set_rejected({("Broker", "invalid json"): 1})
    state.set_dead_letters({("Hook", "circuit open"): 1})
    with MetricsServer("127.0.0.1", 0, state) as server:
        status, text = http_get(server.url + "/metrics")
    assert status == 200
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def expressions(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    found += [v["definition"] for v in dashboard["templating"]["list"]]
    return found


def unknown(dashboard: dict[str, Any], metrics: dict[str, set[str]]) -> list[str]:
    """What the dashboard's queries ask for that the runtime does not export."""
    problems = []
    for expr in expressions(dashboard):
        named = METRIC.findall(expr)
        problems += [f"metric {m} in {expr}" for m in named if m not in metrics]
        labels = set(SCRAPE_LABELS).union(*(metrics.get(m, set()) for m in named))
        for group in GROUPING.findall(expr):
            problems += [f"label {label} in {expr}" for label in (x.strip() for x in group.split(","))
                         if label and label not in labels]
    return problems


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_every_metric_and_label_the_dashboard_queries_is_exported(dashboard: dict[str, Any]) -> None:
    assert unknown(dashboard, exported()) == []
    used = {m for expr in expressions(dashboard) for m in METRIC.findall(expr)}
    # The panels the dashboard promises: throughput, channels, latency, failures, connectors, workers.
    assert {"varpulis_events_processed_total", "varpulis_context_channel_utilization",
            "varpulis_processing_latency_seconds_bucket", "varpulis_worker_restarts_total",
            "varpulis_events_lost_total", "varpulis_connector_healthy", "varpulis_connector_messages_total",
            "varpulis_dlq_events_total", "varpulis_sink_circuit_open", "varpulis_worker_cpu_seconds_total",
            "varpulis_worker_resident_memory_bytes"} <= used
    assert sum("histogram_quantile(0.99," in e for e in expressions(dashboard)) >= 1


def test_a_query_naming_an_unknown_metric_or_label_is_caught(dashboard: dict[str, Any]) -> None:
    doctored = copy.deepcopy(dashboard)
    target = doctored["panels"][1]["targets"][0]
    target["expr"] = target["expr"].replace("varpulis_events_processed_total", "varpulis_events_procesed_total")
    doctored["panels"][2]["targets"][0]["expr"] = "sum by (topic) (rate(varpulis_events_total[5m]))"
    assert [p.split(" in ")[0] for p in unknown(doctored, exported())] == [
        # The misspelled metric has no labels: its grouping by context is unknown too.
        "metric varpulis_events_procesed_total", "label context", "label topic"]


def test_it_imports_with_a_prometheus_data_source_chosen_at_import(dashboard: dict[str, Any]) -> None:
    assert dashboard["__inputs"] == [{
        "name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus",
        "pluginName": "Prometheus", "description": dashboard["__inputs"][0]["description"]}]
    queried = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert queried and all(p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"} for p in queried)
    assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in queried for t in p["targets"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
