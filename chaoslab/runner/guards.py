"""A step's guard alerts in the record, and a blocked baseline in words.

Guards that are pending, or firing but ignored, never halt; they are recorded all the
same (``StepResult.guards``), so nothing is hidden: :class:`GuardLog` keeps the first
sighting of each guard in each such state, before, during and after the fault.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from chaoslab.model import HypothesisCheck
from chaoslab.prometheus.guards import blocked_message
from chaoslab.watch import Condition


class GuardLog:
    """Guard checks worth recording, each (alert, state, ignored) once, in order seen.

    ``observe`` is called from the watcher thread and the main thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str | None, bool], HypothesisCheck] = {}

    def observe(self, checks: Sequence[HypothesisCheck]) -> None:
        with self._lock:
            for check in checks:
                if check.guard and check.state in ("pending", "firing"):
                    self._seen.setdefault((check.alert, check.state, check.ignored), check)

    def checks(self) -> tuple[HypothesisCheck, ...]:
        with self._lock:
            return tuple(self._seen.values())


def baseline_reason(conditions: Sequence[Condition], checks: Sequence[HypothesisCheck]) -> str:
    """Why the baseline is not met ("" when it is): the target's own SLO conditions
    first, then the other services', then firing guards with how to ignore one."""
    own: list[str] = []
    other: list[str] = []
    guards: list[HypothesisCheck] = []
    for condition, check in zip(conditions, checks, strict=True):
        if check.met:
            continue
        if condition.guard and not check.no_data:
            guards.append(check)
        else:
            (own if condition.target else other).append(f"{condition.label}: {check.reason}")
    parts = []
    if own:
        parts.append("; ".join(own))
    if other:
        parts.append(f"the system is not healthy before injection: {'; '.join(other)}")
    if guards:
        parts.append(blocked_message(guards))
    return "; ".join(parts)
