"""Fixtures for the real-cluster suite (marker ``cluster``).

Every test here runs when KUBECONFIG points at a reachable cluster where Chaos Mesh's
CRDs are installed, and is skipped with the reason otherwise
(kind + `helm install chaos-mesh`, see docs/kubernetes.md). The suite works in a
namespace of its own, ``chaoslab-e2e-<hex>``, with a small Deployment of pause pods,
and deletes the namespace afterwards.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chaoslab.chaosmesh.backend import KubernetesBackend, connect
from chaoslab.errors import KubernetesError

APP = "chaoslab-target"
REPLICAS = 2
READY_TIMEOUT_S = 180.0


def _skip_reason() -> str | None:
    if not os.environ.get("KUBECONFIG"):
        return ("KUBECONFIG is not set: the cluster suite needs a real cluster with Chaos Mesh "
                "(kind + helm install chaos-mesh; see docs/kubernetes.md)")
    try:
        backend = connect()
    except KubernetesError as exc:
        return f"KUBECONFIG cannot be used: {exc}"
    try:
        backend.list_faults()
    except KubernetesError as exc:
        if exc.status == 404:
            return "Chaos Mesh is not installed: the networkchaos.chaos-mesh.org CRD is missing"
        return f"the cluster is not usable: {exc}"
    finally:
        backend.close()
    return None


@dataclass
class Workload:
    namespace: str
    app: str
    backend: KubernetesBackend
    core: Any
    custom: Any

    def running_pods(self) -> list[str]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"app={self.app}").items
        return sorted(p.metadata.name for p in pods
                      if p.status.phase == "Running" and not p.metadata.deletion_timestamp)


def wait_until(condition: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _deployment(namespace: str) -> dict[str, Any]:
    labels = {"app": APP}
    container = {"name": "pause", "image": "registry.k8s.io/pause:3.9"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": APP, "namespace": namespace, "labels": labels},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"terminationGracePeriodSeconds": 1,
                                       "containers": [container]}}},
    }


@pytest.fixture(scope="session")
def cluster_backend() -> Iterator[KubernetesBackend]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    backend = connect()
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="module")
def workload(cluster_backend: KubernetesBackend) -> Iterator[Workload]:
    from kubernetes import client

    api = cluster_backend.api_client
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    namespace = f"chaoslab-e2e-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        apps.create_namespaced_deployment(namespace, _deployment(namespace))
        work = Workload(namespace=namespace, app=APP, backend=cluster_backend, core=core, custom=custom)
        wait_until(lambda: len(work.running_pods()) == REPLICAS, timeout=READY_TIMEOUT_S,
                   what=f"{REPLICAS} running pods in {namespace}")
        yield work
    finally:
        try:
            cluster_backend.cleanup(namespace=namespace, timeout=60, force=True)
        finally:
            core.delete_namespace(namespace)
