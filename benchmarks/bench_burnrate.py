"""Multi-window burn-rate alerts: from the start of a total outage to the removal of the fault,
watching the full alert (before) and its fast legs (after).

A real Prometheus starts on three days of healthy history (``promtool tsdb
create-blocks-from openmetrics``, 20 requests/s, 0.02 % errors) continued live by an exporter
per service, with Sloth-shaped rules for a 99.9 % objective (page alert: 5m∧1h at 14.4×,
30m∧6h at 6× the budget). ``chaoslab run --target kubernetes`` (fake API server and Chaos
Mesh emulator) holds a delay on the service; the moment the fault is injected, the service
fails every request. The time is measured from that moment to ``removed_at`` in run.json.

- before: chaoslab is given the alert file without the recording rules, so it cannot know
  the legs' windows and watches the whole alert, as every alert was watched before;
- after: chaoslab is given the recording rules too and watches the 5m and 30m legs.

Recovery is not part of the figure. Watching the whole alert lets it fire, and its 1h leg
then stays past its threshold for up to an hour after the fault is gone.

Each trial uses fresh services, so one outage does not linger in the next one's windows.
Goal: after ≤ 10 s. Prints figures; it is not a test.
Usage: python benchmarks/bench_burnrate.py [--trials N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the fakes and the test support live in tests/, not installed

from tests.fakes.chaos_mesh import CHAOS  # noqa: E402
from tests.fakes.kube_api import write_kubeconfig  # noqa: E402
from tests.support.burnrate import (  # noqa: E402
    BUDGET,
    HISTORY_S,
    RPS,
    OutageCoupler,
    SloExporter,
    backfill,
    history_counts,
    live_labels,
    sloth_rules,
    write_history,
)
from tests.support.gameday import cli_env, run_cli  # noqa: E402
from tests.support.kube import start_cluster, stop_cluster  # noqa: E402
from tests.support.prometheus import PROMTOOL_BIN, instant, start_prometheus  # noqa: E402

GOAL_S = 10.0
HEALTHY = BUDGET / 5
MODES = ("before", "after")


def _injected(obj: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions", [])}
    return conditions.get("AllInjected") == "True" and not obj["metadata"].get("deletionTimestamp")


def _write_rules(directory: Path, service: str) -> tuple[Path, Path]:
    """The service's Sloth rules split in two files: recording rules, and the alert."""
    records, alerts = sloth_rules(service, job=service)["groups"]
    paths = directory / f"{service}-records.yaml", directory / f"{service}-alerts.yaml"
    for path, group in zip(paths, (records, alerts), strict=True):
        path.write_text(yaml.safe_dump({"groups": [group]}, sort_keys=False))
    return paths


