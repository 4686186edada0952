"""Check: what Prometheus recorded around a fault, from range queries.

Per step that injected a fault: one range query that tells which of the halt conditions
held (all of them at once), one per SLI charted (the left-hand side of an alert's
condition: the step's own hypothesis and the alerts of every service whose SLO broke),
and one for the ``ALERTS`` series of those alerts. From shortly before the fault to
shortly after recovery, at the alert's evaluation interval (1 s
unless its group says otherwise), coarsened so no series has more than ``MAX_POINTS``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chaoslab.errors import PrometheusError
from chaoslab.model import Series
from chaoslab.pdca_model import Detection, EventKind, SliSeries, TimelineEvent
from chaoslab.ports import MetricsSource
from chaoslab.prometheus.hypothesis import Comparison

logger = logging.getLogger(__name__)

BEFORE_S = 15.0  # charted before the fault
AFTER_S = 5.0  # charted after recovery (never past now)
DEFAULT_STEP_S = 1.0
MAX_POINTS = 1000
_TAG = "chaoslab_condition"


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    start: datetime
    end: datetime
    step_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Charted:
    """An alert to chart: its SLI query and comparison (None when the condition is not a
    plain comparison: then the whole expression is queried and any point is a breach)."""

    alert: str
    service: str | None
    query: str
    comparison: Comparison | None
    for_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertTrace:
    """When an alert was pending and firing within a window (unix seconds)."""

    pending: tuple[float, ...] = ()
    firing: tuple[float, ...] = ()


def window_for(*, fault_start: datetime, last: datetime, interval_s: float | None,
               now: datetime | None = None) -> Window:
    start = fault_start - timedelta(seconds=BEFORE_S)
    end = min(last + timedelta(seconds=AFTER_S), now or datetime.now(UTC))
    end = max(end, start + timedelta(seconds=1))
    span = (end - start).total_seconds()
    step = max(interval_s or DEFAULT_STEP_S, span / MAX_POINTS)
    return Window(start=start, end=end, step_s=round(step, 3))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _merge(series: Sequence[Series], comparison: Comparison | None) -> tuple[tuple[float, float | None], ...]:
    """One point per timestamp; with several series, the worst value (nearest the breach)."""
    merged: dict[float, float | None] = {}
    for item in series:
        for ts, raw in item.points:
            value = _finite(raw)
            old = merged.get(ts)
            if old is None or (value is not None and _worse(value, old, comparison)):
                merged[ts] = value
    return tuple(sorted(merged.items()))


def _empty(charted: Charted, window: Window) -> SliSeries:
    comparison = charted.comparison
    return SliSeries(alert=charted.alert, service=charted.service, query=charted.query,
                     op=comparison.op if comparison else None,
                     threshold=comparison.threshold if comparison else None,
                     step_s=window.step_s, start=window.start, end=window.end)


def unanswered(charted: Charted, window: Window) -> SliSeries:
    """The series of an SLI not queried because Prometheus did not answer for this step."""
    return dataclasses.replace(_empty(charted, window), error="not queried: Prometheus did not answer")


def _worse(value: float, old: float, comparison: Comparison | None) -> bool:
    return comparison is not None and comparison.margin(value) < comparison.margin(old)


def sli_series(metrics: MetricsSource, charted: Charted, window: Window) -> SliSeries:
    comparison = charted.comparison
    base = _empty(charted, window)
    try:
        found = metrics.query_range(charted.query, start=window.start, end=window.end, step=window.step_s)
    except PrometheusError as exc:
        logger.warning("cannot chart %s: %s", charted.alert, exc)
        return dataclasses.replace(base, error=str(exc))
    return dataclasses.replace(base, points=_merge(found, comparison))


def breached(series: SliSeries, comparison: Comparison | None) -> list[tuple[float, float | None]]:
    """The points where the alert's condition held."""
    if comparison is None:
        return list(series.points)  # the whole condition was queried: a point is a breach
    return [(ts, v) for ts, v in series.points if v is not None and comparison.breached(v)]


def longest_breach_s(series: SliSeries, comparison: Comparison | None) -> float:
    """The longest run of consecutive breached points, in seconds."""
    hits = {ts for ts, _ in breached(series, comparison)}
    longest = run = 0
    for ts, _ in series.points:
        run = run + 1 if ts in hits else 0
        longest = max(longest, run)
    return longest * series.step_s


def worst_value(series: SliSeries, comparison: Comparison | None) -> float | None:
    values = [v for _, v in breached(series, comparison) if v is not None]
    if not values or comparison is None:
        return None
    return min(values, key=comparison.margin)


