"""Chaos Toolkit probes for Chaos Mesh on Kubernetes: is the fault in place, what is its
status, how many chaoslab objects exist.

Like the actions, the run id comes from the configuration key ``chaoslab_run_id`` or
the per-process id, and the Kubernetes client is imported on first call.
"""

from __future__ import annotations

from typing import Any

from chaoslab.chaosmesh.actions import _connect, current_run_id
from chaoslab.chaosmesh.objects import PAUSE_ANNOTATION, conditions, injection_progress, kind_of


def fault_status(kind: str, namespace: str, experiment: str, configuration: dict[str, Any] | None = None,
                 secrets: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One entry per object of this run and experiment: name, phase, message, pods, paused."""
    backend = _connect(secrets)
    try:
        objects = backend.fault_objects(run_id=current_run_id(configuration), namespace=namespace,
                                        experiment=experiment, kinds=(kind_of(kind),))
    finally:
        backend.close()
    out = []
    for obj in objects:
        progress = injection_progress(obj)
        meta = obj.get("metadata") or {}
        out.append({"name": meta.get("name"), "phase": progress.phase.value, "message": progress.message,
                    "pods": list(progress.pods), "deleting": bool(meta.get("deletionTimestamp")),
                    "paused": (meta.get("annotations") or {}).get(PAUSE_ANNOTATION) == "true",
                    "all_injected": conditions(obj).get("AllInjected", {}).get("status") == "True"})
    return out


def fault_injected(kind: str, namespace: str, experiment: str, configuration: dict[str, Any] | None = None,
                   secrets: dict[str, Any] | None = None) -> bool:
    """True when this run's fault exists and Chaos Mesh reports it injected right now."""
    status = fault_status(kind, namespace, experiment, configuration=configuration, secrets=secrets)
    return bool(status) and all(s["all_injected"] and not s["paused"] for s in status)


def chaoslab_faults_count(namespace: str | None = None, run_id: str | None = None,
                          configuration: dict[str, Any] | None = None,
                          secrets: dict[str, Any] | None = None) -> int:
    """How many chaos objects carry chaoslab's label (of any run, unless ``run_id``)."""
    backend = _connect(secrets)
    try:
        return len(backend.list_faults(run_id=run_id, namespace=namespace))
    finally:
        backend.close()