def _experiment(directory: Path, service: str, rules: list[Path]) -> Path:
    catalog = {"apiVersion": "chaoslab/v1", "kind": "Catalog", "metadata": {"name": "bench"},
               "spec": {"services": [{"name": service, "namespace": "shop", "tier": "non-core",
                                      "selector": {"labelSelectors": {"app": service}}}]}}
    experiment = {
        "apiVersion": "chaoslab/v1", "kind": "Experiment",
        "metadata": {"name": f"{service}-delay", "description": "a delay that turns into a total outage"},
        "spec": {"service": service,
                 "fault": {"networkChaos": {"action": "delay", "mode": "all", "delay": {"latency": "50ms"},
                                            "duration": "180s"}},
                 "hypothesis": {"rules": [str(p) for p in rules]}},
    }
    folder = directory / service
    folder.mkdir()
    (folder / "catalog.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return path


def _trial(*, prometheus_url: str, cluster: Any, exporter: SloExporter, experiment: Path) -> dict[str, Any]:
    reports = experiment.parent / "reports"
    # Recovery is not measured here: after the whole alert fired, its 1h window keeps it
    # true for up to an hour, so the run would wait its whole recovery timeout.
    env = cli_env(KUBECONFIG=str(write_kubeconfig(experiment.parent, cluster.url)),
                  CHAOSLAB_RECOVERY_TIMEOUT_S="3")

    def injected() -> bool:
        return any(_injected(o) for o in cluster.store.all_of(CHAOS))

    with OutageCoupler(injected, exporter) as outage:
        result = run_cli(["run", "--target", "kubernetes", "--prometheus", prometheus_url, "--yes",
                          "--reports", str(reports), str(experiment)], env=env, cwd=experiment.parent,
                         timeout=300)
    runs = list(reports.glob("*/run.json"))
    if not runs or outage.started is None:
        raise SystemExit(f"{experiment}: no halt (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    step = json.loads(runs[0].read_text())["steps"][0]
    halt = step["halt"]
    if not halt or not halt["removed_at"]:  # halted, or deviated when it did not recover in time
        raise SystemExit(f"{experiment}: expected a halt, got {step['verdict']}: {step['reason']}")
    removed = datetime.fromisoformat(halt["removed_at"]).timestamp()
    return {"seconds": removed - outage.started, "leg": (halt.get("leg") or {}).get("summary")}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=1, help="trials of each mode (default 1)")
    args = parser.parse_args()
    services = [f"svc{i}{mode}" for i in range(args.trials) for mode in MODES]
    points = history_counts(rps=RPS, phases=[(HISTORY_S, HEALTHY)])
    exporters = {s: SloExporter(s, error_ratio=HEALTHY, start=points[-1][1]) for s in services}
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-burnrate-") as tmp:
        root = Path(tmp)
        prometheus = cluster = None
        try:
            ports = {s: e.start() for s, e in exporters.items()}
            now = time.time()
            series = {s: live_labels(s, p) for s, p in ports.items()}
            write_history(root / "history.om", now=now, series=series, points=dict.fromkeys(services, points))
            backfill(str(PROMTOOL_BIN), root / "history.om", root / "prometheus" / "tsdb")
            files = {s: _write_rules(root, s) for s in services}
            prometheus = start_prometheus(root / "prometheus", targets=ports,
                                          rule_files=[p for pair in files.values() for p in pair],
                                          args=["--storage.tsdb.retention.time=30d"])
            deadline = time.monotonic() + 60
            while len(instant(prometheus.url, "slo:sli_error:ratio_rate6h")) < len(services):
                if time.monotonic() > deadline:
                    raise SystemExit("the recording rules never had data")
                time.sleep(0.2)
            cluster = start_cluster()
            for service in services:
                cluster.store.add_pod("shop", f"{service}-7d4b9-00000", labels={"app": service})
            for service in services:
                records, alerts = files[service]
                mode = next(m for m in MODES if service.endswith(m))
                rules = [alerts] if mode == "before" else [records, alerts]
                experiment = _experiment(root, service, rules)
                outcome = _trial(prometheus_url=prometheus.url, cluster=cluster, exporter=exporters[service],
                                 experiment=experiment)
                results[mode].append(outcome)
                leg = outcome["leg"] or "halted on the whole alert"
                print(f"{mode:6}  {outcome['seconds']:6.1f} s  {leg}", flush=True)
        finally:
            if cluster is not None:
                stop_cluster(cluster)
            if prometheus is not None:
                prometheus.stop()
            for exporter in exporters.values():
                exporter.stop()
    print("\ntotal outage → fault removed (3 days of history, 20 requests/s, 99.9 % objective)")
    for mode in MODES:
        seconds = [r["seconds"] for r in results[mode]]
        what = "full alert" if mode == "before" else "fast leg"
        print(f"  {mode:6} ({what:10}): median {statistics.median(seconds):6.1f} s  "
              f"max {max(seconds):6.1f} s  over {len(seconds)} trials")
    after = max(r["seconds"] for r in results["after"])
    print(f"goal after ≤ {GOAL_S:g} s: {'met' if after <= GOAL_S else 'NOT met'}")
    return 0 if after <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
