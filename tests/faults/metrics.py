"""A run's Prometheus metrics (`run --metrics --metrics-port 0`) for the fault scenarios: the port
from the run's log, one scrape parsed into numbers, and the per-channel identity of RUN.md §6.

The identity, from the per-stream counters of RUN.md §4: for each channel between two contexts
(stream `src` read by stream `dst` in another context), records sent = received + lost, that is
`varpulis_output_events_total{src} == varpulis_events_processed_total{dst} +
varpulis_events_lost_total{src}`; for the default input, events accepted = delivered + lost, with
the input's loss counted under the event type's name (no stream of the program has it).
"""

from __future__ import annotations

import re
from collections import defaultdict

from tests.brokers import wait_until
from tests.scrape import http_get
from tests.service.live import LiveRun

_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Samples = dict[str, list[tuple[dict[str, str], float]]]


def metrics_port(run: LiveRun) -> int:
    """The port the run's metrics server took (it names it in the log)."""
    found: list[int] = []

    def named() -> bool:
        found[:] = [int(p) for p in re.findall(r"metrics: serving http://127\.0\.0\.1:(\d+)/metrics", run.stderr)]
        return bool(found)

    wait_until(named, 20, "the metrics server's address in the log")
    return found[0]


def scrape(port: int) -> Samples:
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, (status, body[:500])
    samples: Samples = defaultdict(list)
    for line in body.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            samples[match.group(1)].append((dict(_LABEL.findall(match.group(2) or "")), float(match.group(3))))
    return samples


def per_stream(samples: Samples, name: str) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, []):
        totals[labels.get("stream", "")] += value
    return totals


def channel_identity(samples: Samples, edges: dict[str, str], first_stream: str, reported_lost: int) -> list[str]:
    """What breaks the identity (empty: it holds on every channel, and the summary's loss is the
    metrics' loss)."""
    output = per_stream(samples, "varpulis_output_events_total")
    processed = per_stream(samples, "varpulis_events_processed_total")
    lost = per_stream(samples, "varpulis_events_lost_total")
    problems = [f"channel {src} -> {dst}: nothing counted" for src, dst in edges.items() if not output[src]]
    problems += [f"channel {src} -> {dst}: sent {output[src]:g} != received {processed[dst]:g} + lost {lost[src]:g}"
                for src, dst in edges.items() if output[src] != processed[dst] + lost[src]]
    streams = set(output) | set(processed)
    input_lost = sum(v for s, v in lost.items() if s not in streams)
    accepted = sum(v for _, v in samples.get("varpulis_events_total", []))
    if accepted != processed[first_stream] + input_lost:
        problems.append(f"default input: accepted {accepted:g} != delivered {processed[first_stream]:g}"
                        f" + lost {input_lost:g}")
    if sum(lost.values()) != reported_lost:
        problems.append(f"metrics lost {sum(lost.values()):g} != summary 'Lost in restarts: {reported_lost}'")
    return problems
