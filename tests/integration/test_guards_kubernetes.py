"""Guard alerts on the Kubernetes path: the real kubernetes client against the fake API
server and Chaos Mesh emulator, a real Prometheus evaluating the SLO rules next to
kube-prometheus-shaped guard rules (see tests/support/guards.py for the scenarios)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.fakes.kube_api import write_kubeconfig
from tests.integration.test_run_kubernetes import EFFECTS, Coupler
from tests.support import guards
from tests.support.gameday import SERVICES, cli_env, error_ratio, poll, service_ratio, slo_rules
from tests.support.kube import FakeCluster, start_cluster, stop_cluster
from tests.support.prometheus import (
    PrometheusProcess,
    ShopExporter,
    instant,
    require_prometheus,
    start_prometheus,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(240)]


@dataclass
class KubeWorld:
    cluster: FakeCluster
    prometheus: PrometheusProcess
    exporters: dict[str, ShopExporter]
    kubeconfig: Path
    guard_file: Path

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    def env(self) -> dict[str, str]:
        return cli_env(KUBECONFIG=str(self.kubeconfig))

    def run(self, *args: str) -> list[str]:
        return ["run", "--target", "kubernetes", "--prometheus", self.prometheus.url, *args]

    def reload(self) -> None:
        self.prometheus.process.send_signal(signal.SIGHUP)

    def faults(self) -> list[str]:
        return self.cluster.chaos_names()

    def healthy(self) -> None:
        for exporter in self.exporters.values():
            exporter.set(error_ratio=0.0)
        exprs = [f"{error_ratio()} == 0", *(f"{service_ratio(n)} == 0" for n in self.exporters)]
        poll(lambda: all(instant(self.prometheus.url, e) for e in exprs), timeout=30,
             what="a healthy shop in Prometheus", interval=0.2)  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeWorld]:
    require_prometheus()
    root = tmp_path_factory.mktemp("k8s-guards")
    slo = root / "rules" / "slo.yaml"
    slo.parent.mkdir()
    slo.write_text(yaml.safe_dump(slo_rules()))
    guard_file = guards.write_guard_rules(root / "rules" / "kube-prometheus.yaml", firing=False)
    exporters = {name: ShopExporter(name) for name, _tier in SERVICES}
    for exporter in exporters.values():
        exporter.start()
    prometheus = cluster = coupler = None
    try:
        prometheus = start_prometheus(root / "prometheus", targets={n: e.port for n, e in exporters.items()},
                                      rule_files=[slo, guard_file])
        cluster = start_cluster()
        coupler = Coupler(cluster.store, exporters, EFFECTS).start()
        yield KubeWorld(cluster=cluster, prometheus=prometheus, exporters=exporters,
                        kubeconfig=write_kubeconfig(root, cluster.url), guard_file=guard_file)
    finally:
        if coupler is not None:
            coupler.stop()
        if cluster is not None:
            stop_cluster(cluster)
        if prometheus is not None:
            prometheus.stop()
        for exporter in exporters.values():
            exporter.stop()


def test_pending_guards_do_not_block_and_an_slo_breach_halts(world: KubeWorld, tmp_path: Path) -> None:
    guards.baseline_holds_with_pending_guards_and_an_slo_breach_halts(world, tmp_path)


def test_a_firing_guard_blocks_the_baseline_until_ignored(world: KubeWorld, tmp_path: Path) -> None:
    guards.firing_guard_blocks_the_baseline_until_ignored(world, tmp_path)


def test_a_guard_firing_during_the_hold_halts(world: KubeWorld, tmp_path: Path) -> None:
    guards.guard_firing_during_the_hold_halts(world, tmp_path)


def test_an_slo_condition_without_data_fails_the_baseline(world: KubeWorld, tmp_path: Path) -> None:
    guards.slo_condition_without_data_fails_the_baseline(world, tmp_path)
