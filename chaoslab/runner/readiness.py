"""Pod readiness as part of a step's hypothesis.

An SLO alert can stay quiet while the pods behind it never come back (a small service,
low traffic, a long ``for:``). So, when the game day or the experiment asks for it
(``readiness``, on by default), a step also checks its target's pods through the
backend: before injection every pod the selector matches is Running and Ready (else the
baseline is not met); after the removal as many pods are Running and Ready again within
the recovery timeout (else the step has deviated, naming the pods). Pods restarted or
replaced during the step are recorded either way.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from chaoslab.errors import BackendError
from chaoslab.model import FaultRequest, GameDay, PodReport, PodState, Step
from chaoslab.ports import ChaosBackend
from chaoslab.runner.outcome import Outcome

logger = logging.getLogger(__name__)

POLL_S = 1.0


def readiness_enabled(step: Step, gameday: GameDay) -> bool:
    """The experiment's ``readiness``, else the game day's (default true)."""
    own = step.experiment.readiness
    return gameday.readiness if own is None else own


def describe_pod(pod: PodState) -> str:
    """``shop/payment-1 is Running but not Ready (readiness probe failing)``."""
    state = "Running but not Ready" if pod.phase == "Running" else f"{pod.phase}, not Ready"
    return f"{pod.ref} is {state}" + (f" ({pod.reason})" if pod.reason else "")


def pods_before(backend: ChaosBackend, request: FaultRequest) -> tuple[PodReport, str | None]:
    """The target's pods before injection, and why the baseline is not met (None: it is).

    Raises BackendError when the backend cannot list them."""
    pods = tuple(backend.pod_states(request))
    idle = [describe_pod(p) for p in pods if not p.serving]
    if not pods:
        reason: str | None = f"no pod of {request.service.name} is running"
    else:
        reason = f"pods not Running and Ready before injection: {'; '.join(idle)}" if idle else None
    return PodReport(before=pods, reason=reason or ""), reason


def compare(before: Sequence[PodState], after: Sequence[PodState]) -> PodReport:
    """What changed between two views of the same pods: restarts, pods gone, pods new."""
    earlier = {p.ref: p for p in before}
    later = {p.ref: p for p in after}
    restarted = tuple(ref for ref, pod in later.items()
                      if ref in earlier and pod.restarts > earlier[ref].restarts)
    replaced = tuple(ref for ref in earlier if ref not in later)
    added = tuple(ref for ref in later if ref not in earlier)
    return PodReport(before=tuple(before), after=tuple(after), restarted=restarted, replaced=replaced,
                     added=added)


def _shortfall(report: PodReport) -> str:
    """Why fewer pods serve than before, naming them."""
    serving = sum(p.serving for p in report.after)
    parts = [describe_pod(p) for p in report.after if not p.serving]
    missing = len(report.before) - len(report.after)
    if missing > 0:
        parts += [f"{ref} is gone and not replaced" for ref in report.replaced][:missing]
    return f"{serving} of {len(report.before)} pods Running and Ready: {'; '.join(parts)}"


def wait_ready_again(
    backend: ChaosBackend,
    request: FaultRequest,
    *,
    before: PodReport,
    since: datetime,
    timeout: float,
    stop: threading.Event,
    interval: float = POLL_S,
) -> tuple[PodReport, bool]:
    """Poll until as many pods as before are Running and Ready, at most ``timeout`` seconds
    after ``since`` (the removal); always looks at least once. ``reason`` is empty when
    they are; ``ready_s`` is then the time since the removal. The flag is True when the
    pods could not be listed at the end (nothing can be said about them)."""
    deadline = time.monotonic() + max(0.0, timeout - (datetime.now(UTC) - since).total_seconds())
    wanted = len(before.before)
    last_error = ""
    report = dataclasses.replace(before, after=())
    while True:
        try:
            report = compare(before.before, backend.pod_states(request))
            last_error = ""
            if sum(p.serving for p in report.after) >= wanted:
                seconds = max(0.0, (datetime.now(UTC) - since).total_seconds())
                return dataclasses.replace(report, ready_s=seconds), False
        except BackendError as exc:
            logger.warning("cannot list the pods of %s: %s", request.service.name, exc)
            last_error = str(exc)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or stop.is_set():
            break
        stop.wait(min(interval, remaining))
    when = "interrupted" if stop.is_set() else f"{timeout:g}s after removal"
    why = f"cannot list the pods: {last_error}" if last_error else _shortfall(report)
    reason = f"pods not Running and Ready again ({when}): {why}"
    return dataclasses.replace(report, reason=reason), bool(last_error)


def baseline_pods(
    backend: ChaosBackend, step: Step, *, gameday: GameDay, request: FaultRequest
) -> tuple[PodReport | None, Outcome | None]:
    """The pods before injection (None when readiness is off) and, when the step must not
    go on, the outcome that says why."""
    if not readiness_enabled(step, gameday):
        return None, None
    try:
        report, reason = pods_before(backend, request)
    except BackendError as exc:
        return None, Outcome(ctk_error=f"cannot list the pods of {step.service.name}: {exc}")
    if reason is not None:
        return report, Outcome(baseline_met=False, baseline_reason=reason)
    logger.info("%s: %d pods Running and Ready", step.name, len(report.before))
    return report, None


def recovered_pods(
    backend: ChaosBackend,
    request: FaultRequest,
    outcome: Outcome,
    *,
    before: PodReport,
    since: datetime,
    timeout: float,
    stop: threading.Event,
) -> tuple[Outcome, PodReport]:
    """Wait for the pods after the removal and fold what was found into the outcome: fewer
    pods serving than before is a step that did not recover."""
    report, unobservable = wait_ready_again(backend, request, before=before, since=since, timeout=timeout,
                                            stop=stop)
    if not report.reason:
        seconds = outcome.recovery_s
        if outcome.recovered and seconds is not None and report.ready_s is not None:
            seconds = max(seconds, report.ready_s)
        return dataclasses.replace(outcome, recovery_s=seconds), report
    reason = "; ".join(r for r in (outcome.recovery_reason if outcome.recovered is False else "",
                                   report.reason) if r)
    return dataclasses.replace(
        outcome, recovered=False, recovery_reason=reason,
        recovery_no_data=unobservable and (outcome.recovered is not False or outcome.recovery_no_data),
    ), report
