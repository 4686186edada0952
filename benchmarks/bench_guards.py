"""Guard alerts cost no query: Prometheus requests and time per watcher evaluation as
the number of guard alerts grows (0, 34 as in kube-prometheus, 300, 1000).

Each evaluation is chaoslab's own ``evaluate`` over the real HTTP client against a
recording HTTP server that answers like Prometheus: every guard is listed, a third of
them pending and a tenth firing-but-ignored (by a label matcher), next to five SLO
conditions that hold. Goal: requests per evaluation independent of the guards.

Prints figures; it is not a test. Usage: python benchmarks/bench_guards.py [--evaluations N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the recording server lives in tests/, which is not installed

from chaoslab.loader.guards import parse_filter  # noqa: E402
from chaoslab.model import AlertRule, Catalog, GuardPolicy, Selector, Service, Tier  # noqa: E402
from chaoslab.prometheus.client import PrometheusClient  # noqa: E402
from chaoslab.watch import build_conditions, evaluate  # noqa: E402
from tests.support.prometheus import Reply, ScriptedServer, vector  # noqa: E402

SERVICES = ("frontend", "catalog", "recommendation", "cart", "payment")


def setup(guards: int) -> tuple[Catalog, list[AlertRule], dict[object, Reply]]:
    services = tuple(Service(name=n, namespace="shop", tier=Tier.CORE,
                             selector=Selector(label_selectors={"app": n})) for n in SERVICES)
    catalog = Catalog(name="shop", services=services,
                      guards=GuardPolicy(ignore=(parse_filter('namespace="dev"'),)))
    rules = [AlertRule(name=f"{n.capitalize()}Errors", expr=f'sum(rate(errors{{service="{n}"}}[5s])) > 1',
                       labels={"severity": "page", "service": n}) for n in SERVICES]
    rules += [AlertRule(name=f"KubeGuard{i}", expr=f'absent(up{{job="kube-{i}"}} == 1)', for_s=900.0,
                        labels={"severity": "critical"}) for i in range(guards)]
    items = [{"labels": {"alertname": f"KubeGuard{i}", "namespace": "dev" if i % 10 == 0 else "kube-system"},
              "annotations": {}, "state": "firing" if i % 10 == 0 else "pending",
              "activeAt": "2026-12-06T10:00:00Z", "value": "1"} for i in range(0, guards, 3)]
    replies: dict[object, Reply] = {"/api/v1/alerts": Reply(body={"status": "success",
                                                                   "data": {"alerts": items}})}
    for rule in rules[: len(SERVICES)]:
        replies[("/api/v1/query", rule.expr)] = vector()
        replies[("/api/v1/query", rule.expr.rpartition(" > ")[0])] = vector(({}, 0.5))
    return catalog, rules, replies


def measure(guards: int, evaluations: int) -> tuple[float, float]:
    catalog, rules, replies = setup(guards)
    conditions = build_conditions(catalog.services[4], rules, catalog)
    with ScriptedServer(replies) as server, PrometheusClient(server.url, timeout=5.0) as client:
        evaluate(client, conditions)  # warm-up: connections
        server.requests.clear()
        times = []
        for _ in range(evaluations):
            started = time.perf_counter()
            checks = evaluate(client, conditions)
            times.append(time.perf_counter() - started)
            if not all(c.met for c in checks):
                raise SystemExit(f"unexpected breach: {[c.reason for c in checks if not c.met][:3]}")
        return len(server.requests) / evaluations, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluations", type=int, default=20)
    args = parser.parse_args()
    print(f"{'guards':>6}  {'requests/evaluation':>19}  {'median evaluation':>17}")
    base = None
    for guards in (0, 34, 300, 1000):
        requests, median = measure(guards, args.evaluations)
        base = requests if base is None else base
        print(f"{guards:>6}  {requests:>19.1f}  {median * 1000:>15.1f}ms", flush=True)
        if requests != base:
            print(f"goal NOT met: {requests} requests with {guards} guards, {base} without")
            return 1
    print(f"\nrequests per evaluation do not grow with the guards (goal met): {base:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
