"""Start-up time of `chaoslab --help` and the cost of planning a large matrix.

Prints figures against the goals; it is not a test.

- start-up: median of N runs of `python -m chaoslab --help` (and of the `chaoslab`
  console script when installed), goal ≤ 0.3 s;
- planning: a 5,000-service catalog and a game day whose matrix crosses every service
  with 3 faults, written as files and loaded through the loader; load and plan are
  timed separately, goal for the plan ≤ 2 s and ≤ 300 MB.

Usage: python benchmarks/bench_cli.py [--runs N] [--services N]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from chaoslab.loader import load_gameday  # noqa: E402 - after the path set-up above
from chaoslab.plan import build_plan, plan_to_dict  # noqa: E402

STARTUP_GOAL_S = 0.3
PLAN_GOAL_S = 2.0
PLAN_GOAL_MB = 300.0
T = TypeVar("T")

FAULTS = """    faults:
      - name: pod-kill
        podChaos: {action: pod-kill, mode: one, duration: 20s}
      - name: delay
        networkChaos: {action: delay, mode: all, delay: {latency: 200ms, jitter: 20ms}, duration: 20s}
      - name: loss
        networkChaos: {action: loss, mode: fixed-percent, value: "50", loss: {loss: "10"}, duration: 20s}
"""


def _median_run(command: list[str], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO_ROOT)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def startup(runs: int) -> None:
    print(f"== start-up: `chaoslab --help`, median of {runs} runs (goal ≤ {STARTUP_GOAL_S} s)")
    candidates = {"python -m chaoslab --help": [sys.executable, "-m", "chaoslab", "--help"]}
    script = Path(sys.executable).parent / "chaoslab"
    if script.exists():
        candidates["chaoslab --help (console script)"] = [str(script), "--help"]
    baseline = _median_run([sys.executable, "-c", "pass"], runs)
    print(f"   {'python -c pass (interpreter alone)':<40} {baseline:6.3f} s")
    for label, command in candidates.items():
        median = _median_run(command, runs)
        verdict = "ok" if median <= STARTUP_GOAL_S else "OVER GOAL"
        print(f"   {label:<40} {median:6.3f} s  {verdict}")


def _write_inputs(folder: Path, services: int) -> Path:
    lines = ["apiVersion: chaoslab/v1", "kind: Catalog", "metadata: {name: big}", "spec:", "  services:"]
    for i in range(services):
        tier = "non-core" if i % 2 else "core"
        lines += [f"    - name: svc-{i:05d}", f"      namespace: ns-{i % 50:02d}", f"      tier: {tier}",
                  f"      selector: {{labelSelectors: {{app: svc-{i:05d}}}}}", f"      owner: team-{i % 40}"]
    (folder / "catalog.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    gameday = folder / "gameday.yaml"
    gameday.write_text(
        "apiVersion: chaoslab/v1\nkind: GameDay\nmetadata: {name: big}\nspec:\n  catalog: catalog.yaml\n"
        "  matrix:\n    services: all\n" + FAULTS + "  safety: {maxPercent: 50}\n",
        encoding="utf-8",
    )
    return gameday


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    gc.collect()
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def _peak_mb(fn: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def planning(services: int) -> None:
    print(f"== planning: {services:,} services × 3 faults (goal ≤ {PLAN_GOAL_S} s, ≤ {PLAN_GOAL_MB:.0f} MB)")
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-") as tmp:
        path = _write_inputs(Path(tmp), services)
        size_kb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1024
        gameday, load_s = _timed(lambda: load_gameday(path))
        plan, plan_s = _timed(lambda: build_plan(gameday))
        text, json_s = _timed(lambda: json.dumps(plan_to_dict(plan)))
        load_mb = _peak_mb(lambda: load_gameday(path))
        plan_mb = _peak_mb(lambda: build_plan(gameday))
    steps = len(plan.steps)
    refused = sum(1 for s in plan.steps if s.refusal)
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdict = "ok" if plan_s <= PLAN_GOAL_S and plan_mb <= PLAN_GOAL_MB else "OVER GOAL"
    print(f"   input files                    {size_kb:8.0f} KB")
    print(f"   load (parse + validate)        {load_s:8.3f} s   peak {load_mb:7.1f} MB (tracemalloc)")
    print(f"   build_plan                     {plan_s:8.3f} s   peak {plan_mb:7.1f} MB (tracemalloc)",
          verdict)
    print(f"   plan_to_dict + json.dumps      {json_s:8.3f} s   {len(text) / 2**20:.1f} MB of JSON")
    print(f"   steps                          {steps:8,d}     ({refused:,} refused by maxPercent)")
    print(f"   process max RSS                {maxrss_mb:8.1f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="start-up runs (default 9)")
    parser.add_argument("--services", type=int, default=5000, help="catalog size (default 5000)")
    args = parser.parse_args()
    startup(args.runs)
    planning(args.services)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
