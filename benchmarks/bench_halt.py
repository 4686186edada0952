"""P1 halt latency: from the first Prometheus sample where an SLO condition held
(``breach_at``) to the moment the fault was gone (``removed_at``).

Each trial runs `chaoslab run --target sandbox` on a payment partition that lasts 60 s
and breaks checkout for as long as it lasts, judged by experiments/rules/shop-slo.yaml,
whose alerts wait ``for: 1m``: chaoslab must not wait for them. Between trials the
sandbox is left to recover. Goal: p95 ≤ 1.0 s.

``--guards N`` adds N guard alerts in the shape of kube-prometheus's (critical, bound to
no service, ``absent(up{job=...} == 1)`` with ``for: 15m``) to the rules chaoslab judges
the run by: the halt must be as fast with them as without.

With ``--synthetic N`` the catalog also holds N synthetic services with two alerts each
(2N more halt conditions, evaluated over the shop's live metrics and always quiet), to
measure the halt at a real catalog's size: goal p95 ≤ 0.5 s at 1,000 conditions.

Prints figures; it is not a test.
Usage: python benchmarks/bench_halt.py [--trials N] [--synthetic N] [--guards N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox_fixture import RULES, chaoslab, sandbox, wait_quiet

GOAL_P95_S = 1.0
GOAL_SCALE_P95_S = 0.5  # with --synthetic: at a real catalog's size

EXPERIMENT = """apiVersion: chaoslab/v1
kind: Experiment
metadata: {name: payment-partition, description: payment unreachable for 60 s}
spec:
  service: payment
  fault:
    networkChaos: {action: partition, mode: all, direction: to, duration: 60s}
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def write_guards(path: Path, count: int) -> list[str]:
    """``--rules`` arguments for ``count`` kube-prometheus-shaped guard alerts (none for 0)."""
    if not count:
        return []
    rules = "".join(
        f"      - alert: KubeComponent{i}Down\n        expr: absent(up{{job=\"kube-component-{i}\"}} == 1)\n"
        f"        for: 15m\n        labels: {{severity: critical}}\n" for i in range(count))
    path.write_text(f"groups:\n  - name: kube-prometheus-shaped\n    rules:\n{rules}")
    return ["--rules", str(path)]


# Like a real catalog's alerts, each synthetic one reads one service's series (the shop's
# five in turn, with the traffic the sandbox gives them) under its own name.
SHOP = ("frontend", "catalog", "recommendation", "cart", "payment")
SYNTHETIC_ERRORS = (
    'label_replace((sum(rate(http_requests_total{{namespace="shop", service="{real}", code=~"5.."}}[10s]))'
    ' or vector(0)) / sum(rate(http_requests_total{{namespace="shop", service="{real}"}}[10s])),'
    ' "service", "{s}", "", "") > 0.99'
)
SYNTHETIC_LATENCY = (
    'label_replace(histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket'
    '{{namespace="shop", service="{real}"}}[10s]))), "service", "{s}", "", "") > 30'
)


def synthetic(workdir: Path, services: int) -> list[str]:
    """Extra run arguments: a catalog with ``services`` more services and their rules."""
    if not services:
        return ["--catalog", str(RULES.parents[1] / "catalog.yaml")]
    catalog = yaml.safe_load((RULES.parents[1] / "catalog.yaml").read_text())
    rules = []
    for i in range(services):
        name = f"synthetic-{i:03d}"
        selector = {"labelSelectors": {"app": name}}
        catalog["spec"]["services"].append(
            {"name": name, "namespace": "shop", "tier": "non-core", "selector": selector}
        )
        for alert, expr in (("Errors", SYNTHETIC_ERRORS), ("Latency", SYNTHETIC_LATENCY)):
            text = expr.format(s=name, real=SHOP[i % len(SHOP)])
            rules.append({"alert": f"Synthetic{i:03d}{alert}", "expr": text, "for": "1m",
                          "labels": {"service": name, "severity": "page"}})
    (workdir / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    groups = {"groups": [{"name": "synthetic", "rules": rules}]}
    (workdir / "synthetic-rules.yaml").write_text(yaml.safe_dump(groups))
    return ["--catalog", str(workdir / "catalog.yaml"), "--rules", str(workdir / "synthetic-rules.yaml")]


def trial(env: dict[str, str], workdir: Path, index: int, extra: list[str]) -> dict[str, float]:
    reports = workdir / f"reports-{index}"
    result = chaoslab(
        "run",
        "--target",
        "sandbox",
        "--yes",
        "--rules",
        str(RULES),
        "--reports",
        str(reports),
        *extra,
        str(workdir / "experiment.yaml"),
        env=env,
        check=False,
    )
    runs = list(reports.glob("*/run.json"))
    if not runs:
        raise SystemExit(f"trial {index}: no run record (exit {result.returncode}):\n{result.stderr}")
    step = json.loads(runs[0].read_text())["steps"][0]
    halt = step["halt"]
    if step["verdict"] != "halted" or not halt or not halt["breach_at"]:
        raise SystemExit(f"trial {index}: expected a halt, got {step['verdict']}: {step['reason']}")
    breach, detected, removed = (
        datetime.fromisoformat(halt[k]) for k in ("breach_at", "detected_at", "removed_at")
    )
    return {
        "detect": (detected - breach).total_seconds(),
        "remove": (removed - detected).total_seconds(),
        "total": (removed - breach).total_seconds(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--guards", type=int, default=0, help="guard alerts to add (default 0)")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N", help="synthetic services to add")
    args = parser.parse_args()
    figures: list[dict[str, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="chaoslab-bench-halt-") as tmp,
        sandbox() as (env, prometheus_url),
    ):
        workdir = Path(tmp)
        (workdir / "experiment.yaml").write_text(EXPERIMENT)
        extra = synthetic(workdir, args.synthetic) + write_guards(workdir / "guards.yaml", args.guards)
        print(f"{args.guards} guard alerts, {args.synthetic} synthetic services")
        print(f"{'trial':>5}  {'breach→detected':>16}  {'detected→removed':>17}  {'breach→removed':>15}")
        for index in range(1, args.trials + 1):
            wait_quiet(prometheus_url)
            row = trial(env, workdir, index, extra)
            figures.append(row)
            print(
                f"{index:>5}  {row['detect']:>15.3f}s  {row['remove']:>16.3f}s  {row['total']:>14.3f}s",
                flush=True,
            )
    totals = [f["total"] for f in figures]
    p50, p95 = statistics.median(totals), percentile(totals, 0.95)
    goal = GOAL_SCALE_P95_S if args.synthetic else GOAL_P95_S
    print(
        f"\nhalt latency ({args.synthetic} synthetic services, {2 * args.synthetic} more conditions) "
        f"over {len(totals)} trials: p50 {p50:.3f}s, p95 {p95:.3f}s, max {max(totals):.3f}s "
        f"(goal p95 ≤ {goal:.1f}s: {'met' if p95 <= goal else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
