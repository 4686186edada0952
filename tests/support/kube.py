"""Fixtures for the fake Kubernetes cluster: the API server, the Chaos Mesh emulator,
a kubeconfig pointing at them, and Chaos Mesh manifests written as plain dicts.

Import the fixtures explicitly (``kube``, ``kubeconfig``, ``backend``), by their function names:
``from tests.support.kube import backend_fixture, kube_fixture, kubeconfig_fixture  # noqa: F401``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaoslab.chaosmesh.backend import KubernetesBackend, connect
from tests.fakes.chaos_mesh import CHAOS, ChaosMeshEmulator
from tests.fakes.kube_api import FakeKubeServer, write_kubeconfig
from tests.fakes.kube_store import Obj, Store

SHOP_SERVICES = ("frontend", "catalog", "recommendation", "cart", "payment")
RUN_ID = "20261127T101500Z-3f2a"


@dataclass
class FakeCluster:
    server: FakeKubeServer
    emulator: ChaosMeshEmulator

    @property
    def store(self) -> Store:
        return self.server.store

    @property
    def url(self) -> str:
        return self.server.url

    def chaos_objects(self) -> list[Obj]:
        return self.store.all_of(CHAOS)

    def chaos_names(self) -> list[str]:
        return sorted(o["metadata"]["name"] for o in self.chaos_objects())


def wait_for(condition: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` until truthy, failing the test past ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_cluster(*, pods_per_service: int = 2) -> FakeCluster:
    server = FakeKubeServer().start()
    emulator = ChaosMeshEmulator(server.store).start()
    for service in SHOP_SERVICES:
        for i in range(pods_per_service):
            server.store.add_pod("shop", f"{service}-7d4b9-{i:05d}", labels={"app": service})
    server.store.add_namespace("bank")
    server.store.add_namespace("monitoring")
    return FakeCluster(server, emulator)


def stop_cluster(cluster: FakeCluster) -> None:
    cluster.emulator.stop()
    cluster.server.stop()


@pytest.fixture(name="kube")
def kube_fixture() -> Iterator[FakeCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(name="kubeconfig")
def kubeconfig_fixture(kube: FakeCluster, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path, kube.url)


@pytest.fixture(name="backend")
def backend_fixture(kubeconfig: Path) -> Iterator[KubernetesBackend]:
    instance = connect(kubeconfig=str(kubeconfig))
    try:
        yield instance
    finally:
        instance.close()


def network_delay(*, name: str = "payment-delay", namespace: str = "shop", app: str = "payment",
                  duration: str | None = "60s", mode: str = "all", value: str | None = None,
                  experiment: str | None = None, **spec: Any) -> Obj:
    """A NetworkChaos delay manifest as ``build_manifest`` emits it (before the run id)."""
    body: dict[str, Any] = {"action": "delay", "mode": mode,
                            "selector": {"namespaces": [namespace], "labelSelectors": {"app": app}},
                            "delay": {"latency": "200ms"}, "direction": "to"}
    if value is not None:
        body["value"] = value
    if duration is not None:
        body["duration"] = duration
    body.update(spec)
    return {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "chaoslab",
                                    "chaoslab.io/experiment": experiment or name}},
            "spec": body}


def pod_kill(*, name: str = "catalog-kill", namespace: str = "shop", app: str = "catalog",
             mode: str = "one", experiment: str | None = None) -> Obj:
    return {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "chaoslab",
                                    "chaoslab.io/experiment": experiment or name}},
            "spec": {"action": "pod-kill", "mode": mode,
                     "selector": {"namespaces": [namespace], "labelSelectors": {"app": app}}}}
