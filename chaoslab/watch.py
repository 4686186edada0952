"""The SLO watcher: a thread that checks every halt condition while a fault is in place.

Halt conditions are the alert conditions and alert states of the target service's
bound alerts, of the global alerts, and of every other catalog service's alerts: a
fault on payment that breaks cart must halt too. The first breach is recorded and
``chaoslab.halt.request_halt`` is called at once, which ends the hold.

A check that cannot get an answer from Prometheus is a breach of kind ``no-data``:
a fault is never left in place unobserved.

For a multi-window burn-rate alert the watcher watches its fast legs rather than the whole
alert (``Condition.during_fault``, ``chaoslab.prometheus.burnrate``); the baseline before
injection and the recovery after removal evaluate the whole alert (the baseline its fast
legs as well: ``chaoslab.runner.legs``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from chaoslab.halt import request_halt
from chaoslab.model import AlertRule, AlertState, Catalog, HypothesisCheck, Service
from chaoslab.ports import MetricsSource
from chaoslab.prometheus.burnrate import BurnRate, analyse
from chaoslab.prometheus.hypothesis import bind_alerts, conditions_for
from chaoslab.prometheus.probes import AlertCheck, check_alert

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.25
MAX_WORKERS = 8  # below requests' default connection pool of 10 per host

BREACH_CONDITION = "condition"  # the alert's expression is true (or its data is missing/NaN)
BREACH_ALERT_STATE = "alert-state"  # Prometheus reports the alert pending or firing
BREACH_NO_DATA = "no-data"  # Prometheus could not be asked: an infrastructure failure


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """One alert to watch. ``service`` is the service it is bound to (None: global);
    ``target`` says whether it belongs to the target's own hypothesis."""

    alert: str
    expr: str
    service: str | None = None
    target: bool = False
    burn: BurnRate | None = None  # the alert's multi-window legs; None for any other shape
    fast: bool = False  # ``expr`` is the fast legs of ``burn`` rather than the whole alert

    def during_fault(self) -> Condition:
        """What to watch while a fault is in place: the fast legs of a multi-window alert,
        the alert itself for any other shape."""
        if self.burn is None or self.fast:
            return self
        return replace(self, expr=self.burn.watched, fast=True)

    @property
    def label(self) -> str:
        return self.alert if self.service is None else f"{self.alert} ({self.service})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Breach:
    condition: Condition
    kind: str  # BREACH_CONDITION | BREACH_ALERT_STATE | BREACH_NO_DATA
    detected_at: datetime
    reason: str
    check: HypothesisCheck

    def describe(self) -> str:
        return f"{self.condition.label}: {self.reason}"


def build_conditions(
    service: Service, rules: Sequence[AlertRule], catalog: Catalog | None
) -> tuple[Condition, ...]:
    """Every halt condition for a fault on ``service``, the target's own first, each alert once."""
    own = {(b.rule.name, b.rule.expr) for b in bind_alerts(service, rules, catalog)}
    bindings = (
        conditions_for(catalog, rules, target=service)
        if catalog is not None
        else bind_alerts(service, rules, None)
    )
    return tuple(
        Condition(
            alert=b.rule.name,
            expr=b.rule.expr,
            service=b.service,
            target=(b.rule.name, b.rule.expr) in own,
            burn=analyse(b.rule),
        )
        for b in bindings
    )


def _to_check(condition: Condition, check: AlertCheck, *, at: datetime) -> HypothesisCheck:
    return HypothesisCheck(
        alert=condition.alert,
        service=condition.service,
        met=check.met,
        state=None if check.state == "unknown" else check.state,
        condition_true=check.condition_true,
        value=check.value,
        threshold=check.threshold,
        margin=check.margin,
        reason=check.reason,
        no_data=check.condition_true is None,
        at=at,
    )


def evaluate(
    metrics: MetricsSource, conditions: Sequence[Condition], *, pool: Executor | None = None
) -> tuple[HypothesisCheck, ...]:
    """Check every condition once (one alerts call, then the expressions, concurrently).
    Never raises for Prometheus trouble: such checks come back not met with ``no_data`` set.

    ``pool`` runs the checks; without one, a pool lives for this call only."""
    if pool is None:
        with ThreadPoolExecutor(max_workers=_workers(conditions), thread_name_prefix="chaoslab-check") as own:
            return evaluate(metrics, conditions, pool=own)
    at = datetime.now(UTC)
    try:
        states = metrics.alerts()
    except Exception as exc:  # PrometheusError, or anything else: the same fail-safe answer
        return tuple(
            HypothesisCheck(alert=c.alert, service=c.service, met=False, reason=str(exc), no_data=True, at=at)
            for c in conditions
        )
    # One round trip per query dominates a check; done one after another, a dozen alerts
    # would take a dozen round trips per evaluation.
    futures = [pool.submit(_check_one, metrics, c, states=states, at=at) for c in conditions]
    return tuple(f.result() for f in futures)


