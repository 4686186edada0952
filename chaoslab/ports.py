"""The ports the orchestrator talks to: a chaos backend, a metrics source, and silences.

The orchestrator (plan, runner, pdca) never imports ``kubernetes`` or ``requests``;
it is handed objects that satisfy these protocols. Chaos Mesh on Kubernetes and
the local sandbox both implement ``ChaosBackend`` with the same selector and
mode semantics; Prometheus implements ``MetricsSource``; Alertmanager implements
``SilencePort``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from chaoslab.model import (
    AlertState,
    FaultHandle,
    FaultRequest,
    Matcher,
    PodState,
    PreflightResult,
    Sample,
    Series,
)


@runtime_checkable
class ChaosBackend(Protocol):
    """Injects and removes faults. Every method raises ``BackendError`` subclasses."""

    name: str

    def preflight(self, request: FaultRequest) -> PreflightResult:
        """Resolve the selector; raise ``PreflightError`` when no running pod matches."""
        ...

    def apply(self, request: FaultRequest) -> FaultHandle:
        """Create the fault object, labelled with the run id. Does not wait."""
        ...

    def wait_injected(self, handle: FaultHandle, *, timeout: float) -> None:
        """Block until the fault took hold; on failure remove it and raise ``InjectionError``."""
        ...

    def pause(self, handle: FaultHandle) -> None: ...

    def resume(self, handle: FaultHandle) -> None: ...

    def remove(self, handle: FaultHandle, *, timeout: float, force: bool = False) -> None:
        """Delete and wait until gone (already gone is success); ``CleanupError`` if stuck."""
        ...

    def list_faults(
        self, *, run_id: str | None = None, namespace: str | None = None
    ) -> Sequence[FaultHandle]:
        """Faults carrying chaoslab's managed-by label, optionally for one run."""
        ...

    def pod_states(self, request: FaultRequest) -> Sequence[PodState]:
        """Every pod the request's service selects (not those being deleted or completed),
        Running and Ready or not, with its restarts: the readiness part of the hypothesis."""
        ...


@runtime_checkable
class MetricsSource(Protocol):
    """Read-only access to alert states and PromQL. Raises ``PrometheusError``."""

    url: str

    def alerts(self) -> Sequence[AlertState]: ...

    def query(self, expr: str, *, at: datetime | None = None) -> Sequence[Sample]: ...

    def query_range(
        self, expr: str, *, start: datetime, end: datetime, step: float
    ) -> Sequence[Series]: ...


@runtime_checkable
class SilencePort(Protocol):
    """Silences that mute notifications (never alert evaluation). Raises ``AlertmanagerError``."""

    url: str

    def put(
        self, matchers: Sequence[Matcher], *, starts_at: datetime, ends_at: datetime, comment: str,
        silence_id: str | None = None,
    ) -> tuple[str, datetime]:
        """Create a silence created by chaoslab, or with ``silence_id`` update that one.
        Returns the id Alertmanager answers with (a new one when it could not update in
        place) and the ``startsAt`` it holds, which an update in place must repeat."""
        ...

    def expire(self, silence_id: str) -> None:
        """Expire the silence now; one already expired or gone is success."""
        ...
