"""The SLO watcher: a thread that checks every halt condition while a fault is in place.

Halt conditions are the alert conditions and alert states of the target service's
bound alerts, of the global alerts, and of every other catalog service's alerts: a
fault on payment that breaks cart must halt too. The first breach is recorded and
``chaoslab.halt.request_halt`` is called at once, which ends the hold.

A check that cannot get an answer from Prometheus is a breach of kind ``no-data``:
a fault is never left in place unobserved.

Guard alerts (global, bound to no service) are judged by their state only, from the
alerts answer every evaluation gets anyway (``chaoslab.prometheus.guards``): they add
no query, and only a firing guard that is not ignored is a breach (``alert-state``).

For a multi-window burn-rate alert the watcher watches its fast legs rather than the whole
alert (``Condition.during_fault``, ``chaoslab.prometheus.burnrate``); the baseline before
injection and the recovery after removal evaluate the whole alert (the baseline its fast
legs as well: ``chaoslab.runner.legs``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from chaoslab.errors import PrometheusError
from chaoslab.halt import request_halt
from chaoslab.model import AlertFilter, AlertRule, AlertState, Catalog, HypothesisCheck, Service
from chaoslab.ports import MetricsSource
from chaoslab.prometheus.batch import AlertQuery, Answer, BatchEvaluator
from chaoslab.prometheus.bindings import conditions_for_catalog
from chaoslab.prometheus.burnrate import BurnRate, analyse
from chaoslab.prometheus.guards import firing_selector, judge_guard, states_by_name
from chaoslab.prometheus.hypothesis import bind_alerts
from chaoslab.prometheus.probes import AlertCheck, check_alert
from chaoslab.threads import MAX_WORKERS, shared_pool

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.25
# Each evaluation must be answered within this many intervals (at least MIN_DEADLINE_S):
# a Prometheus that accepts and never answers is a breach within about a second.
DEADLINE_INTERVALS = 4
MIN_DEADLINE_S = 1.0
# Batch queries the watcher keeps in flight (``evaluate_stream``): a breach counts from
# the moment its own batch is answered, and Prometheus works on two queries at full speed
# rather than on all of them at a fraction each.
WATCH_IN_FLIGHT = 2

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
    guard: bool = False  # judged by its state in Prometheus, never by its condition
    ignore: tuple[AlertFilter, ...] = ()  # guards.ignore: firing instances that do not halt
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

    @property
    def breach_expr(self) -> str:
        """What holds while this condition is breached (to date the breach afterwards)."""
        return firing_selector(self.alert) if self.guard else self.expr


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
        conditions_for_catalog(catalog, rules, target=service)
        if catalog is not None
        else bind_alerts(service, rules, None)
    )
    ignore = catalog.guards.ignore if catalog is not None else ()
    return tuple(
        Condition(
            alert=b.rule.name,
            expr=b.rule.expr,
            service=b.service,
            target=(b.rule.name, b.rule.expr) in own,
            guard=b.guard,
            ignore=ignore if b.guard else (),
            burn=None if b.guard else analyse(b.rule),
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
    metrics: MetricsSource,
    conditions: Sequence[Condition],
    *,
    pool: Executor | None = None,
    engine: BatchEvaluator | None = None,
    deadline_s: float | None = None,
) -> tuple[HypothesisCheck, ...]:
    """Check every condition once: one alerts call and a few batch queries, concurrently
    (``chaoslab.prometheus.batch``; what cannot be batched is checked on its own).
    Never raises for Prometheus trouble: such checks come back not met with ``no_data`` set,
    and so do the checks whose request is still unanswered ``deadline_s`` seconds after it
    was sent.

    ``pool`` runs the requests (default: the process's, ``chaoslab.threads``). ``engine``
    keeps the batch plan between evaluations of the same conditions."""
    pool = pool or shared_pool()
    found: dict[int, HypothesisCheck] = {}
    for group in evaluate_stream(metrics, conditions, pool=pool, engine=engine, deadline_s=deadline_s):
        found.update(group)
    return tuple(found[i] for i in range(len(conditions)))


def evaluate_stream(
    metrics: MetricsSource,
    conditions: Sequence[Condition],
    *,
    pool: Executor,
    engine: BatchEvaluator | None = None,
    deadline_s: float | None = None,
    in_flight: int | None = None,
    stop: Future[None] | None = None,
) -> Iterator[list[tuple[int, HypothesisCheck]]]:
    """``evaluate``, yielding the checks as their answers come, as ``(index, check)`` groups:
    the guards (judged from the alerts answer), then each batch query's alerts as soon as
    it is answered, then the alerts asked alone. Every condition is yielded exactly once.

    At most ``in_flight`` batch queries are asked at a time (None: all at once), the next
    as soon as one is answered: the watcher acts on a breach when its batch is answered
    rather than when the slowest batch is, and Prometheus, busy with two queries, is not
    made to share its CPUs among eight. A consumer may stop early (a breach); requests
    still in flight then finish in ``pool`` and are ignored. So does ``stop`` once it is
    done: the stream ends at once, without waiting for what is in flight."""
    at = datetime.now(UTC)
    engine = engine or engine_for(conditions)
    slo = [i for i, c in enumerate(conditions) if not c.guard]  # the engine's alert k is conditions[slo[k]]
    asked_states = pool.submit(metrics.alerts)
    sent = time.monotonic()
    batches = engine.plan()
    queue = deque(batches)
    limit = len(queue) if in_flight is None else max(1, in_flight)
    running: dict[Future[dict[str, Answer]], tuple[tuple[str, ...], float]] = {}

    def ask_more() -> None:
        while queue and len(running) < limit:
            batch = queue.popleft()
            running[pool.submit(engine.answer, metrics, batch)] = (batch, time.monotonic())

    ask_more()
    if _stopped(stop, [asked_states], timeout=_left(sent, deadline_s)) is None:
        return
    try:
        states = asked_states.result(timeout=0)  # answered, or past its deadline
    except Exception as exc:  # PrometheusError, a timeout, anything else: the same fail-safe answer
        yield [(i, _no_answer(c, reason=_why(exc, deadline_s), at=at)) for i, c in enumerate(conditions)]
        return
    by_name = states_by_name(states)
    guards = [(i, _check_one(metrics, c, states=by_name.get(c.alert, ()), at=at))
              for i, c in enumerate(conditions) if c.guard]
    if guards:
        yield guards
    covered = {k for batch in batches for k in engine.positions(batch)}
    alone = [k for k in range(len(slo)) if k not in covered]
    asked_alone: dict[int, tuple[Future[HypothesisCheck], float]] = {}

    def ask_alone(ks: Sequence[int]) -> None:
        for k in ks:
            future = pool.submit(_check_one, metrics, conditions[slo[k]], states=states, at=at)
            asked_alone[k] = (future, time.monotonic())

    ask_alone(alone)

    def judged(batch: Sequence[str], answers: dict[str, Answer]) -> list[tuple[int, HypothesisCheck]]:
        group, unanswered = [], []
        for k in engine.positions(batch):
            check = engine.judge(k, answers=answers, states=states)
            if check is None:  # refused inside the batch, or the batch failed: asked alone
                unanswered.append(k)
            else:
                group.append((slo[k], _to_check(conditions[slo[k]], check, at=at)))
        ask_alone(unanswered)
        return group

    while running:
        oldest = min(t for _, t in running.values())
        done = _stopped(stop, running, timeout=_left(oldest, deadline_s))
        if done is None:
            return
        if not done:  # the oldest request is past its deadline: not asked again
            batch, _ = running.pop(next(f for f, (_, t) in running.items() if t == oldest))
            timed_out = PrometheusError(_why(FutureTimeout(), deadline_s))
            done_group = judged(batch, dict.fromkeys(batch, timed_out))
        else:
            done_group = []
            for future in done:
                batch, _ = running.pop(future)
                try:
                    answers = future.result()
                except Exception as exc:  # its alerts are then checked on their own
                    logger.warning("a batch query failed: %s: %s", type(exc).__name__, exc)
                    answers = {}
                done_group.extend(judged(batch, answers))
        ask_more()
        if done_group:
            yield done_group
    for k, (alone_future, asked_at) in asked_alone.items():
        condition = conditions[slo[k]]
        if _stopped(stop, [alone_future], timeout=_left(asked_at, deadline_s)) is None:
            return
        try:
            yield [(slo[k], alone_future.result(timeout=0))]
        except FutureTimeout as exc:
            yield [(slo[k], _no_answer(condition, reason=_why(exc, deadline_s), at=at))]


def _stopped(stop: Future[None] | None, futures: Iterable[Future[Any]],
             *, timeout: float | None) -> set[Future[Any]] | None:
    """The futures done within ``timeout`` (as ``concurrent.futures.wait`` with
    FIRST_COMPLETED), or None as soon as ``stop`` is done."""
    waiting: list[Future[Any]] = [*futures] if stop is None else [*futures, stop]
    done, _ = wait(waiting, timeout=timeout, return_when=FIRST_COMPLETED)
    if stop is not None and stop.done():
        return None
    return done


def engine_for(conditions: Sequence[Condition]) -> BatchEvaluator:
    """The batch plan of ``conditions`` (guards need no query), to reuse across evaluations."""
    return BatchEvaluator([AlertQuery(alert=c.alert, expr=c.expr) for c in conditions if not c.guard])


def _left(sent: float, deadline_s: float | None) -> float | None:
    """Seconds left for a request sent at ``sent`` (monotonic) to be answered."""
    return None if deadline_s is None else max(0.0, sent + deadline_s - time.monotonic())


def _why(exc: BaseException, deadline_s: float | None) -> str:
    if isinstance(exc, FutureTimeout):
        return f"no answer from Prometheus within the watcher's deadline of {deadline_s:g}s"
    return str(exc)


def _no_answer(condition: Condition, *, reason: str, at: datetime) -> HypothesisCheck:
    return HypothesisCheck(
        alert=condition.alert, service=condition.service, met=False, reason=reason, no_data=True, at=at,
        guard=condition.guard,
    )


def _workers(conditions: Sequence[Condition]) -> int:
    return max(1, min(MAX_WORKERS, len(conditions)))


def _check_one(
    metrics: MetricsSource, condition: Condition, *, states: Sequence[AlertState], at: datetime
) -> HypothesisCheck:
    if condition.guard:
        return judge_guard(condition.alert, states, ignore=condition.ignore, service=condition.service, at=at)
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
    or until the first breach, which it records and turns into a halt request. The first
    evaluation comes ``first_after`` seconds after ``start``.

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
        first_after: float = 0.0,
    ) -> None:
        self.metrics = metrics
        self.first_after = max(0.0, first_after)
        self.conditions = tuple(c.during_fault() for c in conditions)
        self.interval = max(0.05, interval)
        self.deadline_s = max(MIN_DEADLINE_S, DEADLINE_INTERVALS * self.interval)
        self._engine = engine_for(self.conditions)
        self._on_breach = on_breach
        self._on_tick = on_tick
        self._stopped: Future[None] = Future()  # done on stop: evaluate_stream wakes on it too
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
        an evaluation in flight when the stop arrives is discarded (not waited for)."""
        with self._lock:
            if not self._stopped.done():
                self._stopped.set_result(None)
        if wait is not None and self._thread is not None:
            self._thread.join(timeout=wait)

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(wait=5.0)

    def _loop(self) -> None:
        workers = _workers(self.conditions)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chaoslab-watch")
        try:
            self._watch(pool)
        finally:  # a request to a hung Prometheus must not hold the watcher thread after a halt
            pool.shutdown(wait=False, cancel_futures=True)

    def _watch(self, pool: Executor) -> None:
        latest: dict[int, HypothesisCheck] = {}
        if self.first_after:
            wait([self._stopped], timeout=self.first_after)
        while not self._stopped.done():
            started = time.monotonic()
            for group in evaluate_stream(self.metrics, self.conditions, pool=pool, engine=self._engine,
                                         deadline_s=self.deadline_s, in_flight=WATCH_IN_FLIGHT,
                                         stop=self._stopped):
                if self._stopped.done():
                    return
                latest.update(group)
                group.sort(key=lambda item: item[0])
                breach = first_breach([self.conditions[i] for i, _ in group], [c for _, c in group],
                                      at=datetime.now(UTC))
                if breach is not None:
                    with self._lock:
                        self._latest = tuple(latest[i] for i in sorted(latest))
                    self._record(breach)
                    return
            if self._stopped.done():  # the stream ended early for the stop: a partial rotation
                return
            self.evaluations += 1
            checks = tuple(latest[i] for i in range(len(self.conditions)))
            with self._lock:
                self._latest = checks
            self._notify_tick(checks)
            wait([self._stopped], timeout=max(0.0, self.interval - (time.monotonic() - started)))

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
