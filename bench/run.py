"""varpulis-mp benchmark harness (`make bench`).

Sections (select with `--only`, comma-separated; default: all of them):

* `e2e` - whole commands `varpulis-mp simulate -p P -e FILE --immediate --output jsonl > /dev/null`
  over a generated event file (`--events`, default 1,000,000, kept in bench/data/) for each
  program of bench/programs/ (or `--programs`). Events/s = events / wall time of the command,
  median of `--runs` runs; CPU = user + sys of the command and its processes; peak RSS = the
  largest single process (`wait4` rusage) and, for programs with contexts, the largest sum over
  the process tree sampled every 0.1 s. The summary's `Events processed` is checked.
* `api` - the engine alone through the Python API: `run_local` over events already in memory (a
  list of `(type, ts, fields)` tuples built before timing), every output record counted in the
  callback, against Bytewax 0.21 (bench/bytewax_flows.py) over the same list with a counting sink,
  in the same run, runs alternated; the two record counts must be equal.
* `layouts` - ratios between process layouts, whole `simulate` commands over `--layout-events`
  events (default 300,000), runs of A and B alternated: filter_one_context / filter,
  heavy_two_contexts vs heavy_no_contexts, heavy_pool vs heavy_no_contexts and vs heavy_pool_one,
  chain_contexts (and chain for reference); no memory
  sampling there, so both sides are measured alike.
* `profile` - cProfile of the API run (events in memory) of each program in `--profile` (default:
  those whose target was missed in this run), top functions by own time.

Commands that fail or run past `--timeout` are recorded as such and the harness goes on.
Results are printed as Markdown tables and written as JSON to bench/results/.

    .venv/bin/python bench/run.py [--only e2e,api,layouts,profile] [--programs filter,chain]
        [--events N] [--api-events N] [--layout-events N] [--runs R] [--timeout S]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import gen  # noqa: E402

PROGRAMS = HERE / "programs"
DATA = HERE / "data"
RESULTS = HERE / "results"
SECTIONS = ("e2e", "api", "layouts", "profile")

# API workloads: name -> (program, Bytewax flow, target ratio varpulis/Bytewax). The target is
# against Bytewax's own windowing; `tumbling_stateful` (a hand-written per-zone state machine, the
# cheapest correct Bytewax flow) is shown for reference and has no target.
API_WORKLOADS: dict[str, tuple[str, str, float | None]] = {
    "filter": ("filter", "filter", 1.0),
    "count_window": ("count_window", "count_window", 2.0),
    "tumbling": ("zone_tumbling", "tumbling", 5.0),
    "tumbling_stateful": ("zone_tumbling", "tumbling_stateful", None),
    "chain": ("chain", "chain", 1.0),
}
E2E_TARGETS = {"filter": 200_000.0}  # events/s
# Layout comparisons: (A, B, what is reported, target).
LAYOUTS: list[tuple[str, str | None, str, float]] = [
    ("filter_one_context", "filter", "events/s of A / events/s of B", 0.9),
    ("heavy_two_contexts", "heavy_no_contexts", "events/s of A / events/s of B", 1.6),
    ("chain_contexts", "chain", "events/s of A (target in events/s)", 150_000.0),
    # A pool of two workers (RUN.md §7) against no contexts and against a pool of one.
    ("heavy_pool", "heavy_no_contexts", "events/s of A / events/s of B", 1.6),
    ("heavy_pool", "heavy_pool_one", "events/s of A / events/s of B", 1.4),
]


@dataclass
class CommandRun:
    """One whole `simulate` command."""

    program: str
    ok: bool
    status: str  # "ok", "timeout", "rc=N", "events=N" (summary disagrees)
    wall_s: float
    cpu_s: float
    max_rss_kb: int  # largest single process (wait4)
    tree_rss_kb: int  # largest sampled sum over the process tree (0 when not sampled)
    stderr_tail: str = ""


@dataclass
class Report:
    """Everything one invocation measured."""

    date: str
    machine: dict[str, str]
    command: str
    e2e: list[dict[str, Any]] = field(default_factory=list)
    api: list[dict[str, Any]] = field(default_factory=list)
    layouts: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)
    missed: list[tuple[str, str]] = field(default_factory=list)  # (program, profile mode)


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": model, "python": sys.version.split()[0]}


def data_file(n: int) -> Path:
    """The generated mixed-type event file of n events (bench/gen.py, seed 42), made once."""
    return gen.ensure(n, DATA / f"mixed_{n}.evt")


def has_contexts(program: str) -> bool:
    return re.search(r"^\s*context\s+\w+", (PROGRAMS / f"{program}.vpl").read_text(), re.M) is not None


def cli() -> str:
    exe = Path(sys.executable).with_name("varpulis-mp")
    return str(exe) if exe.exists() else (shutil.which("varpulis-mp") or "varpulis-mp")


def simulate_command(program: str, events: Path) -> list[str]:
    return [cli(), "simulate", "-p", str(PROGRAMS / f"{program}.vpl"), "-e", str(events),
            "--immediate", "--output", "jsonl"]


def _tree_rss_kb(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total // 1024


def run_command(program: str, events: Path, n: int, timeout: float, sample_tree: bool = True) -> CommandRun:
    """Runs one `simulate` command, stdout to /dev/null; wall, CPU and memory of the whole command.

    `sample_tree` false: no sampling of the process tree's memory, whose cost (a psutil walk every
    0.1 s on a machine with few cores) would fall on programs with contexts only.
    """
    sample = sample_tree and has_contexts(program)
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(simulate_command(program, events), stdout=devnull, stderr=err,
                                start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        peak = [0]
        done = threading.Event()

        def sampler() -> None:
            while not done.wait(0.1):
                peak[0] = max(peak[0], _tree_rss_kb(proc.pid))

        thread = threading.Thread(target=sampler, daemon=True) if sample else None
        if thread:
            thread.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        timer.cancel()
        if thread:
            thread.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if not timed_out.is_set():  # leftover workers of a failed run
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    m = re.search(r"Events processed:\s*(\d+)", stderr)
    if timed_out.is_set():
        state = "timeout"
    elif proc.returncode != 0:
        state = f"rc={proc.returncode}"
    elif not m or int(m.group(1)) != n:
        state = f"events={m.group(1) if m else '?'}"
    else:
        state = "ok"
    return CommandRun(program, state == "ok", state, wall, usage.ru_utime + usage.ru_stime,
                      usage.ru_maxrss, peak[0], "" if state == "ok" else stderr[-600:])


def load() -> str:
    """The 1/5/15-minute load averages (the machine may be shared)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def section_e2e(report: Report, programs: list[str], n: int, runs: int, timeout: float) -> None:
    path = data_file(n)
    print(f"\n## End to end: `simulate --immediate --output jsonl > /dev/null`, {n:,} events, "
          f"median of {runs}\n")
    print(f"load average before: {load()}\n")
    print("| program | events/s (wall) | wall s | CPU s | events per CPU s | peak RSS MB (largest process) "
          "| tree RSS MB | status |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for prog in programs:
        results: list[CommandRun] = []
        for _ in range(runs):
            r = run_command(prog, path, n, timeout)
            results.append(r)
            if not r.ok:
                break
        good = [r for r in results if r.ok]
        wall = _median([r.wall_s for r in good])
        row: dict[str, Any] = {
            "program": prog, "events": n, "runs": len(good),
            "events_per_s": n / wall if good else None,
            "wall_s": wall if good else None,
            "cpu_s": _median([r.cpu_s for r in good]) if good else None,
            "max_rss_mb": max(r.max_rss_kb for r in results) / 1024,
            "tree_rss_mb": max(r.tree_rss_kb for r in results) / 1024,
            "status": "ok" if len(good) == len(results) else results[-1].status,
            "stderr_tail": "" if good and len(good) == len(results) else results[-1].stderr_tail,
        }
        report.e2e.append(row)
        target = E2E_TARGETS.get(prog)
        if target is not None and (not good or n / wall < target):
            report.missed.append((prog, "file"))
        rate = f"{n / wall:,.0f}" if good else "-"
        tree = f"{row['tree_rss_mb']:.0f}" if row["tree_rss_mb"] else "-"
        tgt = f" (target >= {target:,.0f})" if target else ""
        per_cpu = f"{n / row['cpu_s']:,.0f}" if row["cpu_s"] else "-"
        print(f"| {prog} | {rate}{tgt} | {row['wall_s'] or float('nan'):.2f} | {row['cpu_s'] or float('nan'):.2f} "
              f"| {per_cpu} | {row['max_rss_mb']:.0f} | {tree} | {row['status']} |", flush=True)
        if row["stderr_tail"]:
            print(f"<!-- {prog}: {row['stderr_tail'].strip().splitlines()[-1:]} -->", flush=True)


def varpulis_api(program: str) -> Callable[[list[Any]], int]:
    """A function running `program` with run_local over an event list, returning the records output."""
    from varpulis_mp.lang.frontend import load_program
    from varpulis_mp.runtime.handover import OriginsWithOutputs
    from varpulis_mp.runtime.local import run_local

    path = PROGRAMS / f"{program}.vpl"
    checked = load_program(path.read_bytes(), str(path))

    def run(events: list[Any]) -> int:
        count = 0

        def consume(out: list[Any]) -> None:
            nonlocal count
            if out:
                for o in out:
                    if o.kind == "record":
                        count += 1

        run_local(checked, events, OriginsWithOutputs(consume))
        return count

    return run


def section_api(report: Report, workloads: list[str], n: int, runs: int) -> None:
    try:
        import bytewax_flows
    except ImportError as e:
        print(f"\n## Engine vs Bytewax: skipped, Bytewax is not installed ({e}); "
              "`.venv/bin/pip install 'bytewax==0.21.*'`")
        bytewax_flows = None  # type: ignore[assignment]
    events = list(gen.events(n))
    print(f"\n## Engine alone (Python API, events in memory) vs Bytewax 0.21, {n:,} events, "
          f"median of {runs} alternated runs\n")
    print(f"load average before: {load()}\n")
    print("| workload | program | varpulis-mp events/s | Bytewax events/s | ratio | target | records (both) |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name in workloads:
        program, flow, target = API_WORKLOADS[name]
        vp = varpulis_api(program)
        vp_t: list[float] = []
        bw_t: list[float] = []
        vp_n = bw_n = -1
        for _ in range(runs):
            t = time.perf_counter()
            vp_n = vp(events)
            vp_t.append(time.perf_counter() - t)
            if bytewax_flows is not None:
                t = time.perf_counter()
                bw_n = bytewax_flows.run(flow, events)
                bw_t.append(time.perf_counter() - t)
        ratios = [b / a for a, b in zip(vp_t, bw_t, strict=False)]
        ratio = _median(ratios) if ratios else None
        row: dict[str, Any] = {
            "workload": name, "program": program, "events": n, "runs": runs,
            "varpulis_events_per_s": n / _median(vp_t), "bytewax_events_per_s": n / _median(bw_t) if bw_t else None,
            "ratio": ratio, "target": target, "varpulis_records": vp_n, "bytewax_records": bw_n,
        }
        report.api.append(row)
        if ratio is not None and target is not None and ratio < target:
            report.missed.append((program, "memory"))
        same = "equal" if vp_n == bw_n else f"DIFFER {vp_n} vs {bw_n}"
        bw = f"{row['bytewax_events_per_s']:,.0f}" if bw_t else "-"
        rt = f"{ratio:.2f}x" if ratio is not None else "-"
        goal = f">= {target:g}x" if target is not None else "reference"
        print(f"| {name} | {program}.vpl | {row['varpulis_events_per_s']:,.0f} | {bw} | {rt} | {goal} "
              f"| {vp_n:,} {same} |", flush=True)


def section_layouts(report: Report, n: int, runs: int, timeout: float) -> None:
    path = data_file(n)
    print(f"\n## Process layouts: whole `simulate` commands, {n:,} events, {runs} alternated runs each\n")
    print(f"load average before: {load()}\n")
    print("| A | B | A events/s | B events/s | ratio A/B (median of per-pair) | target | A CPU s | B CPU s "
          "| status |")
    print("|---|---|---:|---:|---:|---|---:|---:|---|")
    for a, b, what, target in LAYOUTS:
        ra: list[CommandRun] = []
        rb: list[CommandRun] = []
        for _ in range(runs):
            ra.append(run_command(a, path, n, timeout, sample_tree=False))
            if b is not None:
                rb.append(run_command(b, path, n, timeout, sample_tree=False))
            if not ra[-1].ok or (rb and not rb[-1].ok):
                break
        ga = [r.wall_s for r in ra if r.ok]
        gb = [r.wall_s for r in rb if r.ok]
        pairs = [y.wall_s / x.wall_s for x, y in zip(ra, rb, strict=False) if x.ok and y.ok]
        ratio = _median(pairs) if pairs else None
        a_rate = n / _median(ga) if ga else None
        b_rate = n / _median(gb) if gb else None
        status = ", ".join(sorted({r.status for r in ra + rb}))
        row: dict[str, Any] = {"a": a, "b": b, "events": n, "a_events_per_s": a_rate, "b_events_per_s": b_rate,
               "ratio": ratio, "what": what, "target": target, "status": status,
               "a_cpu_s": _median([r.cpu_s for r in ra if r.ok]) if ga else None,
               "b_cpu_s": _median([r.cpu_s for r in rb if r.ok]) if gb else None,
               "stderr_tail": next((r.stderr_tail for r in ra + rb if not r.ok), "")}
        report.layouts.append(row)
        if a == "chain_contexts":
            met = a_rate is not None and a_rate >= target
            tgt = f"A >= {target:,.0f} events/s"
        else:
            met = ratio is not None and ratio >= target
            tgt = f">= {target:g}"
        if not met:
            report.missed.append((a, "file"))
        print(f"| {a} | {b} | {f'{a_rate:,.0f}' if a_rate else '-'} | {f'{b_rate:,.0f}' if b_rate else '-'} "
              f"| {f'{ratio:.2f}' if ratio else '-'} | {tgt} | {_fmt(row['a_cpu_s'])} | {_fmt(row['b_cpu_s'])} "
              f"| {status} |", flush=True)
        if row["stderr_tail"]:
            print(f"<!-- {a}: {row['stderr_tail'].strip().splitlines()[-1:]} -->", flush=True)


def _fmt(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else "-"


def section_profile(report: Report, targets: list[tuple[str, str]], n: int, top: int) -> None:
    """cProfile of each (program, mode): mode "memory" is run_local over events in memory, "file"
    is `varpulis_mp.simulate(program, file)` over the generated n-event file (reader included)."""
    import varpulis_mp

    events = list(gen.events(n))
    path = data_file(n)
    for prog, mode in targets:
        if not (PROGRAMS / f"{prog}.vpl").exists():
            continue
        prof = cProfile.Profile()
        if mode == "memory":
            run = varpulis_api(prog)
            prof.enable()
            run(events)
            prof.disable()
            what = f"run_local over {n:,} events in memory"
        else:
            prof.enable()
            result = varpulis_mp.simulate(PROGRAMS / f"{prog}.vpl", path)
            prof.disable()
            assert result.summary["events_processed"] == n
            what = f"varpulis_mp.simulate over the {n:,}-event file, one process"
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
        text = "\n".join(line for line in buf.getvalue().splitlines() if line.strip())
        report.profiles[f"{prog} ({mode})"] = text
        print(f"\n## Profile: {prog}.vpl, {what} (top {top} by own time)\n")
        print("```\n" + text + "\n```", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections, comma-separated: {SECTIONS}")
    parser.add_argument("--programs", help="e2e: programs (file stems), comma-separated; api: workloads "
                        f"{tuple(API_WORKLOADS)} (default: all)")
    parser.add_argument("--events", type=int, default=1_000_000, help="e2e events (default 1,000,000)")
    parser.add_argument("--api-events", type=int, default=300_000, help="api/profile events (default 300,000)")
    parser.add_argument("--layout-events", type=int, default=300_000, help="layouts events (default 300,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median; default 3)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per simulate command")
    parser.add_argument("--profile", help="programs to profile (default: the ones that missed a target)")
    parser.add_argument("--top", type=int, default=15, help="profile: functions shown")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    for s in only:
        if s not in SECTIONS:
            parser.error(f"unknown section {s!r}; choose from {SECTIONS}")
    selected = [p.strip() for p in args.programs.split(",")] if args.programs else None

    report = Report(datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), machine(),
                    " ".join([".venv/bin/python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]))
    print(f"# varpulis-mp benchmarks, {report.date}\n")
    print(f"machine: {report.machine['nproc']} CPUs, {report.machine['cpu']}, Python {report.machine['python']}; "
          f"command: `{report.command}`")
    if "e2e" in only:
        programs = selected or sorted(p.stem for p in PROGRAMS.glob("*.vpl"))
        section_e2e(report, [p for p in programs if (PROGRAMS / f"{p}.vpl").exists()], args.events, args.runs,
                    args.timeout)
    if "api" in only:
        workloads = [w for w in (selected or list(API_WORKLOADS)) if w in API_WORKLOADS]
        section_api(report, workloads, args.api_events, args.runs)
    if "layouts" in only:
        section_layouts(report, args.layout_events, args.runs, args.timeout)
    if "profile" in only:
        if args.profile:
            to_profile = [(p.strip(), m) for p in args.profile.split(",") for m in ("memory", "file")]
        else:
            to_profile = list(dict.fromkeys(report.missed))
        section_profile(report, to_profile, args.api_events, args.top)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench_{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(asdict(report), indent=2))
    missed = ", ".join(dict.fromkeys(p for p, _ in report.missed))
    print(f"\nmissed targets: {missed or 'none'}; results: {out}")


if __name__ == "__main__":
    main()
