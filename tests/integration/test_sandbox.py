"""The sandbox end to end: real processes, real faults through the proxies, real Prometheus.

One sandbox serves the whole module (the default shop: one payment replica, no
retry in cart). Every test starts from a settled shop; the last one takes it down.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoslab.errors import BackendError, PreflightError
from chaoslab.model import (
    EXPERIMENT_LABEL,
    FaultRequest,
    Mode,
    NetworkAction,
    NetworkChaos,
    Selector,
    Service,
    Tier,
)
from chaoslab.sandbox import actions
from chaoslab.sandbox.procs import is_alive, read_pid_records
from chaoslab.sandbox.state import read_state
from tests.support.sandbox import RunningSandbox, attempt, chaoslab, sandbox_up, timed, wait_for

pytestmark = pytest.mark.sandbox

PAYMENT = Service(name="payment", namespace="shop", tier=Tier.CORE,
                  selector=Selector(label_selectors={"app": "payment"}))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with sandbox_up(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture
def sandbox(shop: RunningSandbox) -> RunningSandbox:
    shop.settle()
    return shop


def manifest(name: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "labels": {EXPERIMENT_LABEL: name}},
            "spec": spec}


def ctk_config(sandbox: RunningSandbox, run_id: str) -> dict[str, Any]:
    return {"chaoslab_sandbox_dir": str(sandbox.state_dir), "chaoslab_run_id": run_id}


def best_latency(sandbox: RunningSandbox, service: str, n: int = 5) -> float:
    """The best of ``n`` calls: a busy machine only ever adds time, a delay fault is a floor."""
    results = [timed(sandbox.service(service)) for _ in range(n)]
    assert all(status == 200 for status, _ in results), results
    return min(elapsed for _, elapsed in results)


def test_up_runs_the_shop_and_a_second_up_says_so(sandbox: RunningSandbox) -> None:
    proc = chaoslab("sandbox", "status", "--format", "json", "--state-dir", str(sandbox.state_dir))
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert set(status) == {"prometheus_url", "services", "faults"}
    assert status["faults"] == []
    shape = {s["name"]: (s["tier"], len(s["pods"])) for s in status["services"]}
    assert shape == {"frontend": ("core", 2), "catalog": ("non-core", 2), "recommendation": ("non-core", 2),
                     "cart": ("core", 2), "payment": ("core", 1)}
    for service in status["services"]:
        assert set(service) == {"name", "namespace", "tier", "endpoint", "pods"}
        assert service["namespace"] == "shop"
        for pod in service["pods"]:
            assert set(pod) == {"name", "labels", "pid", "ready", "restarts"}
            assert re.fullmatch(rf"{service['name']}-[0-9a-f]{{5}}", pod["name"])
            assert pod["labels"] == {"app": service["name"]}
            assert (pod["ready"], pod["restarts"]) == (True, 0)
            # Each pod is its own process, and `ps` shows its name.
            argv0 = Path(f"/proc/{pod['pid']}/cmdline").read_bytes().split(b"\0")[0].decode()
            assert argv0 == pod["name"]
    assert len(sandbox.state.pids) == 12  # 9 pods, supervisor, Prometheus, load generator

    again = chaoslab("sandbox", "up", "--state-dir", str(sandbox.state_dir))
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert sandbox.state.prometheus_url in again.stdout


def test_prometheus_scrapes_every_pod_and_the_load_reaches_the_frontend(sandbox: RunningSandbox) -> None:
    pods = {p["name"]: p["service"] for p in sandbox.backend.pods()}

    def scraped() -> dict[str, str] | None:
        found = {s["metric"]["pod"]: s["metric"]["job"] for s in sandbox.query('up{namespace="shop"} == 1')}
        return found if found == pods else None

    wait_for(scraped, timeout=30, what="every pod to be an up target with job and pod labels")
    served = 'sum(increase(http_requests_total{service="frontend",code="200"}[10s])) > 0'
    wait_for(lambda: sandbox.query(served), timeout=30, what="load on the frontend")
    assert sandbox.query('count(http_request_duration_seconds_bucket{service="catalog",le="0.3"})')


def test_a_300ms_delay_on_catalog_raises_its_latency_during_the_fault_and_not_after(
    sandbox: RunningSandbox,
) -> None:
    config = ctk_config(sandbox, "20261127T101500Z-aaaa")
    before = best_latency(sandbox, "catalog")
    spec = {"action": "delay", "mode": "all", "selector": {"labelSelectors": {"app": "catalog"}},
            "delay": {"latency": "300ms", "jitter": "10ms"}, "duration": "6s"}
    result = actions.inject_fault(manifest("catalog-delay", "NetworkChaos", spec), timeout=10,
                                  configuration=config)
    assert result["name"] == "catalog-delay-aaaa"
    assert sorted(result["pods"]) == sorted(p["name"] for p in sandbox.pods("catalog"))
    during = best_latency(sandbox, "catalog")
    assert during - before >= 0.25, (before, during)
    shown = chaoslab("sandbox", "status", "--format", "json", "--state-dir", str(sandbox.state_dir))
    (fault,) = json.loads(shown.stdout)["faults"]
    assert fault["experiment"] == "catalog-delay"
    assert (fault["kind"], fault["action"]) == ("NetworkChaos", "delay")
    assert sorted(fault["pods"]) == sorted(result["pods"])
    assert fault["until"] == result["until"]

    # The supervisor ends the fault at its duration by itself; the object stays until removed.
    handle = sandbox.backend.list_faults(run_id="20261127T101500Z-aaaa")[0]
    wait_for(lambda: (sandbox.backend.fault(handle) or {}).get("phase") == "recovered", timeout=20,
             what="the delay to end at its duration")
    after = best_latency(sandbox, "catalog")
    assert after - before < 0.25, (before, after)

    removed = actions.remove_fault("NetworkChaos", "shop", "catalog-delay", configuration=config)
    assert removed["removed"] == ["catalog-delay-aaaa"]
    again = actions.remove_fault("NetworkChaos", "shop", "catalog-delay", configuration=config)
    assert again["removed"] == []


def test_a_partition_of_payment_fails_calls_to_it_during_the_fault_and_not_after(
    sandbox: RunningSandbox,
) -> None:
    request = FaultRequest(
        experiment="payment-partition", step="payment-partition", service=PAYMENT,
        run_id="20261127T101500Z-bbbb",
        fault=NetworkChaos(action=NetworkAction.PARTITION, mode=Mode.ALL, duration="60s"))
    preflight = sandbox.backend.preflight(request)
    assert preflight.matched == tuple(f"shop/{p['name']}" for p in sandbox.pods("payment"))
    assert preflight.will_hit == 1
    handle = sandbox.backend.apply(request)
    sandbox.backend.wait_injected(handle, timeout=10)

    during = [attempt(sandbox.service("payment"), timeout=1.0) for _ in range(3)]
    assert during == ["TimeoutError"] * 3
    assert attempt(sandbox.service("frontend"), timeout=5.0) == 503  # checkout fails behind it

    sandbox.backend.remove(handle, timeout=10)
    assert sandbox.backend.list_faults(run_id="20261127T101500Z-bbbb") == []
    wait_for(lambda: attempt(sandbox.service("payment")) == 200, timeout=15, what="payment to answer again")
    assert [attempt(sandbox.service("payment")) for _ in range(5)] == [200] * 5


def test_pause_recovers_a_fault_and_resume_puts_it_back(sandbox: RunningSandbox) -> None:
    spec = {"action": "delay", "mode": "all", "selector": {"labelSelectors": {"app": "catalog"}},
            "delay": {"latency": "300ms"}, "duration": "60s"}
    body = manifest("catalog-slow", "NetworkChaos", spec)
    handle = sandbox.backend.apply_manifest(body)
    sandbox.backend.wait_injected(handle, timeout=10)
    with pytest.raises(BackendError, match="already exists"):
        sandbox.backend.apply_manifest(body)
    assert best_latency(sandbox, "catalog", n=2) >= 0.29
    sandbox.backend.pause(handle)
    assert best_latency(sandbox, "catalog", n=3) < 0.25
    sandbox.backend.resume(handle)
    assert best_latency(sandbox, "catalog", n=2) >= 0.29
    sandbox.backend.remove(handle, timeout=10)
    with pytest.raises(BackendError, match="not found"):
        sandbox.backend.pause(handle)


def test_pod_kill_mode_one_replaces_exactly_one_pod(sandbox: RunningSandbox) -> None:
    before = {p["name"] for p in sandbox.pods("catalog")}
    spec = {"action": "pod-kill", "mode": "one", "selector": {"labelSelectors": {"app": "catalog"}}}
    handle = sandbox.backend.apply_manifest(manifest("catalog-kill", "PodChaos", spec))
    sandbox.backend.wait_injected(handle, timeout=10)
    killed = (sandbox.backend.fault(handle) or {})["pods"]
    assert len(killed) == 1
    assert killed[0] in before

    def replaced() -> set[str] | None:
        pods = sandbox.pods("catalog")
        names = {p["name"] for p in pods}
        done = len(pods) == 2 and all(p["ready"] for p in pods) and killed[0] not in names
        return names if done else None

    after = wait_for(replaced, timeout=30, what="a replacement catalog pod")
    assert len(after & before) == 1
    (new,) = after - before
    assert re.fullmatch(r"catalog-[0-9a-f]{5}", new)
    sandbox.backend.remove(handle, timeout=10)


def test_pod_failure_stops_a_pod_serving_for_its_duration(sandbox: RunningSandbox) -> None:
    spec = {"action": "pod-failure", "mode": "one", "duration": "4s",
            "selector": {"labelSelectors": {"app": "recommendation"}}}
    handle = sandbox.backend.apply_manifest(manifest("recommendation-failure", "PodChaos", spec))
    sandbox.backend.wait_injected(handle, timeout=10)
    (name,) = (sandbox.backend.fault(handle) or {})["pods"]
    pod = next(p for p in sandbox.pods("recommendation") if p["name"] == name)

    assert attempt(sandbox.pod_endpoint(pod), timeout=1.0) == "TimeoutError"
    # The frontend falls back when recommendation is slow: checkout still works.
    assert attempt(sandbox.service("frontend"), timeout=5.0) == 200

    wait_for(lambda: (sandbox.backend.fault(handle) or {}).get("phase") == "recovered", timeout=20,
             what="the pod failure to end at its duration")
    wait_for(lambda: attempt(sandbox.pod_endpoint(pod)) == 200, timeout=10, what="the pod to serve again")
    same = next(p for p in sandbox.pods("recommendation") if p["name"] == name)
    assert same["pid"] == pod["pid"]
    sandbox.backend.remove(handle, timeout=10)


def test_container_kill_restarts_the_pod_in_place(sandbox: RunningSandbox) -> None:
    spec = {"action": "container-kill", "mode": "one", "containerNames": ["cart"],
            "selector": {"labelSelectors": {"app": "cart"}}}
    handle = sandbox.backend.apply_manifest(manifest("cart-container-kill", "PodChaos", spec))
    sandbox.backend.wait_injected(handle, timeout=10)
    (name,) = (sandbox.backend.fault(handle) or {})["pods"]
    before = {p["name"]: p["pid"] for p in sandbox.pods("cart")}

    def restarted() -> dict[str, Any] | None:
        pod = next((p for p in sandbox.pods("cart") if p["name"] == name), None)
        return pod if pod and pod["restarts"] == 1 and pod["ready"] else None

    pod = wait_for(restarted, timeout=20, what="the cart container to restart in place")
    assert set(before) == {p["name"] for p in sandbox.pods("cart")}
    assert pod["pid"] != before[name]
    sandbox.backend.remove(handle, timeout=10)


def test_killing_the_only_payment_pod_breaks_checkout_and_trips_the_slo(sandbox: RunningSandbox) -> None:
    spec = {"action": "pod-kill", "mode": "one", "selector": {"labelSelectors": {"app": "payment"}}}
    handle = sandbox.backend.apply_manifest(manifest("payment-kill", "PodChaos", spec))
    sandbox.backend.wait_injected(handle, timeout=10)
    wait_for(lambda: attempt(sandbox.service("frontend"), timeout=5.0) == 503, timeout=10,
             what="checkout to fail while payment has no pod")
    wait_for(lambda: sandbox.alert_state("CheckoutErrors") != "inactive", timeout=30,
             what="the checkout SLO alert to trip")
    wait_for(lambda: attempt(sandbox.service("frontend"), timeout=5.0) == 200, timeout=30,
             what="checkout to work again once payment is replaced")
    sandbox.backend.remove(handle, timeout=10)


def test_cleanup_removes_one_runs_faults_then_all(sandbox: RunningSandbox) -> None:
    spec = {"action": "delay", "mode": "one", "selector": {"labelSelectors": {"app": "recommendation"}},
            "delay": {"latency": "1ms"}, "duration": "5m"}
    for run in ("20261127T101500Z-cccc", "20261127T101500Z-dddd"):
        actions.inject_fault(manifest("rec-delay", "NetworkChaos", spec),
                             configuration=ctk_config(sandbox, run))
    env = {"CHAOSLAB_SANDBOX_DIR": str(sandbox.state_dir)}
    one = chaoslab("cleanup", "--target", "sandbox", "--run-id", "20261127T101500Z-cccc", env=env)
    assert one.returncode == 0, one.stderr
    assert "networkchaos/rec-delay-cccc" in one.stdout
    assert "dddd" not in one.stdout
    assert [h.name for h in sandbox.backend.list_faults()] == ["rec-delay-dddd"]
    dry = chaoslab("cleanup", "--target", "sandbox", "--all", "--dry-run", env=env)
    assert "would remove networkchaos/rec-delay-dddd" in dry.stdout
    assert len(sandbox.backend.list_faults()) == 1
    everything = chaoslab("cleanup", "--target", "sandbox", "--all", env=env)
    assert everything.returncode == 0, everything.stderr
    assert sandbox.backend.list_faults() == []


def test_a_selector_that_matches_no_pod_is_refused_before_anything_is_created(
    sandbox: RunningSandbox,
) -> None:
    spec = {"action": "delay", "mode": "one", "selector": {"labelSelectors": {"app": "checkout"}},
            "delay": {"latency": "10ms"}, "duration": "10s"}
    with pytest.raises(PreflightError, match="app=checkout"):
        actions.inject_fault(manifest("nothing", "NetworkChaos", spec),
                             configuration=ctk_config(sandbox, "20261127T101500Z-eeee"))
    assert sandbox.backend.list_faults() == []


# Keep this test last: it takes the module's sandbox down.
def test_down_leaves_no_process_and_no_port_even_after_an_unclean_stop(shop: RunningSandbox) -> None:
    state = read_state(shop.state_dir)
    assert state is not None
    records = read_pid_records(shop.state_dir)
    assert {r.role for r in records} == {"supervisor", "prometheus", "pod", "loadgen"}
    os.kill(state.supervisor_pid, signal.SIGKILL)  # an unclean stop

    proc = chaoslab("sandbox", "down", "--state-dir", str(shop.state_dir))
    assert proc.returncode == 0, proc.stderr
    assert [r for r in records if is_alive(r.pid, r.start)] == []
    for port in state.ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
    assert not (shop.state_dir / "state.json").exists()
    status = chaoslab("sandbox", "status", "--state-dir", str(shop.state_dir))
    assert status.returncode == 3
    assert "no sandbox is running" in status.stderr
