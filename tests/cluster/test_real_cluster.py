"""The Chaos Mesh backend, the CTK activities and `chaoslab cleanup` against a real
cluster with Chaos Mesh. Skipped unless KUBECONFIG points at one (see conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaoslab.chaosmesh.backend import KubernetesBackend
from chaoslab.ctk import build_ctk_experiment
from chaoslab.errors import KubernetesError, PreflightError
from chaoslab.model import Delay, Experiment, Mode, NetworkAction, NetworkChaos, Selector, Service, Tier
from tests.cluster.conftest import Workload, wait_until

pytestmark = pytest.mark.cluster

RUN_ID = "20261127T101500Z-e2e0"


def _delay(workload: Workload, *, name: str = "target-delay", duration: str = "2m",
           **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"action": "delay", "mode": "all", "duration": duration, "direction": "to",
                            "selector": {"namespaces": [workload.namespace],
                                         "labelSelectors": {"app": workload.app}},
                            "delay": {"latency": "50ms"}}
    body.update(spec)
    labels = {"app.kubernetes.io/managed-by": "chaoslab", "chaoslab.io/experiment": name}
    return {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
            "metadata": {"name": name, "namespace": workload.namespace, "labels": labels}, "spec": body}


def _chaos_names(workload: Workload) -> list[str]:
    found = []
    for plural in ("networkchaos", "podchaos"):
        items = workload.custom.list_namespaced_custom_object(
            "chaos-mesh.org", "v1alpha1", workload.namespace, plural)["items"]
        found += [o["metadata"]["name"] for o in items]
    return sorted(found)


def test_preflight_refuses_a_selector_without_pods(workload: Workload) -> None:
    manifest = _delay(workload)
    manifest["spec"]["selector"]["labelSelectors"] = {"app": "ghost"}
    refusal = f"selector app=ghost in {workload.namespace} matches no running pod"
    with pytest.raises(PreflightError, match=refusal):
        workload.backend.preflight_manifest(manifest)
    assert _chaos_names(workload) == []


def test_inject_pause_resume_remove(workload: Workload) -> None:
    backend: KubernetesBackend = workload.backend
    result = backend.preflight_manifest(_delay(workload))
    assert result.will_hit == len(workload.running_pods())
    handle = backend.create(_delay(workload), run_id=RUN_ID)
    progress = backend.confirm_injected(handle, timeout=60)
    assert len(progress.pods) == result.will_hit
    backend.pause(handle)
    backend.resume(handle)
    backend.remove(handle, timeout=120)
    backend.remove(handle, timeout=10)  # already gone is success
    assert _chaos_names(workload) == []


def test_webhook_rejection_is_a_clear_error(workload: Workload) -> None:
    with pytest.raises(KubernetesError, match=f"create networkchaos in {workload.namespace}: rejected"):
        workload.backend.create(_delay(workload, direction="from"), run_id=RUN_ID)
    assert _chaos_names(workload) == []


def test_pod_kill_and_replacement(workload: Workload) -> None:
    before = set(workload.running_pods())
    manifest = _delay(workload, name="target-kill")
    manifest["kind"] = "PodChaos"
    manifest["spec"] = {"action": "pod-kill", "mode": "one", "selector": manifest["spec"]["selector"]}
    handle = workload.backend.create(manifest, run_id=RUN_ID)
    workload.backend.confirm_injected(handle, timeout=60)
    wait_until(lambda: len(set(workload.running_pods()) - before) >= 1, timeout=180, what="a replacement pod")
    workload.backend.remove(handle, timeout=120)


def test_cleanup_cli_removes_only_chaoslab_objects(workload: Workload) -> None:
    workload.backend.confirm_injected(workload.backend.create(_delay(workload), run_id=RUN_ID), timeout=60)
    foreign = _delay(workload, name="hand-made")
    foreign["metadata"]["labels"] = {"team": "sre"}
    workload.custom.create_namespaced_custom_object("chaos-mesh.org", "v1alpha1", workload.namespace,
                                                    "networkchaos", foreign)
    try:
        done = subprocess.run([sys.executable, "-m", "chaoslab", "cleanup", "--all", "--namespace",
                               workload.namespace, "--timeout", "120"],
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert _chaos_names(workload) == ["hand-made"]
    finally:
        workload.custom.delete_namespaced_custom_object("chaos-mesh.org", "v1alpha1", workload.namespace,
                                                        "networkchaos", "hand-made")


def _exported(workload: Workload, tmp_path: Path, duration: str) -> Path:
    service = Service(name=workload.app, namespace=workload.namespace, tier=Tier.NON_CORE,
                      selector=Selector(label_selectors={"app": workload.app}))
    fault = NetworkChaos(action=NetworkAction.DELAY, mode=Mode.ALL, duration=duration,
                         delay=Delay(latency="50ms"))
    doc = build_ctk_experiment(experiment=Experiment(name="target-delay", fault=fault), service=service)
    path = tmp_path / "exported.json"
    path.write_text(json.dumps(doc))
    return path


def _chaos(tmp_path: Path, experiment: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "chaostoolkit", "--no-version-check", "--log-file",
         str(tmp_path / "chaostoolkit.log"), "run", "--journal-path", str(tmp_path / "journal.json"),
         str(experiment)], cwd=tmp_path, env=dict(os.environ),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_chaos_run_of_an_exported_experiment_leaves_nothing(workload: Workload, tmp_path: Path) -> None:
    proc = _chaos(tmp_path, _exported(workload, tmp_path, "5s"))
    try:
        assert proc.wait(timeout=300) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed"
    assert _chaos_names(workload) == []


def test_sigterm_during_hold_removes_the_fault(workload: Workload, tmp_path: Path) -> None:
    proc = _chaos(tmp_path, _exported(workload, tmp_path, "10m"))
    log = tmp_path / "chaostoolkit.log"
    try:
        wait_until(lambda: log.exists() and "Action: hold-fault" in log.read_text(), timeout=120,
                   what="the hold")
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not _chaos_names(workload), timeout=60, what="the fault to be removed")
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads((tmp_path / "journal.json").read_text())["status"] == "interrupted"
