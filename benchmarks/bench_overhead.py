"""P2 overhead: `chaoslab run` on one experiment against `chaos run` of the same exported
experiment, side by side on the sandbox.

Both run the same Chaos Toolkit experiment (steady-state hypothesis, inject, a 2 s hold,
hypothesis again, rollback). chaoslab adds: every SLO alert of the system checked before
injection, the preflight, the watcher, orphan and leftover checks, the recovery check and
the reports. Reported: wall time minus the hold, median of N alternating runs. Goal: the
overhead (chaoslab − chaos) ≤ 0.3 s and ≤ 1.0× chaos's own time; chaoslab / chaos ≤ 1.0.

Each command's time is also split at the hold (a `sitecustomize` on PYTHONPATH, loaded by
both alike, notes when `chaoslab.halt.hold` starts and returns): the wall time and the
CPU time (user + system, every thread) before and after it, and the CPU used during it,
where chaoslab's watcher checks every SLO of the system four times a second and the
record's modules load. A machine busy with other work distorts CPU time far less than
wall time.

A third column runs chaoslab with an OTLP/HTTP endpoint set (OTEL_EXPORTER_OTLP_ENDPOINT,
a local receiver that accepts every export): the cost of tracing a run, which the second
column (no OTEL_* variable) must not pay.

Prints figures; it is not a test. Usage: python benchmarks/bench_overhead.py [--runs N]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox_fixture import REPO_ROOT, RULES, chaoslab, sandbox, wait_quiet

HOLD_S = 2.0
GOAL_OVERHEAD_S = 0.3
GOAL_RATIO = 1.0

EXPERIMENT = f"""apiVersion: chaoslab/v1
kind: Experiment
metadata: {{name: catalog-delay, description: catalog 50 ms slower for {HOLD_S:g} s}}
spec:
  service: catalog
  fault:
    networkChaos: {{action: delay, mode: all, delay: {{latency: 50ms}}, duration: {HOLD_S:g}s}}
"""


# Loaded by every Python process of the timed commands (PYTHONPATH): appends a line to
# $CHAOSLAB_BENCH_HOLD when chaoslab.halt.hold starts and when it returns, with the wall
# clock and the process's CPU time (every thread), once chaos or chaoslab imports it.
HOLD_MARKS = """
import os, sys, time
if os.environ.get("CHAOSLAB_BENCH_HOLD"):
    import importlib.abc, importlib.util

    class _Marks(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "chaoslab.halt":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                hold = module.hold

                def marked(*args, **kwargs):
                    before = (time.time(), time.process_time())
                    try:
                        return hold(*args, **kwargs)
                    finally:
                        with open(os.environ["CHAOSLAB_BENCH_HOLD"], "a") as out:
                            out.write(f"{before[0]} {before[1]} {time.time()} {time.process_time()}\\n")

                module.hold = marked

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Marks())
"""


class Timing:
    """One command's run: wall and CPU seconds before the hold, during it and after it."""

    def __init__(self, *, started: float, ended: float, cpu: float, marks: str) -> None:
        hold_start, cpu_start, hold_end, cpu_end = (float(v) for v in marks.split())
        self.pre, self.post = hold_start - started, ended - hold_end
        self.wall = self.pre + self.post
        self.cpu_pre, self.cpu_hold, self.cpu_post = cpu_start, cpu_end - cpu_start, cpu - cpu_end


