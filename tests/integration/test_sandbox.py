"""The sandbox end to end: real processes, real faults through the proxies, real Prometheus.

One sandbox serves the whole module (the default shop: one payment replica, no
retry in cart). Every test starts from a settled shop; the last one takes it down.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoslab.errors import BackendError, InjectionError, InvalidInputError, PreflightError
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
from chaoslab.sandbox.procs import is_alive, read_pid_records, start_time
from chaoslab.sandbox.prometheus import is_ready
from chaoslab.sandbox.state import read_state
from tests.support.sandbox import REPO, RunningSandbox, attempt, chaoslab, sandbox_up, timed, wait_for

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
    # Prometheus discovers the replacement (file_sd, rewritten when pods change).
    wait_for(lambda: sandbox.query(f'up{{namespace="shop",job="catalog",pod="{new}"}} == 1'), timeout=30,
             what=f"Prometheus to scrape the replacement pod {new}")


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


@pytest.mark.parametrize(
    ("mode", "value", "counts"),
    [("one", None, {1}), ("all", None, {2}), ("fixed", "1", {1}), ("fixed", "5", {2}),
     ("fixed-percent", "50", {1}), ("fixed-percent", "100", {2}),
     ("random-max-percent", "100", {0, 1, 2})],
)
def test_every_mode_hits_as_many_pods_as_chaos_mesh_would(
    sandbox: RunningSandbox, mode: str, value: str | None, counts: set[int]
) -> None:
    spec: dict[str, Any] = {"action": "delay", "mode": mode, "delay": {"latency": "1ms"}, "duration": "30s",
                            "selector": {"labelSelectors": {"app": "frontend"}}}
    if value is not None:
        spec["value"] = value
    handle = sandbox.backend.apply_manifest(manifest(f"frontend-{mode}", "NetworkChaos", spec))
    try:
        record = sandbox.backend.fault(handle) or {}
        frontends = {p["name"] for p in sandbox.pods("frontend")}
        assert len(record["pods"]) in counts
        assert set(record["pods"]) <= frontends
    finally:
        sandbox.backend.remove(handle, timeout=10)


def test_a_mode_that_selects_none_of_the_matching_pods_says_so(sandbox: RunningSandbox) -> None:
    spec = {"action": "delay", "mode": "random-max-percent", "value": "0", "duration": "30s",
            "delay": {"latency": "1ms"}, "selector": {"labelSelectors": {"app": "frontend"}}}
    # Chaos Mesh's webhook refuses a maximum of 0%, and so does the sandbox.
    with pytest.raises(InvalidInputError, match=r"spec\.value"):
        sandbox.backend.apply_manifest(manifest("frontend-none", "NetworkChaos", spec))
    # At most 1% of 2 pods rolls 0 or 1 pod: try until a roll of 0 (40 rolls of 1: 2**-40).
    spec["value"] = "1"
    error = "no roll of 0 in 40 tries"
    for _ in range(40):
        handle = sandbox.backend.apply_manifest(manifest("frontend-none", "NetworkChaos", spec))
        try:
            sandbox.backend.wait_injected(handle, timeout=5)
        except InjectionError as exc:
            error = str(exc)
            break
        sandbox.backend.remove(handle, timeout=10)
    # Not "no running pod matched": two did, and the mode chose none of them.
    assert "selected none of the 2 matching pods" in error
    assert sandbox.backend.list_faults() == []


def test_a_prometheus_that_dies_is_restarted_on_the_same_url(sandbox: RunningSandbox) -> None:
    before = read_state(sandbox.state_dir)
    assert before is not None
    os.kill(before.pids["prometheus"], signal.SIGKILL)

    def restarted() -> bool:
        state = read_state(sandbox.state_dir)
        pid = state.pids.get("prometheus") if state else None
        return (pid is not None and pid != before.pids["prometheus"] and start_time(pid) is not None
                and is_ready(before.prometheus_url))

    wait_for(restarted, timeout=30, what="the supervisor to restart Prometheus")
    pods = {p["name"] for p in sandbox.backend.pods()}
    # Same URL, and every pod scraped again.
    wait_for(lambda: pods <= {s["metric"]["pod"] for s in sandbox.query('up{namespace="shop"} == 1')},
             timeout=30, what="every pod to be scraped by the restarted Prometheus")
    again = chaoslab("sandbox", "up", "--state-dir", str(sandbox.state_dir))
    assert "already running" in again.stdout
    assert before.prometheus_url in again.stdout


EXPORTED = """\
apiVersion: chaoslab/v1
kind: Experiment
metadata: {name: catalog-blip, description: a short delay on catalog}
spec:
  service: catalog
  fault:
    networkChaos: {action: delay, mode: all, delay: {latency: 50ms}, duration: 3s}
"""


def test_an_exported_experiment_runs_with_chaos_run_against_the_sandbox(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    shutil.copy(REPO / "experiments" / "catalog.yaml", tmp_path / "catalog.yaml")
    (tmp_path / "exp.yaml").write_text(EXPORTED, encoding="utf-8")
    env = {"CHAOSLAB_SANDBOX_DIR": str(sandbox.state_dir)}
    exported = chaoslab("export", "--to", "chaostoolkit", "--target", "sandbox", "--rules",
                        str(REPO / "experiments" / "rules" / "shop-slo.yaml"), str(tmp_path / "exp.yaml"),
                        env=env)
    assert exported.returncode == 0, exported.stderr
    experiment = json.loads(exported.stdout)
    assert experiment["configuration"]["prometheus_url"] == sandbox.state.prometheus_url
    (tmp_path / "exp.json").write_text(exported.stdout, encoding="utf-8")
    sandbox.settle()
    sandbox.wait_healthy()  # earlier tests broke SLOs on purpose, and restarted Prometheus

    chaos = Path(sys.executable).with_name("chaos")
    run = subprocess.run(
        [str(chaos), "--no-log-file", "run", "--journal-path", str(tmp_path / "journal.json"),
         str(tmp_path / "exp.json")],
        capture_output=True, text=True, timeout=90, cwd=tmp_path, env={**os.environ, **env})
    assert run.returncode == 0, run.stdout + run.stderr
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert (journal["status"], journal["deviated"]) == ("completed", False)
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    (inject, _hold) = journal["run"]
    injected = inject["output"]
    assert sorted(injected["pods"]) == sorted(p["name"] for p in sandbox.pods("catalog"))
    (rollback,) = journal["rollbacks"]
    assert rollback["output"]["removed"] == [injected["name"]]
    assert sandbox.backend.list_faults() == []


# Keep this test last: it takes the module's sandbox down.
def test_down_leaves_no_process_and_no_port_even_after_an_unclean_stop(shop: RunningSandbox) -> None:
    state = read_state(shop.state_dir)
    assert state is not None
    records = read_pid_records(shop.state_dir)
    assert {r.role for r in records} == {"supervisor", "prometheus", "pod", "loadgen"}
    os.kill(state.pids["prometheus"], signal.SIGKILL)  # an unclean stop of everything at once
    os.kill(next(pid for name, pid in state.pids.items() if name.startswith("payment-")), signal.SIGKILL)
    os.kill(state.supervisor_pid, signal.SIGKILL)

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
