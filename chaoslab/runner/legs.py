"""The fast legs of multi-window alerts around a step: already breached before injection
(``hot_fast_legs``), and after a halt on one of them (``leg_halt``): which leg, at what
value, and what the full alert still needed.

Before injection: the baseline checks the whole alerts, and their fast legs as well. A fast
leg may still be past its threshold when its alert is quiet (a short window remembers an
earlier outage, such as the previous step's, for its whole length); injecting then would
halt at once, on a breach the fault did not cause.

Read once, after the fault is gone, with instant queries at the detection time: the value of
each fast leg (the one furthest past its threshold halted), and of the other legs of its
conjunction at the detection and ``PACE_SPAN_S`` seconds before it. How long the full alert
would still have taken is estimated from how fast those legs were rising then
(``chaoslab.prometheus.burnrate.seconds_until``, explained in docs/hypotheses.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from chaoslab.errors import PrometheusError
from chaoslab.model import HypothesisCheck, LegHalt, LegReading
from chaoslab.ports import MetricsSource
from chaoslab.prometheus.burnrate import Conjunction, Leg, seconds_until
from chaoslab.watch import BREACH_CONDITION, Breach, Condition

logger = logging.getLogger(__name__)

PACE_SPAN_S = 5.0  # how far back the pace of a slow leg is measured (at most: not before the step)


def fast_legs(conditions: Sequence[Condition]) -> list[Condition]:
    """The fast legs of the multi-window alerts among ``conditions``, to be checked with them."""
    return [c.during_fault() for c in conditions if c.burn is not None]


def hot_fast_legs(fast: Sequence[Condition], checks: Sequence[HypothesisCheck]) -> str | None:
    """Why the step must not inject: the fast legs already breached (or not evaluable), in
    words, from their ``checks``; None when every fast leg is quiet (or there are none)."""
    hot = [f"{c.label}: {check.reason}" for c, check in zip(fast, checks, strict=True) if not check.met]
    if not hot:
        return None
    return "the fast legs of multi-window alerts are already past their thresholds: " + "; ".join(hot)


def leg_halt(metrics: MetricsSource, breach: Breach | None, *, since: datetime) -> LegHalt | None:
    """The fast leg that halted ``breach`` and what the full alert needed; None when the
    halt did not come from a fast leg or Prometheus cannot say any more."""
    condition = breach.condition if breach is not None else None
    if breach is None or condition is None or breach.kind != BREACH_CONDITION:
        return None
    if not condition.fast or condition.burn is None:
        return None
    at = breach.detected_at
    try:
        return _read(metrics, alert=condition.alert, conjunctions=condition.burn.conjunctions,
                     at=at, span=max(0.0, min(PACE_SPAN_S, (at - since).total_seconds())))
    except PrometheusError as exc:
        logger.warning("cannot read the legs of %s after the halt: %s", condition.alert, exc)
        return None


def _read(
    metrics: MetricsSource, *, alert: str, conjunctions: Sequence[Conjunction], at: datetime, span: float
) -> LegHalt | None:
    fast = [(c, _value(metrics, c.fast, at=at)) for c in conjunctions]
    breached = [(c, v) for c, v in fast if v is not None and _past(c.fast, v)]
    if not breached:
        return None
    conjunction, value = max(breached, key=lambda item: _excess(item[0].fast, item[1]))
    needs = []
    waits: list[float | None] = []
    for leg in conjunction.slow:
        now = _value(metrics, leg, at=at)
        needs.append(_reading(leg, now))
        earlier = _value(metrics, leg, at=at - timedelta(seconds=span)) if span > 0 else None
        if now is None or earlier is None:
            waits.append(None)
            continue
        waits.append(seconds_until(threshold=leg.threshold, value=now, earlier=earlier, span_s=span,
                                   op=leg.op))
    more = None if any(w is None for w in waits) else max((w for w in waits if w is not None), default=0.0)
    return LegHalt(alert=alert, leg=_reading(conjunction.fast, value), needs=tuple(needs), more_s=more)


def _value(metrics: MetricsSource, leg: Leg, *, at: datetime) -> float | None:
    """The leg's ratio at ``at``: of several series, the one nearest or furthest past the threshold."""
    numbers = [s.value for s in metrics.query(leg.ratio, at=at) if not math.isnan(s.value)]
    if not numbers:
        return None
    return max(numbers) if leg.op in (">", ">=") else min(numbers)


def _past(leg: Leg, value: float) -> bool:
    return {">": value > leg.threshold, ">=": value >= leg.threshold,
            "<": value < leg.threshold, "<=": value <= leg.threshold}[leg.op]


def _excess(leg: Leg, value: float) -> float:
    """How far past its threshold, relative to it (legs of different thresholds compare)."""
    scale = abs(leg.threshold) or 1.0
    return (value - leg.threshold if leg.op in (">", ">=") else leg.threshold - value) / scale


def _reading(leg: Leg, value: float | None) -> LegReading:
    return LegReading(window=leg.window, ratio=leg.ratio, op=leg.op, threshold=leg.threshold, value=value)
