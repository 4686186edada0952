"""After the fault: when did the breach begin, and how long until the system held again."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chaoslab.errors import PrometheusError
from chaoslab.model import HypothesisCheck
from chaoslab.ports import MetricsSource
from chaoslab.watch import Condition, evaluate

logger = logging.getLogger(__name__)

# Finer than the 1 s scrape interval, so breach_at lies at most FINE_STEP_S after the
# sample that made the condition true: the halt latency measured from it is honest.
BREACH_STEP_S = 0.1
FINE_STEP_S = 0.01
MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovery:
    recovered: bool
    seconds: float | None
    checks: tuple[HypothesisCheck, ...]
    reason: str = ""
    no_data: bool = False


def breach_time(metrics: MetricsSource, expr: str, *, start: datetime, end: datetime) -> datetime | None:
    """The first instant in [start, end] where ``expr`` returned data (its condition held),
    from range queries; None when it cannot be found.

    A coarse pass over the whole span finds the first grid point where the condition held;
    a fine pass over the step before it narrows the instant to ``FINE_STEP_S``. Each grid
    ends exactly at ``end`` (the detection): a grid that straddled it could place the breach
    after the instant query that detected it."""
    span = max(0.0, (end - start).total_seconds())
    step = max(BREACH_STEP_S, span / MAX_POINTS)
    coarse = _first_true(metrics, expr, end=end, span=span, step=step)
    if coarse is None:
        return None
    fine = _first_true(metrics, expr, end=coarse, span=min(step, span), step=FINE_STEP_S)
    found = fine if fine is not None else coarse
    # Never after the detection: the last grid point is the detection itself, up to float rounding.
    return min(found, end)


def _first_true(
    metrics: MetricsSource, expr: str, *, end: datetime, span: float, step: float
) -> datetime | None:
    start = end - timedelta(seconds=math.ceil(span / step) * step)
    try:
        series = metrics.query_range(expr, start=start, end=end, step=step)
    except PrometheusError as exc:
        logger.warning("cannot find when the breach began: %s", exc)
        return None
    first = [item.points[0][0] for item in series if item.points]
    return datetime.fromtimestamp(min(first), tz=UTC) if first else None


class FirstCheck:
    """The first check after a removal, asked on a thread of its own from ``start`` on (the
    removal's own hook), while the runner finishes the step's experiment, writes its
    journal and asks the backend what remains; ``wait_for_recovery`` then takes its answers.

    One evaluation, bounded by the client's timeout: nothing to cancel when it goes unused."""

    def __init__(self, metrics: MetricsSource, conditions: Sequence[Condition]) -> None:
        self._metrics = metrics
        self._conditions = conditions
        self.since: datetime | None = None
        self._thread: threading.Thread | None = None
        self._answer: tuple[tuple[HypothesisCheck, ...], datetime] | None = None
        self._error: BaseException | None = None

    def start(self, since: datetime) -> None:
        """Check every condition now, for a removal at ``since`` (once: later calls do nothing)."""
        if self._thread is not None:
            return
        self.since = since
        self._thread = threading.Thread(target=self._check, name="chaoslab-recovery", daemon=True)
        self._thread.start()

    def _check(self) -> None:
        try:
            checks = evaluate(self._metrics, self._conditions)
            self._answer = (checks, datetime.now(UTC))
        except BaseException as exc:  # handed to the runner's thread, which asks again
            self._error = exc

    def answered(self) -> tuple[tuple[HypothesisCheck, ...], datetime] | None:
        """The checks and when they were answered (waiting for them); None when never
        started or when the check failed (``evaluate`` never raises for Prometheus trouble)."""
        if self._thread is None:
            return None
        self._thread.join()
        if self._error is not None:
            logger.warning("the first check after the removal failed: %s", self._error)
        return self._answer


def wait_for_recovery(
    metrics: MetricsSource,
    conditions: Sequence[Condition],
    *,
    since: datetime,
    timeout: float,
    interval: float,
    stop: threading.Event,
    first: FirstCheck | None = None,
) -> Recovery:
    """Poll every condition until all hold again, for at most ``timeout`` seconds after
    ``since`` (the removal). ``stop`` (a signal) ends the wait early, unrecovered. ``first``:
    the first check, asked already for this removal (used only when its ``since`` is this one)."""
    deadline = time.monotonic() + max(0.0, timeout - (datetime.now(UTC) - since).total_seconds())
    checks: tuple[HypothesisCheck, ...] = ()
    ahead = first.answered() if first is not None and first.since == since else None
    while True:
        if ahead is not None:
            (checks, answered), ahead = ahead, None
        else:
            checks = evaluate(metrics, conditions)
            answered = datetime.now(UTC)
        if all(c.met for c in checks):
            seconds = max(0.0, (answered - since).total_seconds())
            return Recovery(recovered=True, seconds=seconds, checks=checks)
        if stop.is_set():
            return Recovery(recovered=False, seconds=None, checks=checks,
                            reason="interrupted while recovering")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            failed = "; ".join(f"{c.alert}: {c.reason}" for c in checks if not c.met)
            no_data = all(c.no_data for c in checks if not c.met)
            return Recovery(recovered=False, seconds=None, checks=checks, no_data=no_data,
                            reason=f"hypothesis not met {timeout:g}s after removal: {failed}")
        stop.wait(min(interval, remaining))
