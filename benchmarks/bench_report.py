"""Size of the reports of the sample game day and the time `chaoslab report` takes to
re-render them; the index over many runs.

Prints figures; it is not a test.

- sizes of run.json, report.md, report.html for the sample game day run (4 steps, 7 SLI
  series of 61 one-second samples, as tests/support/pdca_runs.py shapes it);
- `chaoslab report RUN_DIR` as a child process (median of N, start-up included), and the
  renderers alone in this process;
- index.html over a folder of R runs (all run.json files are read).

Usage: python benchmarks/bench_report.py [--runs N] [--folder-runs R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from chaoslab.report.files import write_index  # noqa: E402 - after the path set-up above
from chaoslab.report.html import render_html  # noqa: E402
from chaoslab.report.markdown import render_markdown  # noqa: E402
from tests.support.pdca_runs import sample_gameday_run  # noqa: E402


def timed(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--folder-runs", type=int, default=200)
    args = parser.parse_args()
    run = sample_gameday_run()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "reports" / run["run_id"]
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps(run, indent=2))
        cli = [sys.executable, "-m", "chaoslab", "report", str(folder)]
        subprocess.run(cli, check=True, capture_output=True)
        for name in ("run.json", "report.md", "report.html"):
            print(f"{name:12} {(folder / name).stat().st_size / 1024:7.1f} KiB")
        wall = timed(lambda: subprocess.run(cli, check=True, capture_output=True), args.runs)
        print(f"chaoslab report (child process, with start-up): {wall * 1000:.0f} ms, median of {args.runs}")
        print(f"render_markdown: {timed(lambda: render_markdown(run), args.runs) * 1000:.1f} ms")
        print(f"render_html:     {timed(lambda: render_html(run), args.runs) * 1000:.1f} ms")
        reports = folder.parent
        for i in range(args.folder_runs):
            other = reports / f"run-{i:04d}"
            other.mkdir()
            (other / "run.json").write_text(json.dumps({**run, "run_id": f"run-{i:04d}"}))
        index = timed(lambda: write_index(reports, items=run["checklist"]), max(1, args.runs // 2))
        print(f"index.html over {args.folder_runs + 1} runs: {index * 1000:.0f} ms, "
              f"{(reports / 'index.html').stat().st_size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
