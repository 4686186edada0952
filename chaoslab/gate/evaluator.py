"""The gate's judgement: the runner's halt conditions, evaluated by one background loop
and shared by every caller.

The conditions are exactly the watcher's (``chaoslab.watch.build_conditions``) and are
judged by the watcher's own code (``evaluate`` and ``first_breach``). One loop evaluates
the union of every service's conditions each ``interval``; a caller reads the latest
result, so a thousand callers cost Prometheus what one does. A verdict is unhealthy when
a condition holds, when Prometheus could not answer, when nothing was evaluated yet, and
when the latest evaluation is older than ``stale_after`` (a hung loop must not keep
answering "healthy").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chaoslab.errors import InvalidInputError
from chaoslab.model import AlertRule, Catalog, HypothesisCheck
from chaoslab.threads import MAX_WORKERS
from chaoslab.watch import Condition, build_conditions, engine_for, evaluate, first_breach

logger = logging.getLogger(__name__)

_Key = tuple[str, str]  # (alert, expr): a condition, whichever service it is attributed to


@dataclass(frozen=True, slots=True, kw_only=True)
class GateBreach:
    """One halt condition that holds (or could not be judged)."""

    alert: str
    service: str | None
    kind: str  # watch.BREACH_CONDITION | BREACH_ALERT_STATE | BREACH_NO_DATA | "stale"
    reason: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert, "service": self.service, "kind": self.kind, "reason": self.reason,
                "value": self.value, "threshold": self.threshold}


@dataclass(frozen=True, slots=True, kw_only=True)
class GateVerdict:
    healthy: bool
    service: str | None
    conditions: int
    breaches: tuple[GateBreach, ...] = ()
    evaluated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "service": self.service,
            "conditions": self.conditions,
            "evaluated_at": self.evaluated_at.isoformat() if self.evaluated_at else None,
            "breaches": [b.to_dict() for b in self.breaches],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """What one pass of the loop found, for observers (the gate's own metrics)."""

    seconds: float
    breaches: tuple[GateBreach, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Latest:
    checks: dict[_Key, HypothesisCheck]
    started: float  # monotonic
    at: datetime


class UnknownServiceError(LookupError):
    """``?service=`` names no catalog service."""


class GateEvaluator:
    """Evaluates every halt condition in a background thread; ``verdict`` reads the result."""

    def __init__(
        self,
        metrics: Any,
        *,
        catalog: Catalog,
        rules: Sequence[AlertRule],
        interval: float,
        stale_after: float,
        on_evaluation: Callable[[Evaluation], None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.interval = max(0.05, interval)
        self.stale_after = stale_after
        # What the runner's watcher evaluates while a fault is in place (a multi-window
        # alert's fast legs): the gate guards a Workflow's faults.
        self._by_service = {
            service.name: tuple(c.during_fault() for c in build_conditions(service, rules, catalog))
            for service in catalog.services
        }
        self._all = _union(self._by_service.values())
        if not self._all:
            raise InvalidInputError(catalog.source, "rules", "no alert binds to any catalog service and none "
                                    "is global: the gate would call every system healthy")
        self._engine = engine_for(self._all)  # the batch plan, kept between evaluations
        self._on_evaluation = on_evaluation
        self._latest: _Latest | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(self._by_service)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return self._all

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="chaoslab-gate", daemon=True)
            self._thread.start()

    def stop(self, *, wait: float | None = None) -> None:
        self._stop.set()
        if wait is not None and self._thread is not None:
            self._thread.join(timeout=wait)

    def verdict(self, service: str | None = None) -> GateVerdict:
        """The latest judgement of every condition (``service``: of a fault on that service)."""
        if service is not None and service not in self._by_service:
            raise UnknownServiceError(service)
        conditions = self._all if service is None else self._by_service[service]
        with self._lock:
            latest = self._latest
        if latest is None:
            return _unjudged(service, conditions, "no evaluation has finished yet", at=None)
        age = time.monotonic() - latest.started
        if age > self.stale_after:
            return _unjudged(service, conditions, f"the latest evaluation is {age:.1f}s old "
                             f"(more than {self.stale_after:g}s): Prometheus is too slow", at=latest.at)
        breaches = _breaches(conditions, latest.checks)
        return GateVerdict(healthy=not breaches, service=service, conditions=len(conditions),
                           breaches=breaches, evaluated_at=latest.at)

    def evaluate_once(self, pool: ThreadPoolExecutor | None = None) -> Evaluation:
        """One pass: judge every condition, keep the result, tell the observer."""
        started = time.monotonic()
        checks = evaluate(self.metrics, self._all, pool=pool, engine=self._engine)
        latest = _Latest(checks={(c.alert, c.expr): chk for c, chk in zip(self._all, checks, strict=True)},
                         started=started, at=datetime.now(UTC))
        with self._lock:
            self._latest = latest
        result = Evaluation(seconds=time.monotonic() - started, breaches=_breaches(self._all, latest.checks))
        if self._on_evaluation is not None:
            try:
                self._on_evaluation(result)
            except Exception:  # an observer must not stop the gate
                logger.exception("gate evaluation observer failed")
        return result

    def _loop(self) -> None:
        workers = max(1, min(MAX_WORKERS, len(self._all)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chaoslab-gate-check") as pool:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    self.evaluate_once(pool)
                except Exception:  # evaluate never raises for Prometheus trouble; anything else is logged
                    logger.exception("gate evaluation failed")
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


def _union(groups: Iterable[Sequence[Condition]]) -> tuple[Condition, ...]:
    """Every condition once, in first-seen order, attributed to the service it is bound to."""
    found: dict[_Key, Condition] = {}
    for conditions in groups:
        for condition in conditions:
            key = (condition.alert, condition.expr)
            if key not in found or (condition.target and not found[key].target):
                found[key] = condition
    return tuple(found.values())


def _breaches(conditions: Sequence[Condition], checks: dict[_Key, HypothesisCheck]) -> tuple[GateBreach, ...]:
    out = []
    for condition in conditions:
        check = checks[(condition.alert, condition.expr)]
        breach = first_breach([condition], [check])  # the watcher's own classification
        if breach is not None:
            out.append(GateBreach(alert=condition.alert, service=condition.service, kind=breach.kind,
                                  reason=breach.reason, value=check.value, threshold=check.threshold))
    return tuple(out)


def _unjudged(service: str | None, conditions: Sequence[Condition], reason: str, *,
              at: datetime | None) -> GateVerdict:
    breach = GateBreach(alert="*", service=service, kind="stale", reason=reason)
    return GateVerdict(healthy=False, service=service, conditions=len(conditions), breaches=(breach,),
                       evaluated_at=at)
