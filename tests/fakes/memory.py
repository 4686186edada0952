"""The orchestrator's two ports in memory: a chaos backend whose faults are entries in a
dict, and a metrics source answering from scripted values. They stand in for Kubernetes
and Prometheus (external systems), not for chaoslab code, so the runner's logic (gates,
baselines, orphans, signals, cleanup failures, Prometheus errors) can be tested without
starting either. The real backends are exercised end to end in tests/integration."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from chaoslab.errors import CleanupError, PreflightError, PrometheusError
from chaoslab.model import (
    AlertRule,
    AlertState,
    ChaosKind,
    FaultHandle,
    FaultRequest,
    PodState,
    PreflightResult,
    Sample,
    Series,
)


class ScriptedMetrics:
    """Answers as Prometheus would: a comparison returns data only when it holds.

    ``values`` maps a service to the value of every expression that names it
    (``service="cart"``); ``down`` makes every call fail as an unreachable Prometheus."""

    url = "http://scripted"

    def __init__(self, *, loaded_rules: Sequence[AlertRule] = ()) -> None:
        self.values: dict[str, float] = {}
        self.states: list[AlertState] = []
        self.down = False
        self.queries = 0
        self.ranges: list[str] = []  # the range queries asked, in order
        self.loaded_rules = tuple(loaded_rules)
        self._lock = threading.Lock()

    def _value(self, expr: str) -> float:
        for service, value in self.values.items():
            if f'service="{service}"' in expr:
                return value
        return 0.0

    def _check_up(self) -> None:
        if self.down:
            raise PrometheusError("cannot reach Prometheus at http://scripted: connection refused")

    def alerts(self) -> Sequence[AlertState]:
        self._check_up()
        return list(self.states)

    def query(self, expr: str, *, at: datetime | None = None) -> Sequence[Sample]:
        with self._lock:
            self.queries += 1
        self._check_up()
        value = self._value(expr)
        if " > " in expr and value <= float(expr.rpartition(" > ")[2]):
            return []
        return [Sample(labels={}, value=value, timestamp=time.time())]

    def query_range(self, expr: str, *, start: datetime, end: datetime, step: float) -> Sequence[Series]:
        with self._lock:
            self.ranges.append(expr)
        self._check_up()
        return []

    def rules(self) -> Sequence[AlertRule]:
        """What Prometheus has loaded (``/api/v1/rules``)."""
        self._check_up()
        return self.loaded_rules


class MemoryBackend:
    """The ChaosBackend port in memory: faults are names in a dict.

    ``stuck`` names faults that cannot be removed (a finalizer that never goes);
    ``no_pods`` makes every preflight fail as a selector matching no running pod;
    ``on_apply`` and ``on_remove`` are how the system under test reacts (a test sets
    scripted metrics there, as a weakness would make them move)."""

    name = "memory"

    def __init__(self) -> None:
        self.faults: dict[str, FaultHandle] = {}
        self.stuck: set[str] = set()
        self.no_pods = False
        self.applied: list[str] = []
        self.removed: list[str] = []
        self.on_apply: Callable[[FaultHandle], None] = lambda handle: None
        self.on_remove: Callable[[FaultHandle], None] = lambda handle: None
        self._lock = threading.Lock()

    def add(self, name: str, run_id: str | None) -> None:
        with self._lock:
            self.faults[name] = FaultHandle(
                kind=ChaosKind.NETWORK_CHAOS, name=name, namespace="shop", run_id=run_id
            )

    def preflight(self, request: FaultRequest) -> PreflightResult:
        if self.no_pods:
            raise PreflightError(f"no running pod matches {request.service.selector.describe()}")
        return PreflightResult(matched=(f"shop/{request.service.name}-0",), will_hit=1)

    def pod_states(self, request: FaultRequest) -> list[PodState]:
        """The one pod of every service, Running and Ready (readiness always holds here)."""
        return [PodState(name=f"{request.service.name}-0", namespace="shop", phase="Running", ready=True)]

    def apply(self, request: FaultRequest) -> FaultHandle:
        handle = FaultHandle(kind=request.fault.kind, name=request.step, namespace=request.service.namespace,
                             run_id=request.run_id, experiment=request.experiment)
        with self._lock:
            self.faults[handle.name] = handle
            self.applied.append(handle.name)
        self.on_apply(handle)
        return handle

    def wait_injected(self, handle: FaultHandle, *, timeout: float) -> None:
        return None

    def pause(self, handle: FaultHandle) -> None:
        return None

    def resume(self, handle: FaultHandle) -> None:
        return None

    def remove(self, handle: FaultHandle, *, timeout: float, force: bool = False) -> None:
        with self._lock:
            if handle.name in self.stuck:
                raise CleanupError(f"{handle.ref} still present after {timeout:g}s", remaining=(handle.ref,))
            gone = self.faults.pop(handle.name, None)
            if gone is not None:
                self.removed.append(handle.name)
        if gone is not None:
            self.on_remove(gone)

    def list_faults(self, *, run_id: str | None = None, namespace: str | None = None) -> list[FaultHandle]:
        with self._lock:
            return [h for h in self.faults.values()
                    if run_id in (None, h.run_id) and namespace in (None, h.namespace)]
