"""The runner's latest answers for its Chaos Toolkit probes, so no check is done twice.

The runner judges every halt condition right before the step (the baseline) and the
watcher judges them again every interval while the fault is in place. The step's Chaos
Toolkit hypothesis asks the same questions of the same Prometheus at nearly the same
moments (before the method, and with the fault in place). A probe whose alert was judged
less than ``max_age`` seconds ago answers from that judgement instead of three more
requests; an older one, or one of another Prometheus, asks Prometheus as before. The
hypothesis's guard probe likewise answers from the guards' latest checks when every one
of its alerts was judged that recently with the same ``guards.ignore`` (the same
``judge_guard`` over the same alerts answer), instead of asking for every alert again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from chaoslab.model import AlertFilter, HypothesisCheck
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
        self._guards: dict[str, tuple[float, HypothesisCheck, tuple[AlertFilter, ...]]] = {}

    def update(self, conditions: Sequence[Condition], checks: Sequence[HypothesisCheck]) -> None:
        """Remember an evaluation (the baseline's, or a watcher tick's)."""
        now = time.monotonic()
        with self._lock:
            for condition, check in zip(conditions, checks, strict=True):
                self._checks[(condition.alert, condition.expr)] = (now, check)
                if condition.guard:
                    self._guards[condition.alert] = (now, check, condition.ignore)

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

    def guards(
        self, url: str, alerts: Sequence[str], ignore: Sequence[AlertFilter]
    ) -> list[HypothesisCheck] | None:
        """The guard probe's answer: each of ``alerts``' checks, when every one is younger
        than ``max_age``, has data and was judged with ``ignore``; else None."""
        if url.rstrip("/") != self.url:
            return None
        now = time.monotonic()
        found = []
        with self._lock:
            for alert in dict.fromkeys(alerts):
                seen = self._guards.get(alert)
                if seen is None:
                    return None
                at, check, judged_with = seen
                if now - at > self.max_age or check.no_data or judged_with != tuple(ignore):
                    return None
                found.append(check)
            self.reused += 1
        return found
