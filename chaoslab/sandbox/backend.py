"""``SandboxBackend``: the ``ChaosBackend`` port for the local sandbox.

It speaks to the supervisor's control API and resolves selectors with the same
code as the Kubernetes backend (``chaoslab.chaosmesh.selection``). Faults travel
as Chaos Mesh manifests, exactly the objects a cluster would receive.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from chaoslab.chaosmesh.objects import labelled
from chaoslab.chaosmesh.selection import PodInfo, count_for_mode, running, select_pods
from chaoslab.errors import BackendError, CleanupError, InjectionError, PreflightError
from chaoslab.model import (
    EXPERIMENT_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RUN_ID_LABEL,
    ChaosKind,
    FaultHandle,
    FaultRequest,
    PodState,
    PreflightResult,
)
from chaoslab.sandbox.control import ControlClient
from chaoslab.sandbox.manifest import ChaosObject, parse_manifest
from chaoslab.sandbox.state import SandboxState, load_state, resolve_state_dir

logger = logging.getLogger(__name__)

POLL_S = 0.1


def _handle(record: Mapping[str, Any]) -> FaultHandle:
    labels = record.get("labels") or {}
    created = record.get("created_at")
    return FaultHandle(kind=ChaosKind(record["kind"]), name=record["name"], namespace=record["namespace"],
                       run_id=labels.get(RUN_ID_LABEL), experiment=labels.get(EXPERIMENT_LABEL),
                       created_at=datetime.fromisoformat(created) if created else None)


def _pod_info(pod: Mapping[str, Any]) -> PodInfo:
    return PodInfo(name=pod["name"], namespace=pod["namespace"], labels=pod["labels"], phase=pod["phase"],
                   node="sandbox", node_labels={"kubernetes.io/hostname": "sandbox"})


def _pod_state(pod: Mapping[str, Any]) -> PodState:
    reason = ""
    if pod.get("stopped"):
        reason = "its process is stopped (pod-failure)"
    elif not pod["ready"]:
        reason = "readiness probe failing" if pod["phase"] == "Running" else "starting, never ready yet"
    return PodState(name=pod["name"], namespace=pod["namespace"], phase=pod["phase"],
                    ready=bool(pod["ready"]), restarts=int(pod.get("restarts") or 0), reason=reason)


class SandboxBackend:
    """Faults on the local sandbox. Construct it with a state, or let it find the running sandbox."""

    name = "sandbox"

    def __init__(self, state: SandboxState | None = None, *, state_dir: Path | None = None,
                 timeout_s: float = 10.0) -> None:
        found = state or load_state(state_dir)
        if found is None:
            raise BackendError(f"no sandbox is running in {resolve_state_dir(state_dir)}: "
                               "start one with `chaoslab sandbox up`")
        self.state = found
        self.client = ControlClient(found.control_url, timeout_s=timeout_s)

    # --- views ------------------------------------------------------------------------

    def pods(self) -> list[dict[str, Any]]:
        """Every pod: name, service, labels, pid, ready, restarts, phase, address (its proxy), metrics."""
        return self.client.pods()

    def status(self) -> dict[str, Any]:
        return self.client.status()

    def fault(self, handle: FaultHandle) -> dict[str, Any] | None:
        """The fault object as the supervisor holds it (phase, pods, stats), None if gone."""
        return self.client.get(handle.kind.value, handle.namespace, handle.name)

    # --- manifests (the Chaos Toolkit boundary) ------------------------------------------

    def preflight_manifest(self, manifest: Mapping[str, Any]) -> PreflightResult:
        obj = parse_manifest(dict(manifest))
        return self._preflight(obj)

    def _preflight(self, obj: ChaosObject) -> PreflightResult:
        pods = running([_pod_info(p) for p in self.pods()])
        matched = select_pods(obj.selector, pods, default_namespace=obj.namespace)
        description = f"{obj.kind.value} {obj.name}: {obj.selector.describe()} in {obj.namespace}"
        if not matched:
            raise PreflightError(f"no running pod matches {obj.selector.describe()} in {obj.namespace} "
                                 f"(sandbox {self.state.state_dir})")
        will_hit = count_for_mode(obj.fault.mode, obj.fault.value, len(matched))
        return PreflightResult(matched=tuple(p.ref for p in matched), will_hit=will_hit,
                               description=description)

    def apply_manifest(self, manifest: Mapping[str, Any]) -> FaultHandle:
        parse_manifest(dict(manifest))  # refuse bad input here, with its field path
        return _handle(self.client.create(dict(manifest)))

    # --- the port ------------------------------------------------------------------------

    @staticmethod
    def manifest_for(request: FaultRequest) -> dict[str, Any]:
        """The object a cluster would get for ``request``: built, named and labelled the same way."""
        from chaoslab.chaosmesh.manifest import build_manifest

        manifest = build_manifest(name=request.step, service=request.service, fault=request.fault,
                                  experiment=request.experiment, run_id=request.run_id, step=request.step)
        return labelled(manifest, run_id=request.run_id)

    def preflight(self, request: FaultRequest) -> PreflightResult:
        return self.preflight_manifest(self.manifest_for(request))

    def apply(self, request: FaultRequest) -> FaultHandle:
        return self.apply_manifest(self.manifest_for(request))

    def pod_states(self, request: FaultRequest) -> list[PodState]:
        """The service's pods from the supervisor's pod table (pods being killed are not listed)."""
        pods = self.pods()
        chosen = {p.ref for p in select_pods(request.service.selector, [_pod_info(p) for p in pods],
                                             default_namespace=request.service.namespace)}
        return [_pod_state(p) for p in pods if f"{p['namespace']}/{p['name']}" in chosen]

    def wait_injected(self, handle: FaultHandle, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        reason = "not injected in time"
        while True:
            record = self.fault(handle)
            if record is None:
                raise InjectionError(f"{handle.ref} disappeared before it was injected")
            if record["injected"]:
                return
            if record["phase"] == "not-selected":
                reason = record["message"] or "no pod selected"
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        self.remove(handle, timeout=timeout)
        raise InjectionError(f"{handle.ref} did not take hold: {reason}; it was removed")

    def pause(self, handle: FaultHandle) -> None:
        if self.client.act(handle.kind.value, handle.namespace, handle.name, "pause") is None:
            raise BackendError(f"cannot pause {handle.ref}: not found")

    def resume(self, handle: FaultHandle) -> None:
        if self.client.act(handle.kind.value, handle.namespace, handle.name, "resume") is None:
            raise BackendError(f"cannot resume {handle.ref}: not found")

    def remove(self, handle: FaultHandle, *, timeout: float, force: bool = False) -> None:
        """Recover and delete; already gone is success. ``force`` changes nothing here:
        the supervisor never holds a fault back the way a finalizer can."""
        deadline = time.monotonic() + timeout
        try:
            self.client.delete(handle.kind.value, handle.namespace, handle.name)
            while self.fault(handle) is not None:
                if time.monotonic() >= deadline:
                    raise CleanupError(f"{handle.ref} still present after {timeout:g}s",
                                       remaining=(handle.ref,))
                time.sleep(POLL_S)
        except CleanupError:
            raise
        except BackendError as exc:
            if not self.state.running:
                # Faults live in the supervisor: with it gone, nothing of them remains.
                logger.info("sandbox is gone; %s went with it", handle.ref)
                return
            raise CleanupError(f"cannot remove {handle.ref}: {exc}", remaining=(handle.ref,)) from exc

    def list_faults(
        self, *, run_id: str | None = None, namespace: str | None = None
    ) -> Sequence[FaultHandle]:
        result = []
        for record in self.client.faults():
            labels = record.get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
                continue
            if run_id is not None and labels.get(RUN_ID_LABEL) != run_id:
                continue
            if namespace is not None and record["namespace"] != namespace:
                continue
            result.append(_handle(record))
        return result
