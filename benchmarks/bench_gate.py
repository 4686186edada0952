"""The SLO gate under load: requests per second and latency of ``GET /gate`` with 50
concurrent callers (keep-alive, as StatusChecks call it), against the sandbox's real
Prometheus judging experiments/rules/shop-slo.yaml. Also what Prometheus paid meanwhile:
the gate's own evaluation and request counters, which must follow the evaluation
interval, not the number of callers.

Prints figures; it is not a test. Usage:
  python benchmarks/bench_gate.py [--callers 50] [--seconds 10] [--prometheus URL]
(without --prometheus it brings a private sandbox up and down).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox_fixture import REPO_ROOT, RULES, sandbox

CATALOG = REPO_ROOT / "experiments" / "catalog.yaml"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


@contextlib.contextmanager
def gate(prometheus_url: str, *, interval: float) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "chaoslab", "gate", "serve", "--catalog", str(CATALOG), "--rules", str(RULES),
         "--prometheus", prometheus_url, "--port", "0", "--interval", f"{interval:g}"],
        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        banner = process.stdout.readline() if process.stdout else ""
        if "listening on " not in banner:
            raise SystemExit(f"the gate did not start: {banner!r}")
        yield banner.split("listening on ", 1)[1].split("/gate", 1)[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def metric(url: str, name: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def wait_healthy(url: str, *, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/gate", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit("the gate never answered 200 (is the sandbox healthy?)")


def load(url: str, *, callers: int, seconds: float, reasons: Counter[str]
         ) -> tuple[list[float], Counter[int], float]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(callers + 1)
    stop_at: list[float] = []

    def caller() -> None:
        own: list[float] = []
        codes: Counter[int] = Counter()
        with requests.Session() as session:
            start.wait()
            while time.monotonic() < stop_at[0]:
                began = time.perf_counter()
                try:
                    response = session.get(f"{url}/gate", timeout=10)
                except requests.RequestException:
                    codes[0] += 1
                else:
                    codes[response.status_code] += 1
                    if response.status_code == 503 and codes[503] <= 5:  # a few per caller say why
                        reasons.update(f"{b['alert']} ({b['kind']})" for b in response.json()["breaches"])
                own.append(time.perf_counter() - began)
        with lock:
            latencies.extend(own)
            statuses.update(codes)

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(callers)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    stop_at.append(began + seconds)
    start.wait()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.monotonic() - began


def measure(prometheus_url: str, args: argparse.Namespace) -> None:
    with gate(prometheus_url, interval=args.interval) as url:
        wait_healthy(url)
        evaluations = metric(url, "chaoslab_gate_evaluations_total")
        sent = metric(url, "chaoslab_gate_prometheus_requests_total")
        reasons: Counter[str] = Counter()
        latencies, statuses, elapsed = load(url, callers=args.callers, seconds=args.seconds, reasons=reasons)
        evaluations = metric(url, "chaoslab_gate_evaluations_total") - evaluations
        sent = metric(url, "chaoslab_gate_prometheus_requests_total") - sent
    total = len(latencies)
    print(f"{args.callers} concurrent callers for {elapsed:.1f}s: {total} requests, "
          f"{total / elapsed:.0f} requests/s; statuses {dict(sorted(statuses.items()))}")
    print(f"latency: p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
    if reasons:
        print(f"breaches named by a sample of the 503 answers: {dict(reasons.most_common(5))}")
    print(f"meanwhile the gate evaluated {evaluations:.0f} times (every {args.interval:g}s) and sent "
          f"{sent:.0f} requests to Prometheus: {sent / max(total, 1):.4f} per caller request")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=1.0, help="the gate's evaluation interval")
    parser.add_argument("--prometheus", metavar="URL", help="an existing sandbox's Prometheus")
    args = parser.parse_args()
    if args.prometheus:
        measure(args.prometheus, args)
        return 0
    with sandbox() as (_env, prometheus_url):
        measure(prometheus_url, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
