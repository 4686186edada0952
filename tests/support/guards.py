"""Guard alerts end to end: rule files in the shapes of kube-prometheus's defaults, loaded
into a real Prometheus next to the SLO rules, and the scenarios both run paths (sandbox,
fake Kubernetes API) must pass.

The rules, written for these tests in the shapes kube-prometheus uses:

- ``KubeSchedulerDown``: ``absent(up{job="kube-scheduler"} == 1)``, ``for: 15m``: there is
  no such job here, so it is pending for the whole test, as on a managed cluster;
- ``NodeFilesystemSpaceFillingUp``: ``predict_linear`` on filesystem metrics, ``for: 1h``;
- ``NodeRAIDDegraded``: its series do not exist (no RAID): Prometheus never lists it;
- ``KubeClientCertificateExpiration``: ``for: 0s``, its series do not exist either;
- ``Watchdog``: ``vector(1)``, severity ``none``: always firing, and no halt condition;
- ``KubeControllerManagerDown`` (:data:`SWITCH`): the guard a test makes fire on demand by
  rewriting its rule file and reloading Prometheus (SIGHUP).

Import explicitly: ``from tests.support.guards import ...``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Protocol

import yaml

from tests.support.gameday import (
    delay,
    describe,
    pod_kill,
    poll,
    read_run,
    run_cli,
    start_cli,
    stop_process,
    write_gameday,
)
from tests.support.prometheus import active_alerts

SWITCH = "KubeControllerManagerDown"
PENDING_GUARD = "KubeSchedulerDown"
_DEVICES = '"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)"'
_FS = 'job="node-exporter",fstype!=""'


def guard_rules(*, firing: bool) -> dict[str, Any]:
    """The kube-prometheus-shaped groups; ``firing`` turns :data:`SWITCH` on (it is
    never true otherwise: ``absent(...)`` is 1 at most)."""
    switch = 'absent(up{job="kube-controller-manager"} == 1)' + ("" if firing else " > 1")
    critical = {"severity": "critical"}
    return {"groups": [
        {"name": "kubernetes-system-scheduler", "rules": [
            {"alert": PENDING_GUARD, "expr": 'absent(up{job="kube-scheduler"} == 1)', "for": "15m",
             "labels": critical},
        ]},
        {"name": "kubernetes-system-controller-manager", "rules": [
            {"alert": SWITCH, "expr": switch, "for": "0s", "labels": critical},
        ]},
        {"name": "node-exporter", "rules": [
            {"alert": "NodeFilesystemSpaceFillingUp", "for": "1h", "labels": critical, "expr": (
                f"(node_filesystem_avail_bytes{{{_FS}}} / node_filesystem_size_bytes{{{_FS}}} * 100 < 15\n"
                f"and predict_linear(node_filesystem_avail_bytes{{{_FS}}}[6h], 4*60*60) < 0\n"
                f"and node_filesystem_readonly{{{_FS}}} == 0)")},
            {"alert": "NodeRAIDDegraded", "for": "15m", "labels": critical, "expr": (
                f'node_md_disks_required{{job="node-exporter",device=~{_DEVICES}}}\n'
                "- ignoring (state) (node_md_disks{"
                f'state="active",job="node-exporter",device=~{_DEVICES}}}) > 0')},
        ]},
        {"name": "kubernetes-system-apiserver", "rules": [
            {"alert": "KubeClientCertificateExpiration", "for": "0s", "labels": critical, "expr": (
                'apiserver_client_certificate_expiration_seconds_count{job="apiserver"} > 0 and on (job)\n'
                "histogram_quantile(0.01, sum by (job, le) (rate(\n"
                '  apiserver_client_certificate_expiration_seconds_bucket{job="apiserver"}[5m]))) < 86400')},
        ]},
        {"name": "general.rules", "rules": [
            {"alert": "Watchdog", "expr": "vector(1)", "labels": {"severity": "none"}},
        ]},
    ]}


def write_guard_rules(path: Path, *, firing: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(guard_rules(firing=firing), sort_keys=False))
    return path


def missing_data_rule(path: Path) -> Path:
    """An SLO alert of catalog (label) whose metric does not exist: no data, never a pass."""
    rule = {"alert": "CatalogLatencyP99", "for": "1m", "labels": {"severity": "page", "service": "catalog"},
            "expr": "histogram_quantile(0.99, sum by (le) (rate(catalog_latency_seconds_bucket[5s]))) > 0.5"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "catalog-latency", "rules": [rule]}]}))
    return path


class World(Protocol):
    """A run path with Prometheus evaluating the SLO rules and :func:`guard_rules`."""

    prometheus_url: str
    guard_file: Path

    def env(self) -> dict[str, str]: ...
    def run(self, *args: str) -> list[str]: ...  # `chaoslab run --target ... ARGS`
    def reload(self) -> None: ...  # make Prometheus read its rule files again
    def faults(self) -> list[str]: ...
    def healthy(self) -> None: ...


def switch_guard(world: World, *, firing: bool) -> None:
    """Turn :data:`SWITCH` on or off in Prometheus, and wait until Prometheus shows it."""
    write_guard_rules(world.guard_file, firing=firing)
    world.reload()

    def shown() -> bool:
        states = active_alerts(world.prometheus_url).get(SWITCH, set())
        return "firing" in states if firing else not states

    poll(shown, timeout=30, what=f"{SWITCH} {'firing' if firing else 'inactive'} in Prometheus", interval=0.2)


def _run(world: World, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    reports = tmp_path / "reports"
    result = run_cli(world.run("--yes", "--reports", str(reports), "--rules", str(world.guard_file), *args),
                     env=world.env(), cwd=tmp_path)
    return result, read_run(reports)


def baseline_holds_with_pending_guards_and_an_slo_breach_halts(world: World, tmp_path: Path) -> None:
    world.healthy()
    poll(lambda: "pending" in active_alerts(world.prometheus_url).get(PENDING_GUARD, set()), timeout=30,
         what=f"{PENDING_GUARD} pending")  # fmt: skip
    assert "firing" in active_alerts(world.prometheus_url)["Watchdog"]  # severity none: no halt condition
    gameday = write_gameday(tmp_path, {"catalog-delay": delay("catalog", duration="3s"),
                                       "payment-kill": pod_kill("payment", duration="60s")})
    result, run = _run(world, tmp_path, str(gameday))
    assert result.returncode == 1, describe(result)
    held, killed = run["steps"]
    assert (held["verdict"], killed["verdict"]) == ("held", "halted"), describe(result)
    assert PENDING_GUARD in held["guards"]["pending"]
    assert held["guards"]["firing"] == held["guards"]["ignored_firing"] == []
    halt = killed["halt"]
    # An SLO condition (bound to a service: "Alert (service)"), whichever saw the breach first.
    assert halt["condition"].split(" (")[0] in {"PaymentErrors", "CartErrors", "FrontendErrors"}, halt
    # Halted on the SLO condition, long before the 60 s fault ended and the alerts' `for:`.
    assert _seconds(halt["removed_at"], killed["started_at"]) < 30
    assert world.faults() == []
    report = (tmp_path / "reports" / run["run_id"] / "report.md").read_text()
    assert f"pending (did not halt): `{PENDING_GUARD}`" in report


def firing_guard_blocks_the_baseline_until_ignored(world: World, tmp_path: Path) -> None:
    world.healthy()
    switch_guard(world, firing=True)
    try:
        blocked_dir, ignored_dir = tmp_path / "blocked", tmp_path / "ignored"
        write_gameday(blocked_dir, {"catalog-delay": delay("catalog", duration="3s")})
        result, run = _run(world, blocked_dir, str(blocked_dir / "gameday.yaml"))
        assert result.returncode == 1, describe(result)
        step = run["steps"][0]
        assert step["verdict"] == "baseline-not-met", step["reason"]
        assert f"guard alert is firing: {SWITCH}" in step["reason"]
        assert f"`guards: {{ignore: [{SWITCH}]}}`" in step["reason"]
        assert step["halt"] is None
        assert world.faults() == []

        gameday = write_gameday(ignored_dir, {"catalog-delay": delay("catalog", duration="3s")},
                                extra={"guards": {"ignore": [SWITCH]}})
        result, run = _run(world, ignored_dir, str(gameday))
        assert result.returncode == 0, describe(result)
        step = run["steps"][0]
        assert step["verdict"] == "held", step["reason"]
        assert step["guards"]["ignored_firing"] == [SWITCH]
        report = (ignored_dir / "reports" / run["run_id"] / "report.md").read_text()
        assert f"firing but ignored (guards.ignore): `{SWITCH}`" in report
    finally:
        switch_guard(world, firing=False)


def guard_firing_during_the_hold_halts(world: World, tmp_path: Path) -> None:
    world.healthy()
    switch_guard(world, firing=False)
    gameday = write_gameday(tmp_path, {"catalog-delay": delay("catalog", duration="60s")})
    reports, log = tmp_path / "reports", tmp_path / "run.log"
    args = world.run("--yes", "--reports", str(reports), "--rules", str(world.guard_file), str(gameday))
    process = start_cli(args, env=world.env(), cwd=tmp_path, log=log)
    try:
        poll(world.faults, timeout=60, what="the fault injected", interval=0.1)
        switch_guard(world, firing=True)
        poll(lambda: not world.faults(), timeout=30, what="the fault removed", interval=0.1)
        switch_guard(world, firing=False)  # the alarm clears: the system recovers
        assert process.wait(timeout=90) == 1, log.read_text()
    finally:
        stop_process(process)
        switch_guard(world, firing=False)
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "halted", step["reason"]
    assert step["halt"]["condition"] == SWITCH
    expected = f"guard alert fired, fault removed: {SWITCH}: guard alert {SWITCH} is firing"
    assert step["reason"].startswith(expected), step["reason"]
    assert _seconds(step["halt"]["removed_at"], step["started_at"]) < 45
    assert world.faults() == []


def slo_condition_without_data_fails_the_baseline(world: World, tmp_path: Path) -> None:
    world.healthy()
    write_gameday(tmp_path, {"catalog-delay": delay("catalog", duration="3s")})
    extra = missing_data_rule(tmp_path / "rules" / "latency.yaml")
    result, run = _run(world, tmp_path, "--rules", str(extra), str(tmp_path / "exp" / "catalog-delay.yaml"))
    assert result.returncode == 1, describe(result)
    step = run["steps"][0]
    assert step["verdict"] == "baseline-not-met", step["reason"]
    assert "CatalogLatencyP99 (catalog): no data for" in step["reason"]
    assert world.faults() == []


def _seconds(later: str, earlier: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()
