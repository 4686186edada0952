"""The watcher's cost as the catalog grows: one evaluation of every halt condition, before
(two queries per condition, eight at a time) and after (chaoslab.prometheus.batch).

A real /usr/bin/prometheus scrapes one exporter serving synthetic services (a request
counter by code and a latency histogram each, traffic advancing with time) every 2 s
and evaluates two SLO alerts per service, written like experiments/rules/shop-slo.yaml
(an error ratio and a p99 latency). For 5, 50, 200 and 500 services (10 to 1,000
conditions) it prints: conditions, one evaluation's time (median), evaluations per second
(back to back), and Prometheus requests per evaluation (the alerts call included).

Then the watcher itself at 1,000 conditions: it asks the same batch queries two at a time
and judges each as it is answered (``watch.evaluate_stream``); with its interval at the
minimum, full rotations per second and queries per rotation.

Then the hung Prometheus: a server that accepts connections and never answers; the time
from the watcher's start to its no-data breach (goal: within 1 s).

Goals: 1,000 conditions ≥ 4 evaluations/s with ≤ 10 queries per evaluation.
Prints figures; it is not a test. Usage: python benchmarks/bench_watcher.py [--seconds S]
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.queues
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chaoslab.halt import hold, reset_halt
from chaoslab.model import AlertState, HypothesisCheck, Sample, Series
from chaoslab.prometheus.client import PrometheusClient
from chaoslab.prometheus.probes import check_alert
from chaoslab.threads import MAX_WORKERS
from chaoslab.watch import BREACH_NO_DATA, Condition, Watcher, engine_for, evaluate

SIZES = (5, 50, 200, 500)
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GOAL_EVALS_PER_S = 4.0
GOAL_QUERIES = 10

ERRORS = """(sum(rate(http_requests_total{{namespace="bench", service="{s}", code=~"5.."}}[10s]))
  or vector(0))
  / sum(rate(http_requests_total{{namespace="bench", service="{s}"}}[10s]))
> 0.05"""
LATENCY = """histogram_quantile(0.99,
  sum by (le) (rate(http_request_duration_seconds_bucket{{namespace="bench", service="{s}"}}[10s])))
> 1"""


def service(index: int) -> str:
    return f"svc-{index:03d}"


def conditions(services: int) -> list[Condition]:
    found: list[Condition] = []
    for i in range(services):
        s = service(i)
        found.append(Condition(alert=f"Svc{i:03d}HighErrorRate", expr=ERRORS.format(s=s), service=s))
        found.append(Condition(alert=f"Svc{i:03d}HighLatencyP99", expr=LATENCY.format(s=s), service=s))
    return found


class Traffic:
    """Every synthetic service serving 10 requests/s, 1 % errors, 20 ms each."""

    def __init__(self, services: int) -> None:
        self.services = services
        self.started = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        served = 10.0 * (time.monotonic() - self.started)
        counter = CounterMetricFamily("http_requests", "requests", labels=["namespace", "service", "code"])
        histogram = HistogramMetricFamily(
            "http_request_duration_seconds", "latency", labels=["namespace", "service"]
        )
        for i in range(self.services):
            counter.add_metric(["bench", service(i), "200"], served * 0.99)
            counter.add_metric(["bench", service(i), "500"], served * 0.01)
            buckets = [(f"{le:g}", served) for le in BUCKETS] + [("+Inf", served)]
            histogram.add_metric(["bench", service(i)], buckets, served * 0.02)
        yield counter
        yield histogram


def serve(services: int, ports: multiprocessing.queues.Queue[int]) -> None:
    """The synthetic services' exporter (in its own process): its port goes to ``ports``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Traffic(services))  # type: ignore[arg-type]
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    ports.put(server.server_port)
    threading.Event().wait()


