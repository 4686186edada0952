"""The checklist ledger under concurrent writers: how long one run's update takes, and
how many updates per second 1 and 8 processes manage together (WAL, synchronous=FULL,
BEGIN IMMEDIATE). Every update records two findings, as a failing step does.

Prints figures; it is not a test.

Usage: python benchmarks/bench_ledger.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent("""
    import json, sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from chaoslab.pdca.ledger import GroupOutcome, Judgement, open_ledger
    from chaoslab.pdca_model import Finding, FindingKind

    reports, name, runs = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    took = []
    with open_ledger(reports) as ledger:
        for n in range(runs):
            findings = tuple(
                Finding(kind=kind, text="t.", experiment=f"e-{name}", service="s", target="s")
                for kind in (FindingKind.SLO_BROKEN, FindingKind.COVERAGE_GAP)
            )
            outcome = GroupOutcome(experiment=f"e-{name}", target="s", judgement=Judgement.FAILED,
                                   findings=findings)
            started = time.perf_counter()
            ledger.record_run(run_id=f"{name}-{n}", at=datetime.now(UTC), outcomes=[outcome])
            took.append(time.perf_counter() - started)
    print(json.dumps(took))
""")


def measure(writers: int, runs: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory(prefix="chaoslab-ledger-") as folder:
        started = time.perf_counter()
        procs = [
            subprocess.Popen([sys.executable, "-c", WRITER, folder, f"w{i}", str(runs)], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, text=True)
            for i in range(writers)
        ]
        took = [t for p in procs for t in json.loads(p.communicate(timeout=600)[0])]
        elapsed = time.perf_counter() - started
    return elapsed, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="updates per writer (default 50)")
    args = parser.parse_args()
    for writers in (1, 8):
        elapsed, took = measure(writers, args.runs)
        took.sort()
        p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
        print(f"{writers} writer(s) x {args.runs} updates: {writers * args.runs / elapsed:.0f} updates/s "
              f"(including start-up), one update median {statistics.median(took) * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
