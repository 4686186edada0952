"""Chaos Toolkit activities that go through the run's own ports (the ``port`` target):
inject and remove a step's fault through its ``ChaosBackend``, and check alerts through
its ``MetricsSource``. For backends other than Chaos Mesh and the sandbox, such as one a
Python user brings to ``chaoslab.run`` or the in-memory ones of the tests.

They only work inside a chaoslab run, where the runner's control holds the step session
(backend, request, watcher); an exported experiment uses a real target."""

from __future__ import annotations

import logging
from typing import Any

from chaoslab.errors import CleanupError
from chaoslab.halt import request_halt
from chaoslab.model import FaultRequest
from chaoslab.ports import ChaosBackend
from chaoslab.prometheus.hypothesis import PROBE_MODULE
from chaoslab.prometheus.probes import check_alert
from chaoslab.runner.control import current_session

logger = logging.getLogger(__name__)


def _port() -> tuple[ChaosBackend, FaultRequest]:
    """The run's backend and the step's request, from the active step session."""
    session = current_session()
    if session is None or session.backend is None or session.request is None:
        from chaoslib.exceptions import ActivityFailed

        raise ActivityFailed("the port target works only inside a chaoslab run")
    return session.backend, session.request


def through_port(experiment: dict[str, Any]) -> dict[str, Any]:
    """``experiment`` with its hypothesis probes asking the run's metrics source (the
    same check as ``alert_quiet`` of chaoslab.prometheus.probes, without HTTP)."""
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    for probe in hypothesis.get("probes") or []:
        provider = probe.get("provider") or {}
        if provider.get("module") == PROBE_MODULE:
            provider["module"] = __name__
    return experiment


def alert_quiet(alert: str, expr: str, configuration: dict[str, Any] | None = None,
                secrets: dict[str, Any] | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """Chaos Toolkit probe: is ``alert`` quiet now, by the run's metrics source."""
    session = current_session()
    if session is None:
        from chaoslib.exceptions import ActivityFailed

        raise ActivityFailed("the port target works only inside a chaoslab run")
    # Prometheus trouble is a check that is not met, never an exception.
    return check_alert(session.watcher.metrics, alert=alert, expr=expr).as_output()


def inject_fault(manifest: dict[str, Any], timeout: float = 30, configuration: dict[str, Any] | None = None,
                 secrets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply the step's fault through the backend and wait until it took hold. A failure
    requests a halt so that the hold that follows ends at once."""
    backend, request = _port()
    try:
        preflight = backend.preflight(request)
        handle = backend.apply(request)
        backend.wait_injected(handle, timeout=float(timeout))
    except Exception as exc:
        request_halt(f"injection failed: {exc}")
        raise
    return {"kind": handle.kind.value, "name": handle.name, "namespace": handle.namespace,
            "run_id": handle.run_id, "experiment": handle.experiment, "pods": list(preflight.matched),
            "will_hit": preflight.will_hit}


def remove_fault(kind: str, namespace: str, experiment: str, timeout: float = 60,
                 configuration: dict[str, Any] | None = None,
                 secrets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Remove every fault of this run and experiment; nothing there is success."""
    backend, request = _port()
    run_id = request.run_id
    handles = [h for h in backend.list_faults(run_id=run_id, namespace=namespace)
               if h.experiment in (None, experiment) and h.kind.value == kind]
    failed: list[str] = []
    for handle in handles:
        try:
            backend.remove(handle, timeout=float(timeout))
        except CleanupError as exc:
            failed.extend(exc.remaining or (handle.ref,))
    if failed:
        raise CleanupError(f"cannot remove {', '.join(failed)}", remaining=tuple(failed))
    logger.info("removed %d fault(s) of %s through the %s backend", len(handles), experiment, backend.name)
    return {"kind": kind, "namespace": namespace, "experiment": experiment, "run_id": run_id,
            "removed": [h.name for h in handles]}