class _Accept(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that accepts every export."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


ATTEMPTS = 5


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], *, env: dict[str, str], cwd: Path, url: str) -> Timing:
    """A run of ``command``. A chaoslab run that exits 1 found the shop's own SLOs (its
    latency p99) unmet before injecting, which a loaded machine causes: it is timed again
    once the shop is quiet, up to ATTEMPTS times."""
    marks = cwd / "hold-marks"
    for attempt in range(1, ATTEMPTS + 1):
        wait_quiet(url)
        marks.unlink(missing_ok=True)
        cpu = _children_cpu()
        started = time.time()
        result = subprocess.run(command, env={**env, "CHAOSLAB_BENCH_HOLD": str(marks)}, cwd=cwd,
                                capture_output=True, text=True, check=False)
        ended = time.time()
        if result.returncode == 0:
            return Timing(started=started, ended=ended, cpu=_children_cpu() - cpu, marks=marks.read_text())
        if result.returncode != 1 or attempt == ATTEMPTS:
            output = f"{result.stdout}{result.stderr}"
            raise SystemExit(f"{' '.join(command)} exited {result.returncode}:\n{output}")
        print(f"     (baseline not met on a loaded machine; timing that run again, attempt {attempt + 1})",
              flush=True)
        time.sleep(5)
    raise AssertionError("unreachable")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # As pip does for an installed package (and did for chaoslib): without bytecode, with
    # PYTHONDONTWRITEBYTECODE set, every chaoslab run would compile its sources afresh.
    compileall.compile_dir(REPO_ROOT / "chaoslab", quiet=1)
    chaos_bin = str(Path(sys.executable).with_name("chaos"))
    ours: list[Timing] = []
    theirs: list[Timing] = []
    traced: list[Timing] = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-overhead-") as tmp, sandbox() as (env, url):
        work = Path(tmp)
        hooks = work / "hooks"
        hooks.mkdir()
        (hooks / "sitecustomize.py").write_text(HOLD_MARKS)
        env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(hooks), env.get("PYTHONPATH")) if p)}
        experiment = work / "catalog-delay.yaml"
        experiment.write_text(EXPERIMENT)
        catalog = str(REPO_ROOT / "experiments" / "catalog.yaml")
        exported = chaoslab(
            "export",
            "--to",
            "chaostoolkit",
            "--target",
            "sandbox",
            "--catalog",
            catalog,
            "--rules",
            str(RULES),
            str(experiment),
            env=env,
        ).stdout
        (work / "catalog-delay.json").write_text(exported)
        chaoslab_cmd = [
            sys.executable,
            "-m",
            "chaoslab",
            "run",
            "--target",
            "sandbox",
            "--catalog",
            catalog,
            "--rules",
            str(RULES),
            "--reports",
            str(work / "reports"),
            str(experiment),
        ]
        chaos_cmd = [
            chaos_bin,
            "--no-version-check",
            "run",
            "--journal-path",
            str(work / "journal.json"),
            str(work / "catalog-delay.json"),
        ]
        otlp_env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}"}
        print(
            f"{'run':>3}  {'chaoslab run':>13}  {'chaos run':>10}  {'chaoslab+OTLP':>14}"
            f"   (wall time minus the {HOLD_S:g} s hold; CPU chaoslab / chaos)"
        )
        for index in range(1, args.runs + 1):
            ours.append(timed(chaoslab_cmd, env=env, cwd=work, url=url))
            theirs.append(timed(chaos_cmd, env=env, cwd=work, url=url))
            traced.append(timed(chaoslab_cmd, env=otlp_env, cwd=work, url=url))
            mine, base = ours[-1], theirs[-1]
            cpu = f"cpu {mine.cpu_pre + mine.cpu_hold + mine.cpu_post:.3f}s / " \
                  f"{base.cpu_pre + base.cpu_hold + base.cpu_post:.3f}s"
            print(f"{index:>3}  {mine.wall:>12.3f}s  {base.wall:>9.3f}s  {traced[-1].wall:>13.3f}s   {cpu}",
                  flush=True)
    receiver.shutdown()

    def median(timings: list[Timing], field: str) -> float:
        return float(statistics.median(getattr(t, field) for t in timings))

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    mine, base = median(ours, "wall"), median(theirs, "wall")
    overhead = mine - base
    print(f"\nmedian without the hold: chaoslab {mine:.3f}s, chaos {base:.3f}s")
    print(
        f"  overhead (chaoslab - chaos): {overhead:+.3f}s  (goal ≤ {GOAL_OVERHEAD_S}s: "
        f"{met(overhead <= GOAL_OVERHEAD_S)})"
    )
    print(
        f"  overhead / chaos:            {overhead / base:.2f}x   (goal ≤ {GOAL_RATIO:.1f}x: "
        f"{met(overhead / base <= GOAL_RATIO)})"
    )
    print(
        f"  chaoslab / chaos:            {mine / base:.2f}x   (goal ≤ 1.0x: {met(mine <= base)}; chaoslab "
        "also checks every SLO of the system before and after, preflights, and writes its reports)"
    )
    print("\nmedians around the hold:        chaoslab   chaos")
    for label, field in (("wall before the hold", "pre"), ("wall after the hold", "post"),
                         ("CPU before the hold", "cpu_pre"), ("CPU after the hold", "cpu_post"),
                         ("CPU during the hold", "cpu_hold")):
        print(f"  {label:<28} {median(ours, field):>7.3f}s {median(theirs, field):>7.3f}s")
    outside_mine = statistics.median(t.cpu_pre + t.cpu_post for t in ours)
    outside_base = statistics.median(t.cpu_pre + t.cpu_post for t in theirs)
    print(f"  CPU outside the hold: {outside_mine / outside_base:.2f}x chaos's; during it chaoslab's watcher "
          "checks every SLO 4 times a second and the record's modules load")
    with_trace = median(traced, "wall")
    print(f"\ntracing (OTLP endpoint set): chaoslab {with_trace:.3f}s, {with_trace - mine:+.3f}s "
          "over the untraced run (no OTEL_* variable: OpenTelemetry is not even imported)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
