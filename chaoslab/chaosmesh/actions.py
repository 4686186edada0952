"""Chaos Toolkit actions for Chaos Mesh on Kubernetes: inject a fault, remove it.

Exported experiments (``chaoslab export --to chaostoolkit --target kubernetes``) call
these as python providers; ``chaoslab.sandbox.actions`` has the same signatures. The
fault request is the Chaos Mesh manifest itself. The run id comes from the
configuration key ``chaoslab_run_id``, else from a per-process id generated once, so
the inject and the rollback of one ``chaos run`` agree.

chaoslib imports this module while validating an experiment: the Kubernetes client
is imported on first call, not here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chaoslab.chaosmesh import guard
from chaoslab.chaosmesh.objects import check_manifest, handle_from_object, kind_of, labelled
from chaoslab.errors import CleanupError, InjectionError, InvalidInputError, KubernetesError
from chaoslab.halt import request_halt
from chaoslab.model import FaultHandle

if TYPE_CHECKING:
    from chaoslab.chaosmesh.backend import KubernetesBackend

logger = logging.getLogger(__name__)

RUN_ID_KEY = "chaoslab_run_id"
EXIT_REMOVE_TIMEOUT_S = 30.0
_PROCESS_RUN_ID: list[str] = []  # generated once per process; see the module docstring


def process_run_id() -> str:
    """This process's run id, e.g. ``20261127T101500Z-3f2a``."""
    if not _PROCESS_RUN_ID:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        _PROCESS_RUN_ID.append(f"{stamp}-{os.urandom(2).hex()}")
    return _PROCESS_RUN_ID[0]


def current_run_id(configuration: Mapping[str, Any] | None) -> str:
    configured = (configuration or {}).get(RUN_ID_KEY)
    return str(configured) if configured else process_run_id()


def _connect(secrets: Mapping[str, Any] | None) -> KubernetesBackend:
    from chaoslab.chaosmesh.backend import connect

    return connect(secrets=secrets)


def _key(handle: FaultHandle) -> guard.Key:
    return (handle.kind.value, handle.namespace, handle.experiment or "", handle.name)


def _remove_now(backend: KubernetesBackend, handle: FaultHandle) -> None:
    """Best effort while an exception is on its way out; the exit hook retries on failure."""
    try:
        with guard.shielded():
            backend.remove(handle, timeout=EXIT_REMOVE_TIMEOUT_S)
        guard.untrack(_key(handle))
    except Exception as exc:  # the original exception matters more; this one is logged
        logger.error("could not remove %s after an interrupted injection: %s", handle.ref, exc)


def inject_fault(manifest: dict[str, Any], timeout: float = 30, configuration: dict[str, Any] | None = None,
                 secrets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Preflight the selector, create the object labelled with the run id, and wait until
    Chaos Mesh reports it injected. A fault that fails or times out is removed again, and
    the failure requests a halt so that the hold that follows ends at once."""
    guard.exit_on_sigterm()
    try:
        return _inject(check_manifest(manifest), run_id=current_run_id(configuration),
                       timeout=float(timeout), secrets=secrets)
    except Exception as exc:
        # chaoslib goes on with the method after a failed action: end the hold at once.
        request_halt(f"injection failed: {exc}")
        raise


def _inject(body: dict[str, Any], *, run_id: str, timeout: float,
            secrets: Mapping[str, Any] | None) -> dict[str, Any]:
    backend = _connect(secrets)
    preflight = backend.preflight_manifest(body)
    # The name is known before the create: whatever interrupts it, that is what to remove.
    planned = handle_from_object(labelled(body, run_id=run_id))
    handle: FaultHandle | None = None
    try:
        with guard.deferred():
            guard.track(_key(planned), lambda: backend.remove(planned, timeout=EXIT_REMOVE_TIMEOUT_S))
            handle = backend.create(body, run_id=run_id)
        progress = backend.confirm_injected(handle, timeout=timeout)
    except InjectionError:
        guard.untrack(_key(planned))  # confirm_injected removed it
        raise
    except CleanupError:
        raise  # it may remain: the exit hook tries once more
    except KubernetesError as exc:
        if handle is None and exc.status is not None and exc.status < 500:
            guard.untrack(_key(planned))  # the API server refused the create: nothing to remove
        else:
            _remove_now(backend, handle or planned)  # no answer, or a timeout: it may exist
        raise
    except BaseException:
        _remove_now(backend, handle or planned)
        raise
    return {"kind": handle.kind.value, "name": handle.name, "namespace": handle.namespace, "run_id": run_id,
            "experiment": handle.experiment, "pods": list(progress.pods or preflight.matched),
            "will_hit": preflight.will_hit, "injected_at": datetime.now(UTC).isoformat(),
            "failed_attempts": list(progress.failures)}


def remove_fault(kind: str, namespace: str, experiment: str, timeout: float = 60,
                 configuration: dict[str, Any] | None = None,
                 secrets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Remove every ``kind`` object in ``namespace`` of this run and experiment, and wait until
    Chaos Mesh recovered them. Nothing there (already gone) is success."""
    run_id = current_run_id(configuration)
    try:
        chaos_kind = kind_of(kind)
    except ValueError as exc:
        raise InvalidInputError(None, "kind", str(exc)) from exc
    backend = _connect(secrets)
    try:
        with guard.shielded():
            removed = backend.cleanup(run_id=run_id, namespace=namespace, experiment=experiment,
                                      kind=chaos_kind, timeout=float(timeout))
    finally:
        # Reported either way: a stuck object is the user's to handle (chaoslab cleanup --force).
        guard.untrack_where(lambda key: key[:3] == (chaos_kind.value, namespace, experiment))
        backend.close()
    logger.info("removed %d %s object(s) of %s in %s", len(removed), chaos_kind.value, experiment, namespace)
    return {"kind": chaos_kind.value, "namespace": namespace, "experiment": experiment, "run_id": run_id,
            "removed": [h.name for h in removed]}
