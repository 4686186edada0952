"""Chaos Toolkit python providers for the sandbox, with the same signatures as
``chaoslab.chaosmesh.actions`` so an exported experiment runs on either target.

Configuration keys: ``chaoslab_run_id`` (else one id per process, so the inject
and the rollback of one ``chaos run`` agree) and ``chaoslab_sandbox_dir`` (else
the default state directory).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoslab.chaosmesh.objects import labelled
from chaoslab.model import EXPERIMENT_LABEL
from chaoslab.sandbox.backend import SandboxBackend
from chaoslab.sandbox.manifest import parse_manifest
from chaoslab.sandbox.state import load_state

logger = logging.getLogger(__name__)

# One run id per process unless configured: see the module docstring.
_PROCESS_RUN_ID: list[str] = []


def process_run_id() -> str:
    """``20261127T101500Z-3f2a``: generated once per process."""
    if not _PROCESS_RUN_ID:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        _PROCESS_RUN_ID.append(f"{stamp}-{os.urandom(2).hex()}")
    return _PROCESS_RUN_ID[0]


def _run_id(configuration: dict[str, Any] | None) -> str:
    configured = (configuration or {}).get("chaoslab_run_id")
    return str(configured) if configured else process_run_id()


def _state_dir(configuration: dict[str, Any] | None) -> Path | None:
    configured = (configuration or {}).get("chaoslab_sandbox_dir")
    return Path(configured) if configured else None


def inject_fault(
    manifest: dict[str, Any], timeout: float = 30, configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Preflight, create the fault labelled with the run id, and wait until it took hold."""
    run_id = _run_id(configuration)
    obj = parse_manifest(manifest)  # refuses bad input with its field path
    body = labelled({**manifest, "metadata": {**manifest["metadata"], "namespace": obj.namespace}},
                    run_id=run_id)
    backend = SandboxBackend(state_dir=_state_dir(configuration))
    backend.preflight_manifest(body)
    handle = backend.apply_manifest(body)
    backend.wait_injected(handle, timeout=float(timeout))
    record = backend.fault(handle) or {}
    logger.info("injected %s into %s", handle.ref, ", ".join(record.get("pods", [])))
    return {"kind": handle.kind.value, "name": handle.name, "namespace": handle.namespace, "run_id": run_id,
            "experiment": body["metadata"]["labels"][EXPERIMENT_LABEL], "pods": record.get("pods", []),
            "injected_at": record.get("created_at"), "until": record.get("until"), "target": "sandbox"}


def remove_fault(
    kind: str, namespace: str, experiment: str, timeout: float = 60,
    configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Remove every ``kind`` object of this experiment and run in ``namespace``; already gone is success."""
    run_id = _run_id(configuration)
    result: dict[str, Any] = {"kind": kind, "namespace": namespace, "experiment": experiment,
                              "run_id": run_id, "removed": []}
    state = load_state(_state_dir(configuration))
    if state is None:
        # The supervisor holds every fault: with no sandbox running, none can remain.
        result["reason"] = "no sandbox running"
        return result
    backend = SandboxBackend(state)
    for handle in backend.list_faults(run_id=run_id, namespace=namespace):
        if handle.kind.value == kind and handle.experiment == experiment:
            backend.remove(handle, timeout=float(timeout))
            result["removed"].append(handle.name)
    return result