def conditions_held(
    metrics: MetricsSource, exprs: Sequence[str], window: Window
) -> dict[int, tuple[float, ...]] | None:
    """When each alert condition held (index → unix seconds), from ONE range query over all
    of them, however many the catalog has: each condition tagged with its index by
    ``label_replace`` and joined with ``or``. None when Prometheus could not answer."""
    if not exprs:
        return {}
    query = " or ".join(
        f'label_replace(({expr}), "{_TAG}", "{index}", "", "")' for index, expr in enumerate(exprs)
    )
    try:
        found = metrics.query_range(query, start=window.start, end=window.end, step=window.step_s)
    except PrometheusError as exc:
        logger.warning("cannot tell which alert conditions held: %s", exc)
        return None
    held: dict[int, set[float]] = {}
    for item in found:
        tag = item.labels.get(_TAG, "")
        if tag.isdigit():
            held.setdefault(int(tag), set()).update(ts for ts, _ in item.points)
    return {index: tuple(sorted(times)) for index, times in held.items()}


def alert_traces(
    metrics: MetricsSource, alerts: Sequence[str], window: Window
) -> dict[str, AlertTrace] | None:
    """Pending and firing instants of each alert from the ``ALERTS`` series (one range
    query for all of them). None when Prometheus could not answer."""
    names = sorted(set(alerts))
    if not names:
        return {}
    query = 'ALERTS{alertname=~"' + "|".join(names) + '"}'
    try:
        found = metrics.query_range(query, start=window.start, end=window.end, step=window.step_s)
    except PrometheusError as exc:
        logger.warning("cannot read the alerts' history: %s", exc)
        return None
    pending: dict[str, set[float]] = {n: set() for n in names}
    firing: dict[str, set[float]] = {n: set() for n in names}
    for item in found:
        name, state = item.labels.get("alertname", ""), item.labels.get("alertstate", "")
        target = pending if state == "pending" else firing if state == "firing" else None
        if target is not None and name in target:
            target[name].update(ts for ts, value in item.points if value == 1)
    return {n: AlertTrace(pending=tuple(sorted(pending[n])), firing=tuple(sorted(firing[n]))) for n in names}


def detection(charted: Charted, series: SliSeries, trace: AlertTrace | None, *,
              fallback_breach: datetime | None) -> Detection:
    """Did the alert notice: pending and firing measured from its own SLI's first breach
    (or the step's breach when its SLI never crossed), and the longest breach."""
    hits = breached(series, charted.comparison)
    first = hits[0][0] if hits else (fallback_breach.timestamp() if fallback_breach else None)
    trace = trace or AlertTrace()

    def after(instants: tuple[float, ...]) -> float | None:
        if first is None or not instants:
            return None
        return round(max(0.0, instants[0] - first), 3)

    return Detection(alert=charted.alert, service=charted.service, for_s=charted.for_s,
                     pending_after_s=after(trace.pending), firing_after_s=after(trace.firing),
                     sli_breached_s=longest_breach_s(series, charted.comparison),
                     noticed=bool(trace.pending or trace.firing))


def alert_events(
    charted: Sequence[Charted], traces: dict[str, AlertTrace], window: Window
) -> list[TimelineEvent]:
    """alert-pending, alert-firing and alert-resolved events for the timeline."""
    events: list[TimelineEvent] = []
    labels = {c.alert: (c.alert if c.service is None else f"{c.alert} ({c.service})") for c in charted}
    for name, trace in traces.items():
        label = labels.get(name, name)
        if trace.pending:
            events.append(TimelineEvent(at=_at(trace.pending[0]), kind=EventKind.ALERT_PENDING,
                                        text=f"{label} pending"))
        if trace.firing:
            events.append(TimelineEvent(at=_at(trace.firing[0]), kind=EventKind.ALERT_FIRING,
                                        text=f"{label} firing"))
        last = max((*trace.pending, *trace.firing), default=None)
        if last is not None and last < _last_grid_point(window) - window.step_s / 2:
            events.append(TimelineEvent(at=_at(last + window.step_s), kind=EventKind.ALERT_RESOLVED,
                                        text=f"{label} resolved"))
    return events


def _last_grid_point(window: Window) -> float:
    """The last instant a range query over ``window`` evaluates at."""
    start, span = window.start.timestamp(), (window.end - window.start).total_seconds()
    return start + math.floor(span / window.step_s + 1e-9) * window.step_s


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
