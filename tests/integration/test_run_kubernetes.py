"""`chaoslab run --target kubernetes` end to end: the real kubernetes client against the fake
API server and Chaos Mesh emulator, a real Prometheus scraping controllable exporters.

The exporters stand for the shop's services. A coupler makes the system react to faults
the way a weakness would: while a fault named in ``EFFECTS`` is injected, the services it
names answer a share of requests with 500.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from chaoslab.model import EXPERIMENT_LABEL
from tests.fakes.chaos_mesh import CHAOS
from tests.fakes.kube_api import write_kubeconfig
from tests.fakes.kube_store import Store
from tests.support.gameday import (
    SERVICES,
    cli_env,
    delay,
    describe,
    error_ratio,
    pod_kill,
    poll,
    read_run,
    run_cli,
    service_ratio,
    start_cli,
    stop_process,
    write_gameday,
)
from tests.support.kube import FakeCluster, start_cluster, stop_cluster
from tests.support.prometheus import (
    PrometheusProcess,
    ShopExporter,
    instant,
    require_prometheus,
    start_prometheus,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(240)]

# While the fault of this experiment is in place, these services fail this share of requests.
EFFECTS = {"payment-kill": {"payment": 0.5, "cart": 0.5}}


class Coupler:
    """Polls the fake cluster: an injected fault named in ``effects`` sets its error ratios."""

    def __init__(
        self, store: Store, exporters: Mapping[str, ShopExporter], effects: Mapping[str, Mapping[str, float]]
    ) -> None:
        self.store, self.exporters, self.effects = store, exporters, effects
        self._stop = threading.Event()
        self._active: frozenset[str] = frozenset()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Coupler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _injected(self) -> frozenset[str]:
        found = set()
        for obj in self.store.all_of(CHAOS):
            experiment = obj["metadata"].get("labels", {}).get(EXPERIMENT_LABEL)
            conditions = {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions", [])}
            if (
                experiment in self.effects
                and conditions.get("AllInjected") == "True"
                and not obj["metadata"].get("deletionTimestamp")
            ):
                found.add(experiment)
        return frozenset(found)

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            active = self._injected()
            if active == self._active:
                continue
            self._active = active
            ratios = dict.fromkeys(self.exporters, 0.0)
            for experiment in active:
                ratios.update(self.effects[experiment])
            for name, exporter in self.exporters.items():
                exporter.set(error_ratio=ratios[name])


@dataclass
class Shop:
    cluster: FakeCluster
    prometheus: PrometheusProcess
    exporters: dict[str, ShopExporter]
    kubeconfig: Path
    root: Path

    def env(self) -> dict[str, str]:
        return cli_env(KUBECONFIG=str(self.kubeconfig))

    def healthy(self) -> None:
        """Every service serving without errors, and Prometheus seeing it."""
        for exporter in self.exporters.values():
            exporter.set(error_ratio=0.0)
        exprs = [f"{error_ratio()} == 0", *(f"{service_ratio(n)} == 0" for n in self.exporters)]
        poll(
            lambda: all(instant(self.prometheus.url, e) for e in exprs),
            timeout=30,
            what="a healthy shop in Prometheus",
            interval=0.2,
        )

    def chaos(self) -> list[str]:
        return self.cluster.chaos_names()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    require_prometheus()
    root = tmp_path_factory.mktemp("k8s-run")
    exporters = {name: ShopExporter(name) for name, _tier in SERVICES}
    for exporter in exporters.values():
        exporter.start()
    prometheus = cluster = coupler = None
    try:
        prometheus = start_prometheus(root / "prometheus", targets={n: e.port for n, e in exporters.items()})
        cluster = start_cluster()
        coupler = Coupler(cluster.store, exporters, EFFECTS).start()
        yield Shop(
            cluster=cluster,
            prometheus=prometheus,
            exporters=exporters,
            kubeconfig=write_kubeconfig(root, cluster.url),
            root=root,
        )
    finally:
        if coupler is not None:
            coupler.stop()
        if cluster is not None:
            stop_cluster(cluster)
        if prometheus is not None:
            prometheus.stop()
        for exporter in exporters.values():
            exporter.stop()


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_gameday_holds_non_core_halts_the_core_breach_and_skips_the_rest(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    gameday = write_gameday(
        tmp_path,
        {
            "catalog-delay": delay("catalog"),
            "recommendation-delay": delay("recommendation"),
            "payment-kill": pod_kill("payment", duration="60s"),
            "cart-delay": delay("cart"),
        },
    )
    reports, junit = tmp_path / "reports", tmp_path / "junit.xml"
    started = time.monotonic()
    result = run_cli(
        [
            "run",
            "--target",
            "kubernetes",
            "--prometheus",
            shop.prometheus.url,
            "--yes",
            "--reports",
            str(reports),
            "--junit",
            str(junit),
            str(gameday),
        ],
        env=shop.env(),
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    print(describe(result))  # DEBUG
    assert result.returncode == 1, describe(result)
    run = read_run(reports)
    verdicts = {s["experiment"]: s["verdict"] for s in run["steps"]}
    assert verdicts == {
        "catalog-delay": "held",
        "recommendation-delay": "held",
        "payment-kill": "halted",
        "cart-delay": "skipped",
    }, describe(result)
    assert run["verdict"] == "halted"
    kill = next(s for s in run["steps"] if s["experiment"] == "payment-kill")
    halt = kill["halt"]
    assert any(name in halt["condition"] for name in ("PaymentErrors", "CartErrors", "ShopErrorBurn"))
    assert halt["breach_at"] is not None, describe(result)
    assert _ts(halt["breach_at"]) <= _ts(halt["detected_at"]) <= _ts(halt["removed_at"])
    assert elapsed < 60 + 60, "the 60 s pod-kill was not cut short by the halt"
    assert kill["recovery_s"] is not None
    skipped = next(s for s in run["steps"] if s["experiment"] == "cart-delay")
    assert "payment-kill" in skipped["reason"]
    assert shop.chaos() == []
    for step in run["steps"][:3]:
        assert (reports / run["run_id"] / step["journal"]).is_file()
    assert (reports / run["run_id"] / "report.md").is_file()
    junit_text = junit.read_text()
    assert junit_text.count("<testcase") == 4
    assert 'failures="1"' in junit_text
    assert "verdict" in result.stdout


def test_signal_mid_hold_removes_the_fault_and_exits_3(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    write_gameday(tmp_path, {"catalog-long": delay("catalog", duration="120s")})
    reports = tmp_path / "reports"
    process = start_cli(
        [
            "run",
            "--target",
            "kubernetes",
            "--prometheus",
            shop.prometheus.url,
            "--reports",
            str(reports),
            str(tmp_path / "exp" / "catalog-long.yaml"),
        ],
        env=shop.env(),
        cwd=tmp_path,
        log=tmp_path / "run.log",
    )
    try:
        poll(shop.chaos, timeout=60, what="the fault in the cluster")
        time.sleep(0.5)  # into the hold
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        poll(lambda: not shop.chaos(), timeout=30, what="the fault removed")
        removal_s = time.monotonic() - sent
        assert process.wait(timeout=60) == 3, (tmp_path / "run.log").read_text()
    finally:
        stop_process(process)
    assert removal_s < 20.0  # goal 2 s; bounded 10x looser
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "error"
    assert "SIGTERM" in step["reason"]
