"""Live `varpulis-mp run` benchmarks: latency through a three-context chain, throughput from a file.

Sections (select with `--only`, comma-separated; default latency and throughput):

* `latency` - `run bench/programs/live_chain.vpl --output jsonl` (three contexts, each stage a
  `.where` every event passes and an `.emit(context: next, ...)`: one record per stage per event,
  two channels crossed between workers), fed on its standard input at each of `--rates` events/s
  by a pacing thread, for `--warmup` seconds and then `--seconds` measured seconds. One probe line
  first waits for the workers to be up. Latency of event n = when the last stage's record of n was
  read from standard output - when the line of n was written (taken just before the write, both
  with `time.perf_counter`); percentiles over the measured events, median of `--runs` runs. Every
  measured event must come back (a missing record is reported).
* `throughput` - `run P --input FILE --output jsonl > /dev/null` against
  `simulate -p P -e FILE --immediate --output jsonl > /dev/null` on the same program and events
  (bench/gen.py's mixed file of `--events` events), runs alternated; ratio = median over the
  pairs of (simulate wall / run wall) = run's events/s / simulate's. Programs: `--programs`
  (default filter: no contexts, and chain_contexts: the three-context chain).
* `idle` - the CPU (user + sys, the whole process tree) of `run` of the same chain whose standard
  input stays open and silent for `--idle-seconds` once its workers answered a probe event.

`--variant NAME:VAR=VALUE,...` (repeatable) runs every section for each variant, its runs
alternated with the others' so that all meet the same moments of a shared machine: another build
(`before:PYTHONPATH=/path/to/an/older/tree`) or another setting given by the environment.

Usage:
    .venv/bin/python bench/bench_live.py [--only latency,throughput] [--rates 10000,100000]
        [--seconds 30] [--warmup 2] [--runs 3] [--events 300000] [--programs filter,chain_contexts]
        [--variant before:PYTHONPATH=/tmp/old --variant now] [--idle-seconds 10]
    .venv/bin/python bench/bench_live.py --seconds 5 --runs 1 --events 100000   # a quick look
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as harness  # noqa: E402

LIVE_CHAIN = harness.PROGRAMS / "live_chain.vpl"
LINE = b"Reading { n: %d, value: 1.5 }\n"
# The last stage's record of event n (the JSON Lines writer's exact layout, OUTPUT.md §1).
LAST_STAGE = re.compile(rb'\{"stream": "Stage3", "ts": -?\d+, "fields": \{"n": (\d+)')
PROBE_TIMEOUT_S = 60.0
MIN_SLEEP_S = 0.0002


@dataclass
class LatencyRun:
    rate: int
    measured: int  # events in the measured window
    missing: int  # of those, events whose last record never came back
    achieved_rate: float  # events/s the writer really wrote in the measured window
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_s: float  # user + sys of the run command and its workers
    status: str


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Collector(threading.Thread):
    """Reads the run's standard output and stamps each last-stage record as it is read."""

    def __init__(self, fd: int, got_at: array[float]) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.got_at = got_at
        self.records = 0

    def run(self) -> None:
        rest = b""
        clock = time.perf_counter
        got_at = self.got_at
        size = len(got_at)
        while True:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return
            now = clock()
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            for m in LAST_STAGE.finditer(data, 0, cut):
                n = int(m.group(1))
                if n < size:
                    got_at[n] = now
                self.records += 1
            rest = data[cut:]


def _env(variant: dict[str, str]) -> dict[str, str]:
    """The environment of a run of `variant` (its assignments over ours)."""
    return {**os.environ, **variant}


def parse_variants(specs: list[str]) -> list[tuple[str, dict[str, str]]]:
    """`NAME` or `NAME:VAR=VALUE,VAR=VALUE` (e.g. `before:PYTHONPATH=/tmp/old`): runs of each are
    alternated, so every variant meets the same moments of a shared machine."""
    found: list[tuple[str, dict[str, str]]] = []
    for spec in specs:
        name, _, assigns = spec.partition(":")
        env = dict(a.split("=", 1) for a in assigns.split(",") if a)
        found.append((name, env))
    return found or [("now", {})]


