"""The runner's latest answers for its Chaos Toolkit probes, so no check is done twice.

The runner judges every halt condition right before the step (the baseline) and the
watcher judges them again every interval while the fault is in place. The step's Chaos
Toolkit hypothesis asks the same questions of the same Prometheus at nearly the same
moments (before the method, and with the fault in place). A probe whose alert was judged
less than ``max_age`` seconds ago answers from that judgement instead of three more
requests; an older one, or one of another Prometheus, asks Prometheus as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from chaoslab.model import HypothesisCheck
from chaoslab.prometheus.hypothesis import comparison
from chaoslab.prometheus.probes import AlertCheck
from chaoslab.watch import Condition

logger = logging.getLogger(__name__)


class RecentChecks:
    """The latest check of each (alert, expression), with when it was made."""

    def __init__(self, *, url: str, max_age: float) -> None:
        self.url = url.rstrip("/")
        self.max_age = max_age
        self.reused = 0
        self._lock = threading.Lock()
        self._checks: dict[tuple[str, str], tuple[float, HypothesisCheck]] = {}

    def update(self, conditions: Sequence[Condition], checks: Sequence[HypothesisCheck]) -> None:
        """Remember an evaluation (the baseline's, or a watcher tick's)."""
        now = time.monotonic()
        with self._lock:
            for condition, check in zip(conditions, checks, strict=True):
                self._checks[(condition.alert, condition.expr)] = (now, check)

    def lookup(self, url: str, alert: str, expr: str) -> AlertCheck | None:
        """A probe's answer from a check younger than ``max_age``, or None."""
        if url.rstrip("/") != self.url:
            return None
        with self._lock:
            found = self._checks.get((alert, expr))
        if found is None or time.monotonic() - found[0] > self.max_age or found[1].no_data:
            return None  # no data is asked again: a probe reports Prometheus' own answer
        check = found[1]
        cmp = comparison(expr)
        with self._lock:
            self.reused += 1
        return AlertCheck(
            alert=alert, state=check.state or "unknown", condition_true=check.condition_true,
            value=check.value, threshold=check.threshold, margin=check.margin, met=check.met,
            reason=check.reason, op=cmp.op if cmp else None,
        )