class Counting:
    """The real client, counting requests through the port."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client, self.url, self.requests = client, client.url, 0
        self._lock = threading.Lock()

    def _count(self) -> None:
        with self._lock:
            self.requests += 1

    def alerts(self) -> Sequence[AlertState]:
        self._count()
        return self.client.alerts()

    def query(self, expr: str, *, at: datetime | None = None) -> Sequence[Sample]:
        self._count()
        return self.client.query(expr, at=at)

    def query_range(self, expr: str, *, start: datetime, end: datetime, step: float) -> Sequence[Series]:
        self._count()
        return self.client.query_range(expr, start=start, end=end, step=step)


def before(metrics: Counting, found: Sequence[Condition], pool: ThreadPoolExecutor) -> list[HypothesisCheck]:
    """The evaluation as it was: one alerts call, then two queries per condition, eight at a time."""
    states = metrics.alerts()
    futures = [
        pool.submit(check_alert, metrics, alert=c.alert, expr=c.expr, alert_states=states) for c in found
    ]
    at = datetime.now(UTC)
    return [
        HypothesisCheck(alert=c.alert, met=f.result().met, reason=f.result().reason, at=at)
        for c, f in zip(found, futures, strict=True)
    ]


def measure(
    evaluate_once: Callable[[], Sequence[Any]], metrics: Counting, seconds: float
) -> tuple[float, float, float]:
    """(median seconds per evaluation, evaluations per second, requests per evaluation)."""
    evaluate_once()  # warm: connections, the engine's plan
    durations: list[float] = []
    first_request = metrics.requests
    started = time.monotonic()
    while time.monotonic() - started < seconds or len(durations) < 3:
        t0 = time.monotonic()
        checks = evaluate_once()
        durations.append(time.monotonic() - t0)
        unmet = [c for c in checks if not c.met]
        if unmet:
            raise SystemExit(f"a synthetic condition is not met: {unmet[0].reason}")
    elapsed = time.monotonic() - started
    return (
        statistics.median(durations),
        len(durations) / elapsed,
        (metrics.requests - first_request) / len(durations),
    )


def start_prometheus(workdir: Path, exporter_port: int, services: int) -> tuple[subprocess.Popen[bytes], str]:
    rules = [
        {"alert": c.alert, "expr": c.expr, "for": "1m", "labels": {"service": c.service, "severity": "page"}}
        for c in conditions(services)
    ]
    (workdir / "rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "bench", "interval": "5s", "rules": rules}]})
    )
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(workdir / "rules.yaml")],
        "scrape_configs": [
            {"job_name": "bench", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        ["/usr/bin/prometheus", f"--config.file={workdir / 'prometheus.yml'}",
         f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_data(url: str, found: Sequence[Condition], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with PrometheusClient(url) as client:
                if all(c.met for c in evaluate(client, found)):
                    return
        except requests.RequestException:
            pass
        time.sleep(1.0)
    raise SystemExit("the synthetic services never had data for every condition")


def hung_halt_seconds(trials: int) -> list[float]:
    """Seconds from a watcher's start against a server that never answers to its breach."""
    figures: list[float] = []
    for _ in range(trials):
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(64)  # the kernel accepts; nothing ever reads or answers
            url = f"http://127.0.0.1:{server.getsockname()[1]}"
            reset_halt()
            with PrometheusClient(url, timeout=60.0) as client:
                seen: list[float] = []
                watcher = Watcher(
                    client,
                    conditions(500),
                    interval=0.25,
                    on_breach=lambda _b, seen=seen: seen.append(time.monotonic()),
                )
                started = time.monotonic()
                with watcher:
                    hold("60s")
                if watcher.breach is None or watcher.breach.kind != BREACH_NO_DATA or not seen:
                    raise SystemExit(f"expected a no-data breach, got {watcher.breach}")
                figures.append(seen[0] - started)
    reset_halt()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="evaluations back to back per row")
    args = parser.parse_args()
    # The exporter lives in a process of its own, as it would on another host: rendering
    # 5,500 series every scrape must not take the GIL from the watcher being measured.
    context = multiprocessing.get_context("spawn")
    ports: multiprocessing.queues.Queue[int] = context.Queue()
    exporter = context.Process(target=serve, args=(max(SIZES), ports), daemon=True)
    exporter.start()
    exporter_port = ports.get(timeout=60)
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-watcher-") as tmp:
        process, url = start_prometheus(Path(tmp), exporter_port, max(SIZES))
        try:
            wait_for_data(url, conditions(max(SIZES)))
            rows = table(url, args.seconds)
            rotations = watcher_rate(url, max(SIZES), args.seconds)
        finally:
            process.terminate()
            process.wait(timeout=30)
            exporter.terminate()
            exporter.join(timeout=30)
    print("| services | conditions | path | one evaluation | evaluations/s | queries per evaluation |")
    print("|---|---|---|---|---|---|")
    for services, path, (seconds, rate, queries) in rows:
        print(f"| {services} | {2 * services:,} | {path} | {seconds:.3f} s | {rate:.1f} | {queries:.0f} |")
    _, _, (_, rate, queries) = rows[-1]
    met = rate >= GOAL_EVALS_PER_S and queries <= GOAL_QUERIES
    print(
        f"\ngoal at 1,000 conditions: ≥ {GOAL_EVALS_PER_S:g} evaluations/s with ≤ {GOAL_QUERIES} queries: "
        f"{'met' if met else 'NOT met'} ({rate:.1f}/s, {queries:.0f} queries)"
    )
    rate, queries = rotations
    print(f"watcher at 1,000 conditions (two batch queries at a time): {rate:.1f} full rotations/s, "
          f"{queries:.0f} queries each")
    hung = hung_halt_seconds(5)
    print(
        f"hung Prometheus (accepts, never answers), 1,000 conditions: breach after "
        f"p50 {statistics.median(hung):.2f} s, max {max(hung):.2f} s (deadline 1 s, client timeout 60 s)"
    )
    return 0


def watcher_rate(url: str, services: int, seconds: float) -> tuple[float, float]:
    """(full rotations per second, requests per rotation) of a Watcher at its minimum interval."""
    reset_halt()
    with PrometheusClient(url) as client:
        metrics = Counting(client)
        watcher = Watcher(metrics, conditions(services), interval=0.05)
        with watcher:
            deadline = time.monotonic() + 30.0
            while watcher.evaluations < 1 and time.monotonic() < deadline:
                time.sleep(0.05)  # warm: connections, the batch plan
            first, asked, started = watcher.evaluations, metrics.requests, time.monotonic()
            time.sleep(seconds)
            done, requests_made, elapsed = watcher.evaluations, metrics.requests, time.monotonic() - started
        if watcher.breach is not None:
            raise SystemExit(f"the watcher breached on quiet services: {watcher.breach.describe()}")
    rotations = max(1, done - first)
    return rotations / elapsed, (requests_made - asked) / rotations


def table(url: str, seconds: float) -> list[tuple[int, str, tuple[float, float, float]]]:
    rows: list[tuple[int, str, tuple[float, float, float]]] = []
    with PrometheusClient(url) as client, ThreadPoolExecutor(MAX_WORKERS) as pool:
        metrics = Counting(client)
        for services in SIZES:
            found = conditions(services)
            engine = engine_for(found)
            old = measure(lambda f=found: before(metrics, f, pool), metrics, seconds)
            print(f"{services} services, before: {old[0]:.3f} s", file=sys.stderr, flush=True)
            rows.append((services, "before", old))
            new = measure(
                lambda f=found, e=engine: evaluate(metrics, f, pool=pool, engine=e), metrics, seconds
            )
            print(f"{services} services, after: {new[0]:.3f} s", file=sys.stderr, flush=True)
            rows.append((services, "after", new))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