def latency_run(rate: int, seconds: float, warmup: float, timeout: float, tick_s: float,
                variant: dict[str, str]) -> LatencyRun:
    total = int(rate * (warmup + seconds))
    first_measured = int(rate * warmup) + 1
    sent_at = array("d", bytes(8 * (total + 1)))
    got_at = array("d", bytes(8 * (total + 1)))
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([harness.cli(), "run", str(LIVE_CHAIN), "--output", "jsonl"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, bufsize=0,
                                start_new_session=True, env=_env(variant))
        assert proc.stdin is not None and proc.stdout is not None
        collector = _Collector(proc.stdout.fileno(), got_at)
        collector.start()
        in_fd = proc.stdin.fileno()
        status = "ok"
        try:
            # The probe (n = 0): the clock starts once the workers answer.
            sent_at[0] = time.perf_counter()
            _write_all(in_fd, LINE % 0)
            deadline = time.monotonic() + PROBE_TIMEOUT_S
            while got_at[0] == 0.0:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the probe event never came back")
                time.sleep(0.005)
            clock = time.perf_counter
            t0 = last = clock()
            sent = 0
            while sent < total:
                due = min(total, int((clock() - t0) * rate) + 1)
                if due > sent:
                    data = b"".join([LINE % i for i in range(sent + 1, due + 1)])
                    now = last = clock()
                    for i in range(sent + 1, due + 1):
                        sent_at[i] = now
                    _write_all(in_fd, data)
                    sent = due
                delay = max(t0 + sent / rate, last + tick_s) - clock()
                if delay > 0:
                    time.sleep(max(delay, MIN_SLEEP_S))
            proc.stdin.close()
            proc.wait(timeout)
            collector.join(timeout)
            if proc.returncode != 0:
                status = f"rc={proc.returncode}"
        except (RuntimeError, subprocess.TimeoutExpired, BrokenPipeError) as exc:
            status = f"failed: {exc}"
            err.seek(0)
            print(err.read().decode(errors="replace")[-2000:], file=sys.stderr)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    latencies = sorted((got_at[n] - sent_at[n]) * 1000.0 for n in range(first_measured, total + 1)
                       if got_at[n] != 0.0)
    measured = total - first_measured + 1
    window = sent_at[total] - sent_at[first_measured] if total >= first_measured else 0.0
    return LatencyRun(rate, measured, measured - len(latencies),
                      (measured - 1) / window if window > 0 else float("nan"),
                      _percentile(latencies, 0.50), _percentile(latencies, 0.90),
                      _percentile(latencies, 0.99), latencies[-1] if latencies else float("nan"),
                      0.0, status)


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def section_latency(rates: list[int], seconds: float, warmup: float, runs: int, timeout: float,
                    tick_s: float, variants: list[tuple[str, dict[str, str]]]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    print(f"\n### Latency: run of live_chain.vpl (3 contexts), {warmup:g} s warm-up + {seconds:g} s measured\n")
    print("| variant | rate ev/s | run | achieved ev/s | p50 ms | p90 ms | p99 ms | max ms | missing | CPU s | status |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for rate in rates:
        results: dict[str, list[LatencyRun]] = {name: [] for name, _ in variants}
        for r in range(runs):
            for name, env in variants:
                before = _children_cpu()
                res = latency_run(rate, seconds, warmup, timeout, tick_s, env)
                res.cpu_s = _children_cpu() - before
                results[name].append(res)
                print(f"| {name} | {rate:,} | {r + 1} | {res.achieved_rate:,.0f} | {res.p50_ms:.2f} | "
                      f"{res.p90_ms:.2f} | {res.p99_ms:.2f} | {res.max_ms:.2f} | {res.missing} | {res.cpu_s:.1f} | "
                      f"{res.status} |", flush=True)
        for name, got in results.items():
            med = {k: statistics.median(getattr(x, k) for x in got) for k in ("p50_ms", "p90_ms", "p99_ms", "cpu_s")}
            print(f"| {name} | {rate:,} | median | | {med['p50_ms']:.2f} | {med['p90_ms']:.2f} | "
                  f"{med['p99_ms']:.2f} | | {sum(x.missing for x in got)} | {med['cpu_s']:.1f} | |", flush=True)
            rows.append({"variant": name, "rate": rate, "runs": [vars(x) for x in got], "median": med})
    return rows


def idle_cpu(seconds: float, variant: dict[str, str]) -> float:
    """CPU seconds (user + sys, workers included) of `run` of the chain whose standard input stays
    open and silent for `seconds` once the workers are up (one probe event first)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([harness.cli(), "run", str(LIVE_CHAIN), "--output", "jsonl"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, bufsize=0,
                                start_new_session=True, env=_env(variant))
        assert proc.stdin is not None and proc.stdout is not None
        _write_all(proc.stdin.fileno(), LINE % 0)
        proc.stdout.readline()  # the probe's first record: the workers are up
        usage = _tree_cpu(proc.pid)
        time.sleep(seconds)
        spent = _tree_cpu(proc.pid) - usage
        proc.stdin.close()
        proc.wait(PROBE_TIMEOUT_S)
    return spent


def _tree_cpu(pid: int) -> float:
    """User + sys seconds so far of `pid` and every process under it (workers may be a fork
    server's children), read from /proc while they run."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            continue  # gone meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def section_idle(seconds: float, runs: int, variants: list[tuple[str, dict[str, str]]]) -> None:
    print(f"\n### Idle: CPU s of run of live_chain.vpl over {seconds:g} s of silent standard input\n")
    print("| variant | runs | CPU s |")
    print("|---|---|---:|")
    spent: dict[str, list[float]] = {name: [] for name, _ in variants}
    for _ in range(runs):
        for name, env in variants:
            spent[name].append(idle_cpu(seconds, env))
    for name, got in spent.items():
        print(f"| {name} | {', '.join(f'{x:.2f}' for x in got)} | {statistics.median(got):.2f} |", flush=True)


def _timed(cmd: list[str], timeout: float, variant: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + sys, workers included) of a whole command (stdout to
    /dev/null), and its standard error."""
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=devnull, stderr=err, start_new_session=True,
                                env=_env(variant or {}))
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc={proc.returncode}):\n{text[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, text


def _events_processed(stderr: str) -> int:
    m = re.search(r"Events processed:\s+(\d+)", stderr)
    return int(m.group(1)) if m else -1


def section_throughput(programs: list[str], n: int, runs: int, timeout: float,
                       variants: list[tuple[str, dict[str, str]]]) -> list[dict[str, object]]:
    events = harness.data_file(n)
    rows: list[dict[str, object]] = []
    print(f"\n### Throughput from a file: run --input vs simulate --immediate, {n:,} events, {runs} alternated rounds\n")
    print("| program | variant | simulate ev/s | run ev/s | run/simulate (median of pairs) | pairs | simulate CPU s | run CPU s |")
    print("|---|---|---:|---:|---:|---|---:|---:|")
    for program in programs:
        path = str(harness.PROGRAMS / f"{program}.vpl")
        sim_cmd = [harness.cli(), "simulate", "-p", path, "-e", str(events), "--immediate", "--output", "jsonl"]
        run_cmd = [harness.cli(), "run", path, "--input", str(events), "--output", "jsonl"]
        sims: list[float] = []
        sim_cpu: list[float] = []
        lives: dict[str, list[float]] = {name: [] for name, _ in variants}
        cpu: dict[str, list[float]] = {name: [] for name, _ in variants}
        for _ in range(runs):
            # simulate, then each variant of run: one round, every ratio against that round's simulate
            plan: list[tuple[list[str], dict[str, str], list[float], list[float]]] = [(sim_cmd, {}, sims, sim_cpu)]
            plan += [(run_cmd, env, lives[name], cpu[name]) for name, env in variants]
            for cmd, env, into, cpu_into in plan:
                wall, cpu_s, text = _timed(cmd, timeout, env)
                if _events_processed(text) != n:
                    raise RuntimeError(f"{' '.join(cmd)}: summary says {_events_processed(text)} events, not {n}")
                into.append(wall)
                cpu_into.append(cpu_s)
        for name, _ in variants:
            ratios = [s / r for s, r in zip(sims, lives[name], strict=True)]
            ratio = statistics.median(ratios)
            print(f"| {program} | {name} | {n / statistics.median(sims):,.0f} | {n / statistics.median(lives[name]):,.0f} | "
                  f"{ratio:.2f} | {', '.join(f'{x:.2f}' for x in ratios)} | {statistics.median(sim_cpu):.2f} | "
                  f"{statistics.median(cpu[name]):.2f} |", flush=True)
            rows.append({"program": program, "variant": name, "simulate_s": sims, "run_s": lives[name],
                         "ratio": ratio, "cpu_s": cpu[name]})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="latency,throughput")
    ap.add_argument("--rates", default="10000,100000")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--programs", default="filter,chain_contexts")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME or NAME:VAR=VALUE,... (e.g. before:PYTHONPATH=/tmp/old-tree): the runs of every "
                         "variant are alternated in one invocation; default one, `now`")
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--tick-ms", type=float, default=0.0,
                    help="the writer writes at most once per tick (the lines due by then); 0: each line when due")
    args = ap.parse_args(argv)
    sections = set(args.only.split(","))
    variants = parse_variants(args.variant)
    sys.setswitchinterval(0.0005)  # the collector stamps records promptly even while the writer runs
    m = harness.machine()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}; "
          f"load {harness.load()}")
    if "latency" in sections:
        section_latency([int(r) for r in args.rates.split(",")], args.seconds, args.warmup, args.runs, args.timeout,
                        args.tick_ms / 1000.0, variants)
    if "idle" in sections:
        section_idle(args.idle_seconds, args.runs, variants)
    if "throughput" in sections:
        section_throughput(args.programs.split(","), args.events, args.runs, args.timeout, variants)


if __name__ == "__main__":
    main()