def _workers(conditions: Sequence[Condition]) -> int:
    return max(1, min(MAX_WORKERS, len(conditions)))


def _check_one(
    metrics: MetricsSource, condition: Condition, *, states: Sequence[AlertState], at: datetime
) -> HypothesisCheck:
    try:
        check = check_alert(metrics, alert=condition.alert, expr=condition.expr, alert_states=states)
    except Exception as exc:  # a check that cannot judge fails safe: never a pass, never a dead watcher
        logger.exception("checking %s failed", condition.label)
        return HypothesisCheck(alert=condition.alert, service=condition.service, met=False, no_data=True,
                               reason=f"check failed: {type(exc).__name__}: {exc}", at=at)
    return _to_check(condition, check, at=at)


def first_breach(
    conditions: Sequence[Condition], checks: Sequence[HypothesisCheck], *, at: datetime | None = None
) -> Breach | None:
    """The first failed check, in condition order (the target's own alerts come first)."""
    for condition, check in zip(conditions, checks, strict=True):
        if check.met:
            continue
        if check.no_data:
            kind = BREACH_NO_DATA
        elif check.condition_true or check.state not in ("pending", "firing"):
            kind = BREACH_CONDITION
        else:
            kind = BREACH_ALERT_STATE
        return Breach(
            condition=condition, kind=kind, detected_at=at or check.at or datetime.now(UTC),
            reason=check.reason, check=check,
        )
    return None


class Watcher:
    """Evaluates ``conditions`` every ``interval`` seconds in a daemon thread until stopped
    or until the first breach, which it records and turns into a halt request.

    ``on_breach`` and ``on_tick`` are called from the watcher thread; exceptions they raise
    are logged and ignored so that they cannot stop the watch."""

    def __init__(
        self,
        metrics: MetricsSource,
        conditions: Sequence[Condition],
        *,
        interval: float = DEFAULT_INTERVAL_S,
        on_breach: Callable[[Breach], None] | None = None,
        on_tick: Callable[[tuple[HypothesisCheck, ...]], None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.conditions = tuple(c.during_fault() for c in conditions)
        self.interval = max(0.05, interval)
        self._on_breach = on_breach
        self._on_tick = on_tick
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._breach: Breach | None = None
        self._latest: tuple[HypothesisCheck, ...] = ()
        self._thread: threading.Thread | None = None
        self.evaluations = 0

    @property
    def breach(self) -> Breach | None:
        with self._lock:
            return self._breach

    def latest(self) -> tuple[HypothesisCheck, ...]:
        """The checks of the most recent evaluation (margins for the live view)."""
        with self._lock:
            return self._latest

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="chaoslab-watch", daemon=True)
        self._thread.start()
        logger.debug("watching %d conditions every %.2fs", len(self.conditions), self.interval)

    def stop(self, *, wait: float | None = None) -> None:
        """Ask the thread to end. ``wait`` seconds (None: don't wait) for it to finish;
        an evaluation in flight when the stop arrives is discarded."""
        self._stop.set()
        if wait is not None and self._thread is not None:
            self._thread.join(timeout=wait)

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(wait=5.0)

    def _loop(self) -> None:
        workers = _workers(self.conditions)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chaoslab-watch") as pool:
            self._watch(pool)

    def _watch(self, pool: Executor) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            checks = evaluate(self.metrics, self.conditions, pool=pool)
            if self._stop.is_set():
                return
            self.evaluations += 1
            with self._lock:
                self._latest = checks
            self._notify_tick(checks)
            breach = first_breach(self.conditions, checks, at=datetime.now(UTC))
            if breach is not None:
                self._record(breach)
                return
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _record(self, breach: Breach) -> None:
        with self._lock:
            self._breach = breach
        request_halt(f"{breach.kind}: {breach.describe()}")
        if self._on_breach is not None:
            try:
                self._on_breach(breach)
            except Exception:  # a failing observer must not hide the halt
                logger.exception("breach callback failed")

    def _notify_tick(self, checks: tuple[HypothesisCheck, ...]) -> None:
        if self._on_tick is None:
            return
        try:
            self._on_tick(checks)
        except Exception:  # a failing live view must not stop the watch
            logger.exception("watch tick callback failed")
