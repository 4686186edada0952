"""Pod readiness in the hypothesis, on the fake Kubernetes API: `chaoslab run --target
kubernetes` as a subprocess, the Chaos Mesh emulator leaving pods not Ready on request.

The SLOs hold throughout (no exporter reacts to these faults): whatever is found here is
found by the readiness check alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.chaos_mesh import CHAOS
from tests.fakes.kube_store import PODS
from tests.integration.test_run_kubernetes import Shop, k8s_run
from tests.integration.test_run_kubernetes import shop as shop_fixture  # noqa: F401  (fixture `shop`)
from tests.support.gameday import describe, read_run, run_cli, write_gameday

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(240)]


def pod_failure(service: str, duration: str = "2s") -> dict[str, Any]:
    return {"service": service,
            "fault": {"podChaos": {"action": "pod-failure", "mode": "one", "duration": duration}}}


def catalog_pods(shop: Shop) -> dict[str, dict[str, Any]]:
    items = shop.cluster.store.find(PODS, lambda p: p["metadata"]["labels"].get("app") == "catalog")
    return {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in items}


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])


@pytest.fixture
def unready(shop: Shop) -> Iterator[None]:
    """Faults named ``catalog-stuck*`` leave their pods not Ready; afterwards every catalog
    pod is made Ready again for the next test."""
    shop.cluster.emulator.leave_unready("catalog-stuck*")
    try:
        yield
    finally:
        shop.cluster.emulator.unready.clear()
        for ref in catalog_pods(shop):
            shop.cluster.store.set_pod_ready(*ref.split("/", 1), True)


def _run(shop: Shop, tmp_path: Path, experiments: dict[str, Any], **extra: Any) -> tuple[Any, dict[str, Any]]:
    gameday = write_gameday(tmp_path, experiments, extra={"recoveryTimeout": "5s", **extra})
    reports = tmp_path / "reports"
    result = run_cli(k8s_run("--prometheus", shop.prometheus.url, "--reports", str(reports), str(gameday)),
                     env=shop.env(), cwd=tmp_path)
    return result, read_run(reports)


def test_a_pod_failure_whose_pod_never_gets_ready_again_is_deviated_naming_it(
    shop: Shop, tmp_path: Path, unready: None
) -> None:
    shop.healthy()
    before = set(catalog_pods(shop))
    result, run = _run(shop, tmp_path, {"catalog-stuck": pod_failure("catalog")})
    assert result.returncode == 1, describe(result)
    step = run["steps"][0]
    assert step["verdict"] == "deviated", describe(result)
    stuck = [ref for ref, pod in catalog_pods(shop).items() if not _ready(pod)]
    assert len(stuck) == 1
    assert f"{stuck[0]} is Running but not Ready" in step["reason"]
    pods = step["pods"]
    assert {f"{p['namespace']}/{p['name']}" for p in pods["before"]} == before
    assert all(p["ready"] for p in pods["before"])
    assert pods["restarted"] == stuck  # Chaos Mesh restarted its container on recovery
    assert pods["ready_s"] is None
    assert shop.chaos() == []
    assert stuck[0] in (tmp_path / "reports" / run["run_id"] / "report.md").read_text()


def test_a_pod_kill_whose_replacement_never_gets_ready_is_deviated_naming_it(
    shop: Shop, tmp_path: Path, unready: None
) -> None:
    shop.healthy()
    before = set(catalog_pods(shop))
    kill = {"service": "catalog", "fault": {"podChaos": {"action": "pod-kill", "mode": "one",
                                                         "gracePeriod": 0, "duration": "2s"}}}
    result, run = _run(shop, tmp_path, {"catalog-stuck-kill": kill})
    assert result.returncode == 1, describe(result)
    step = run["steps"][0]
    assert step["verdict"] == "deviated", describe(result)
    pods = step["pods"]
    (killed,) = pods["replaced"]
    (replacement,) = pods["added"]
    assert killed in before
    assert replacement not in before
    assert f"{replacement} is Running but not Ready" in step["reason"]


def test_pods_that_come_back_hold_and_their_restarts_are_recorded(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    result, run = _run(shop, tmp_path, {"catalog-blip": pod_failure("catalog")})
    assert result.returncode == 0, describe(result)
    step = run["steps"][0]
    assert step["verdict"] == "held", describe(result)
    pods = step["pods"]
    assert len(pods["restarted"]) == 1
    assert pods["replaced"] == pods["added"] == []
    assert pods["ready_s"] is not None
    assert pods["reason"] == ""
    assert all(p["ready"] for p in pods["after"])


@pytest.mark.parametrize("where", ["gameday", "experiment"])
def test_a_pod_not_ready_before_injection_is_a_baseline_not_met_unless_readiness_is_off(
    shop: Shop, tmp_path: Path, where: str
) -> None:
    shop.healthy()
    ref = sorted(catalog_pods(shop))[0]
    shop.cluster.store.set_pod_ready(*ref.split("/", 1), False)
    try:
        since = shop.cluster.store.rv
        result, run = _run(shop, tmp_path / "on", {"catalog-blip": pod_failure("catalog", "1s")})
        created = [e for e in shop.cluster.store.events_after(since) if e.resource in CHAOS]
        assert result.returncode == 1, describe(result)
        step = run["steps"][0]
        assert step["verdict"] == "baseline-not-met", describe(result)
        assert f"{ref} is Running but not Ready" in step["reason"]
        assert created == []

        if where == "gameday":
            off, extra = pod_failure("catalog", "1s"), {"readiness": False}
        else:
            off, extra = {**pod_failure("catalog", "1s"), "readiness": False}, {}
        result, run = _run(shop, tmp_path / "off", {"catalog-blip": off}, **extra)
        assert result.returncode == 0, describe(result)
        assert run["steps"][0]["verdict"] == "held"
        assert run["steps"][0]["pods"] is None
    finally:
        shop.cluster.store.set_pod_ready(*ref.split("/", 1), True)
