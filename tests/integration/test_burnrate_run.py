"""Multi-window burn-rate alerts on history like production, through `chaoslab run`.

One real Prometheus for the module, started on three days of history written with
``promtool tsdb create-blocks-from openmetrics`` and continued live by exporters under the
same labels, evaluating Sloth-shaped rules (page alert: 5m∧1h at 14.4×, 30m∧6h at 6× a
0.1 % budget). Three services, each its own job and rule file:

- cart: healthy; a total outage while a fault is held on the fake Kubernetes API;
- payment: healthy; a total outage while a fault is held in the sandbox;
- catalog: a steady error ratio at half the lowest fast-leg threshold, for the whole last hour.

A total outage makes the 5m leg cross after about 4 s and the 1h leg after about 52 s: the
run must halt on the 5m leg. Each run names only its own service's catalog and rule file, so
one run's outage is not another run's halt condition.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.sandbox.backend import SandboxBackend
from tests.fakes.chaos_mesh import CHAOS
from tests.fakes.kube_api import write_kubeconfig
from tests.support.burnrate import (
    BUDGET,
    HISTORY_S,
    RPS,
    SLOTH_PAGE,
    OutageCoupler,
    SloExporter,
    backfill,
    history_counts,
    live_labels,
    sloth_rules,
    write_history,
)
from tests.support.gameday import cli_env, describe, read_run, run_cli
from tests.support.kube import start_cluster, stop_cluster
from tests.support.prometheus import (
    PrometheusProcess,
    active_alerts,
    instant,
    require_prometheus,
    require_promtool,
    start_prometheus,
    wait_for,
)
from tests.support.sandbox import sandbox_up

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(300)]

HEALTHY = BUDGET / 5  # a fifth of the budget: a small, steady error ratio under the objective
HALF = min(factor for _short, _long, factor in SLOTH_PAGE) * BUDGET / 2  # half the lowest fast-leg threshold
PHASES = {
    "cart": [(HISTORY_S, HEALTHY)],
    "payment": [(HISTORY_S, HEALTHY)],
    "catalog": [(HISTORY_S - 3600, HEALTHY), (3600, HALF)],
}
# The full alert needs about 52 s of total outage; the target for the fast leg is 10 s. The
# bound is looser for a loaded machine, and still well short of what the full alert needs.
OUTAGE_TO_REMOVAL_BOUND_S = 40.0

SANDBOX_CONFIG = "apiVersion: chaoslab/v1\nkind: Sandbox\nspec:\n  restartDelay: 2s\n  load: {rps: 0}\n"
SANDBOX_RULES = "groups:\n  - name: quiet\n    rules:\n      - {alert: Never, expr: vector(0) > 1}\n"


@dataclass
class History:
    prometheus: PrometheusProcess
    exporters: dict[str, SloExporter]
    rules: dict[str, Path]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    require_prometheus()
    promtool = require_promtool()
    root = tmp_path_factory.mktemp("burnrate")
    points = {s: history_counts(rps=RPS, phases=phases) for s, phases in PHASES.items()}
    exporters = {s: SloExporter(s, error_ratio=PHASES[s][-1][1], start=points[s][-1][1]) for s in PHASES}
    prometheus = None
    try:
        ports = {s: e.start() for s, e in exporters.items()}
        now = time.time()  # the history ends now; the exporters' counters go on from its last values
        series = {s: live_labels(s, port) for s, port in ports.items()}
        write_history(root / "history.om", now=now, series=series, points=points)
        backfill(promtool, root / "history.om", root / "prometheus" / "tsdb")
        (root / "rules").mkdir()
        rules = {s: root / "rules" / f"{s}.yaml" for s in PHASES}
        for service, path in rules.items():
            path.write_text(yaml.safe_dump(sloth_rules(service, job=service), sort_keys=False))
        prometheus = start_prometheus(root / "prometheus", targets=ports, rule_files=list(rules.values()),
                                      args=["--storage.tsdb.retention.time=30d"])
        url = prometheus.url
        wait_for(lambda: len(instant(url, "slo:sli_error:ratio_rate6h")) == len(PHASES), timeout=60,
                 what="every service's recording rules")
        yield History(prometheus=prometheus, exporters=exporters, rules=rules)
    finally:
        if prometheus is not None:
            prometheus.stop()
        for exporter in exporters.values():
            exporter.stop()


def write_experiment(directory: Path, service: str, *, rules: Path, duration: str) -> Path:
    """A catalog of ``service`` alone (no ``alerts:``) and a delay experiment judged by ``rules``."""
    catalog = {
        "apiVersion": "chaoslab/v1", "kind": "Catalog", "metadata": {"name": "shop"},
        "spec": {"services": [{"name": service, "namespace": "shop", "tier": "non-core",
                               "selector": {"labelSelectors": {"app": service}}}]},
    }
    experiment = {
        "apiVersion": "chaoslab/v1", "kind": "Experiment",
        "metadata": {"name": f"{service}-delay", "description": f"{service} slowed down (test)"},
        "spec": {
            "service": service,
            "fault": {"networkChaos": {"action": "delay", "mode": "all", "delay": {"latency": "50ms"},
                                       "duration": duration}},
            "hypothesis": {"rules": [str(rules)]},
        },
    }
    (directory / "catalog.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    path = directory / f"{service}-delay.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return path


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def assert_halted_on_the_fast_leg(
    result: Any, reports: Path, *, outage: OutageCoupler, alert: str, url: str
) -> None:
    assert result.returncode == 1, describe(result)
    run = read_run(reports)
    step = run["steps"][0]
    assert step["verdict"] == "halted", describe(result)
    assert f"halted on the 5m leg of {alert}" in step["reason"]
    halt = step["halt"]
    leg = halt["leg"]
    assert (leg["alert"], leg["window"]) == (alert, "5m")
    assert leg["value"] > leg["threshold"] == pytest.approx(14.4 * BUDGET)
    assert [(n["window"], n["value"] < n["threshold"]) for n in leg["needs"]] == [("1h", True)]
    assert outage.started is not None, "the fault never took hold"
    took = _ts(halt["removed_at"]) - outage.started
    assert 0 < took < OUTAGE_TO_REMOVAL_BOUND_S, halt
    report = (reports / run["run_id"] / "report.md").read_text()
    assert f"halted on the 5m leg of {alert}" in report
    assert "the full alert needs the 1h leg too" in report
    assert alert not in active_alerts(url)  # the full alert never even went pending


def _injected(obj: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions", [])}
    return conditions.get("AllInjected") == "True" and not obj["metadata"].get("deletionTimestamp")


def test_a_total_outage_on_kubernetes_is_halted_on_the_fast_leg(history: History, tmp_path: Path) -> None:
    cluster = start_cluster()
    try:
        experiment = write_experiment(tmp_path, "cart", rules=history.rules["cart"], duration="120s")
        env = cli_env(KUBECONFIG=str(write_kubeconfig(tmp_path, cluster.url)))
        reports = tmp_path / "reports"

        def injected() -> bool:
            return any(_injected(o) for o in cluster.store.all_of(CHAOS))

        with OutageCoupler(injected, history.exporters["cart"]) as outage:
            result = run_cli(["run", "--target", "kubernetes", "--prometheus", history.prometheus.url,
                              "--yes", "--reports", str(reports), str(experiment)], env=env, cwd=tmp_path)

        assert_halted_on_the_fast_leg(result, reports, outage=outage, alert="CartAvailabilitySLO",
                                      url=history.prometheus.url)
        assert cluster.chaos_names() == []

        # The whole alert is quiet, but the 5m leg remembers the outage for 5 minutes: a step
        # injected now would halt at once on a breach it did not cause. It is not injected.
        again = tmp_path / "again"
        with OutageCoupler(injected, history.exporters["cart"]) as second:
            result = run_cli(["run", "--target", "kubernetes", "--prometheus", history.prometheus.url,
                              "--yes", "--reports", str(again), str(experiment)], env=env, cwd=tmp_path)
        assert second.started is None  # nothing was injected
        assert result.returncode == 1, describe(result)
        step = read_run(again)["steps"][0]
        assert step["verdict"] == "baseline-not-met"
        assert "fast legs of multi-window alerts" in step["reason"]
        assert "CartAvailabilitySLO" in step["reason"]
        assert step["halt"] is None
    finally:
        stop_cluster(cluster)


def test_a_total_outage_in_the_sandbox_is_halted_on_the_fast_leg(
    history: History, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with sandbox_up(tmp_path_factory.mktemp("sandbox"), config=SANDBOX_CONFIG, rules=SANDBOX_RULES) as box:
        experiment = write_experiment(tmp_path, "payment", rules=history.rules["payment"], duration="120s")
        env = cli_env(CHAOSLAB_SANDBOX_DIR=str(box.state_dir))
        reports = tmp_path / "reports"
        backend = SandboxBackend(state_dir=box.state_dir)

        with OutageCoupler(lambda: bool(backend.list_faults()), history.exporters["payment"]) as outage:
            result = run_cli(["run", "--target", "sandbox", "--prometheus", history.prometheus.url, "--yes",
                              "--reports", str(reports), str(experiment)], env=env, cwd=tmp_path)

        assert_halted_on_the_fast_leg(result, reports, outage=outage, alert="PaymentAvailabilitySLO",
                                      url=history.prometheus.url)
        assert backend.list_faults() == []


def test_a_steady_error_ratio_at_half_the_threshold_holds_for_the_whole_hold(
    history: History, tmp_path: Path
) -> None:
    url = history.prometheus.url
    # The premise: both fast legs read the steady ratio, half the 30m leg's threshold (the lowest).
    for window in ("5m", "30m"):
        found = instant(url, f'slo:sli_error:ratio_rate{window}{{sloth_service="catalog"}}')
        assert 0.7 * HALF < float(found[0]["value"][1]) < 1.3 * HALF, (window, found)
    cluster = start_cluster()
    try:
        experiment = write_experiment(tmp_path, "catalog", rules=history.rules["catalog"], duration="6s")
        env = cli_env(KUBECONFIG=str(write_kubeconfig(tmp_path, cluster.url)))
        reports = tmp_path / "reports"

        result = run_cli(["run", "--target", "kubernetes", "--prometheus", url, "--yes",
                          "--reports", str(reports), str(experiment)], env=env, cwd=tmp_path)

        assert result.returncode == 0, describe(result)
        step = read_run(reports)["steps"][0]
        assert (step["verdict"], step["halt"]) == ("held", None)
        assert step["hypothesis"]["during"]
        assert all(c["met"] for c in step["hypothesis"]["during"])
    finally:
        stop_cluster(cluster)


def test_rules_loaded_in_prometheus_carry_their_recording_rules_windows(history: History) -> None:
    from chaoslab.prometheus.burnrate import analyse
    from chaoslab.prometheus.client import PrometheusClient

    with PrometheusClient(history.prometheus.url) as client:
        rules = {rule.name: rule for rule in client.rules()}

    burn = analyse(rules["CartAvailabilitySLO"])
    assert burn is not None
    assert burn.describe() == "5m leg > 1.44 % or 30m leg > 0.6 %"


def test_another_compound_shape_is_watched_whole_during_a_fault(history: History) -> None:
    from chaoslab.model import AlertRule, Selector, Service, Tier
    from chaoslab.prometheus.client import PrometheusClient
    from chaoslab.prometheus.rules import load_rules
    from chaoslab.watch import Watcher, build_conditions, evaluate

    # catalog: the service no test breaks (an outage stays in a 5m window for 5 minutes)
    ratio = 'slo:sli_error:ratio_rate5m{sloth_service="catalog"}'
    other = AlertRule(name="CatalogGoneOrFailing", expr=f"absent({ratio}) or {ratio} > 0.5",
                      labels={"sloth_service": "catalog"})
    catalog = Service(name="catalog", namespace="shop", tier=Tier.NON_CORE,
                      selector=Selector(label_selectors={"app": "catalog"}))
    rules = [other, *load_rules([history.rules["catalog"]])]

    with PrometheusClient(history.prometheus.url) as client:
        watcher = Watcher(client, build_conditions(catalog, rules, None))
        during = {c.alert: c for c in watcher.conditions}
        checks = evaluate(client, watcher.conditions)

    assert during["CatalogGoneOrFailing"].expr == other.expr  # today's behaviour: the whole alert
    fast = during["CatalogAvailabilitySLO"].expr
    assert "ratio_rate5m" in fast
    assert "ratio_rate30m" in fast
    assert "ratio_rate1h" not in fast
    assert [c.met for c in checks] == [True, True], [c.reason for c in checks]
