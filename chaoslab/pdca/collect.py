"""The PDCA record of a run, from its plan, its result and Prometheus.

Plan: each step's hypothesis (every alert split into SLI, operator and threshold), fault,
halt conditions and the checklist items it re-checks. Do: the runner's timeline of the
step plus the alerts' transitions. Check: verdict, fault window, halt latency, recovery,
SLI series and detection (``series``), and the findings of the Act rules (``findings``).
Act (the items) comes from the ledger, which this module feeds with ``GroupOutcome``s.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chaoslab.model import (
    AlertRule,
    Catalog,
    GameDay,
    HypothesisCheck,
    Mode,
    NetworkChaos,
    Plan,
    RunResult,
    Step,
    StepResult,
)
from chaoslab.pdca import series
from chaoslab.pdca.findings import BREACHED, BrokenSlo, StepEvidence, UnmetCheck, find_all
from chaoslab.pdca.ledger import GroupOutcome, Judgement
from chaoslab.pdca_model import (
    Detection,
    EventKind,
    FaultSummary,
    FaultWindow,
    PdcaRecord,
    PlannedAlert,
    SliSeries,
    StepCheck,
    StepPlan,
    StepTimeline,
    TimelineEvent,
)
from chaoslab.ports import MetricsSource
from chaoslab.prometheus.hypothesis import bind_alerts, comparison
from chaoslab.threads import shared_pool
from chaoslab.watch import Condition, build_conditions

logger = logging.getLogger(__name__)

Rechecks = Callable[[str, str], Sequence[str]]  # (experiment, service) → item ids


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What Prometheus showed for one step."""

    slis: tuple[SliSeries, ...] = ()
    detection: tuple[Detection, ...] = ()
    events: tuple[TimelineEvent, ...] = ()
    broken: tuple[BrokenSlo, ...] = ()


# A step's ``observe`` when it was asked already, else None.
Observed = Callable[[Step, StepResult], Callable[[], Observation] | None]


def collect_run(
    plan: Plan, result: RunResult, *, rules: Sequence[AlertRule], metrics: MetricsSource | None,
    rechecks: Rechecks = lambda experiment, service: (), observed: Observed | None = None,
) -> tuple[PdcaRecord, tuple[GroupOutcome, ...]]:
    """The record (without ``act`` and ``checklist``, which the ledger gives) and what the
    run says about each experiment for the ledger. ``metrics`` None: no series are charted.
    ``observed`` gives a step's ``observe`` when it was asked already (None: asked here)."""
    plans, timelines, checks, judged = [], [], [], []
    previous = result.started_at
    by_name = {r.name: r for r in rules}
    for step, outcome in zip(plan.steps, result.steps, strict=True):
        conditions = build_conditions(step.service, rules, plan.gameday.catalog)
        asked = None if observed is None else observed(step, outcome)
        if asked is None:  # asked before the plan is made, which its answers then overlap
            asked = _ask(step, outcome, conditions=conditions, by_name=by_name, metrics=metrics)
        plans.append(_plan(step, rules, plan.gameday.catalog, conditions, rechecks))
        seen = asked()
        timelines.append(_timeline(step, outcome, seen, fallback=previous))
        check, evidence = _check(step, outcome, seen, gameday=plan.gameday, by_name=by_name)
        checks.append(check)
        judged.append((step, outcome, evidence))
        previous = outcome.ended_at or previous
    record = PdcaRecord(plan=tuple(plans), do=tuple(timelines), check=tuple(checks))
    return record, _groups(judged)


# --- plan --------------------------------------------------------------------------------


def _scope(step: Step) -> str:
    name, value = step.service.name, step.fault.value
    return {
        Mode.ONE: f"one {name} pod", Mode.ALL: f"every {name} pod", Mode.FIXED: f"{value} {name} pods",
        Mode.FIXED_PERCENT: f"{value}% of {name} pods",
        Mode.RANDOM_MAX_PERCENT: f"up to {value}% of {name} pods",
    }[step.fault.mode]


def _detail(step: Step) -> str:
    """The size of a network fault: ``200ms ±50ms``, ``25%``, ``1mbps``."""
    fault = step.fault
    if not isinstance(fault, NetworkChaos):
        return ""
    if fault.delay is not None:
        return fault.delay.latency + (f" ±{fault.delay.jitter}" if fault.delay.jitter else "")
    if fault.loss is not None:
        return f"{fault.loss.loss}%"
    if fault.corrupt is not None:
        return f"{fault.corrupt.corrupt}%"
    if fault.duplicate is not None:
        return f"{fault.duplicate.duplicate}%"
    return fault.bandwidth.rate if fault.bandwidth is not None else ""


def _fault(step: Step) -> FaultSummary:
    fault = step.fault
    detail = _detail(step)
    action = fault.action.value + (f" {detail}" if detail else "")
    return FaultSummary(kind=fault.kind.value, action=fault.action.value, mode=fault.mode.value,
                        value=fault.value, duration=fault.duration,
                        summary=f"{action}, {_scope(step)}, {fault.duration}")


def _planned(rule: AlertRule, service: str | None) -> PlannedAlert:
    found = comparison(rule.expr)
    return PlannedAlert(alert=rule.name, service=service, expr=rule.expr,
                        sli=found.lhs if found else rule.expr, op=found.op if found else None,
                        threshold=found.threshold if found else None, for_s=rule.for_s,
                        severity=rule.labels.get("severity"))


def _plan(step: Step, rules: Sequence[AlertRule], catalog: Catalog, conditions: Sequence[Condition],
          rechecks: Rechecks) -> StepPlan:
    hypothesis = tuple(_planned(b.rule, b.service) for b in bind_alerts(step.service, rules, catalog))
    return StepPlan(
        step=step.name, experiment=step.experiment.name, service=step.service.name,
        tier=step.service.tier.label, owner=step.service.owner, fault=_fault(step), hypothesis=hypothesis,
        halt_conditions=tuple(f"{c.label}: {c.expr}" for c in conditions),
        rechecks=tuple(rechecks(step.experiment.name, step.service.name)),
    )


# --- do and check: what Prometheus shows -----------------------------------------------


def _fault_window(outcome: StepResult) -> FaultWindow:
    kinds = {e.kind: e.at for e in reversed(outcome.events)}  # the first of each kind
    return FaultWindow(start=kinds.get(EventKind.INJECTED), end=kinds.get(EventKind.REMOVED))


def _unmet(checks: Sequence[HypothesisCheck]) -> list[HypothesisCheck]:
    return [c for c in checks if not c.met]


def _charted(outcome: StepResult, conditions: Sequence[Condition], by_name: dict[str, AlertRule],
             held: set[tuple[str, str | None]]) -> list[series.Charted]:
    """The step's own hypothesis, and every alert of a service whose SLO broke (``held``:
    the conditions Prometheus saw true during the step)."""
    halted = [c for c in conditions if outcome.halt is not None and c.label == outcome.halt.condition]
    broken = {(c.alert, c.service) for c in _unmet((*outcome.during, *outcome.after))}
    broken |= {(c.alert, c.service) for c in halted} | held
    services = {svc for _, svc in broken if svc is not None}
    chosen = [c for c in conditions if c.target or (c.alert, c.service) in broken or c.service in services]
    result = []
    for c in chosen:
        found = comparison(c.expr)
        rule = by_name.get(c.alert)
        result.append(series.Charted(alert=c.alert, service=c.service, query=found.lhs if found else c.expr,
                                     comparison=found, for_s=rule.for_s if rule else 0.0))
    return result


def observe(step: Step, outcome: StepResult, *, rules: Sequence[AlertRule], catalog: Catalog,
            metrics: MetricsSource | None) -> Callable[[], Observation]:
    """What Prometheus showed for one step, as ``collect_run`` asks it: its first range
    queries are asked now, without waiting; the function returned waits for their answers
    (and asks what they call for) and gives the observation, the same on every call.

    The window ends now (at most ``series.AFTER_S`` after the step's last event), so a step
    is observed once it is over, and for the same window only as the run ends: an earlier
    step's chart goes on past its recovery."""
    return _ask(step, outcome, conditions=build_conditions(step.service, rules, catalog),
                by_name={r.name: r for r in rules}, metrics=metrics)


def _ask(step: Step, outcome: StepResult, *, conditions: Sequence[Condition],
         by_name: dict[str, AlertRule], metrics: MetricsSource | None) -> Callable[[], Observation]:
    """Ask the step's first range queries (no waiting) and return what waits for their
    answers, asks what those call for, and gives the observation."""
    window = _fault_window(outcome)
    if metrics is None or window.start is None:
        unseen = Observation(broken=_broken_from_checks(outcome, conditions))
        return lambda: unseen
    interval = min((r.interval_s for r in by_name.values() if r.interval_s), default=None)
    last = max(e.at for e in outcome.events)
    span = series.window_for(fault_start=window.start, last=last, interval_s=interval)
    window_start = window.start
    start = window_start.timestamp()
    # Which conditions held decides only whether more alerts are charted: what is charted
    # anyway (the step's own hypothesis, what the checks saw broken) is asked at the same
    # time, so the range queries take one round trip, not one after another.
    known = _charted(outcome, conditions, by_name, set())
    pool = shared_pool()  # chaoslab.threads: no thread to start for each step
    asked = pool.submit(series.conditions_held, metrics, [c.expr for c in conditions], span)
    slis = {_key(c): pool.submit(series.sli_series, metrics, c, span) for c in known}
    traces = [pool.submit(series.alert_traces, metrics, [c.alert for c in known], span)]

    @functools.cache
    def answered() -> Observation:
        when = asked.result()
        if when is None:
            # Prometheus did not answer: one timeout per step is enough, the SLIs say why.
            pending: list[Future[Any]] = [*slis.values(), *traces]
            wait(pending)
            unanswered = tuple(series.unanswered(c, span) for c in known)
            return Observation(slis=unanswered, broken=_broken_from_checks(outcome, conditions))
        held = {(c.alert, c.service) for i, c in enumerate(conditions)
                if any(t >= start for t in when.get(i, ()))}
        charted = _charted(outcome, conditions, by_name, held)
        more = [c for c in charted if _key(c) not in slis]
        slis.update({_key(c): pool.submit(series.sli_series, metrics, c, span) for c in more})
        names = sorted({c.alert for c in more} - {c.alert for c in known})
        if names:
            traces.append(pool.submit(series.alert_traces, metrics, names, span))
        found = tuple(slis[_key(c)].result() for c in charted)
        alerts = _merged([t.result() for t in traces])
        breach_at = outcome.halt.breach_at if outcome.halt else None
        detection = tuple(
            series.detection(c, s, (alerts or {}).get(c.alert), fallback_breach=breach_at or window_start)
            for c, s in zip(charted, found, strict=True)
        )
        events = tuple(series.alert_events(charted, alerts or {}, span))
        return Observation(slis=found, detection=detection, events=events,
                           broken=_with_series(_broken_from_checks(outcome, conditions), charted, found))

    return answered


def _key(charted: series.Charted) -> tuple[str, str | None, str]:
    return charted.alert, charted.service, charted.query


def _merged(parts: Sequence[dict[str, series.AlertTrace] | None]) -> dict[str, series.AlertTrace] | None:
    """The ``ALERTS`` traces of several queries as one answer: None when any went unanswered
    (as the one query over all the names would have)."""
    merged: dict[str, series.AlertTrace] = {}
    for part in parts:
        if part is None:
            return None
        merged.update(part)
    return merged


def _with_series(broken: tuple[BrokenSlo, ...], charted: Sequence[series.Charted],
                 slis: Sequence[SliSeries]) -> tuple[BrokenSlo, ...]:
    """The breaches the checks saw, with the worst value their series reached, and the
    SLIs that crossed their threshold when no check was looking."""
    found = {(b.alert, b.service): b for b in broken}
    for c, s in zip(charted, slis, strict=True):
        worst = series.worst_value(s, c.comparison)
        key = (c.alert, c.service)
        seen = found.get(key)
        if seen is not None and worst is not None and c.comparison is not None:
            if seen.value is None or c.comparison.margin(worst) < c.comparison.margin(seen.value):
                found[key] = dataclasses.replace(seen, value=worst)
        elif seen is None and (worst is not None or (c.comparison is None and s.points)):
            found[key] = BrokenSlo(alert=c.alert, service=c.service, value=worst, op=s.op,
                                   threshold=s.threshold)
    return tuple(found.values())


def _broken_from_checks(outcome: StepResult, conditions: Sequence[Condition]) -> tuple[BrokenSlo, ...]:
    """The breach that halted first, then every other condition the watcher or the
    recovery check found not met."""
    checks = _unmet((*outcome.during, *outcome.after))
    halt = outcome.halt
    checks.sort(key=lambda c: halt is None or _label(c) != halt.condition)  # stable: halt first
    found: dict[tuple[str, str | None], BrokenSlo] = {}
    for c in checks:
        found.setdefault((c.alert, c.service), BrokenSlo(
            alert=c.alert, service=c.service, value=c.value, threshold=c.threshold,
            op=_op(c.alert, conditions)))
    return tuple(found.values())


def _label(check: HypothesisCheck) -> str:
    """As ``Condition.label``, which the halt record names."""
    return check.alert if check.service is None else f"{check.alert} ({check.service})"


def _op(alert: str, conditions: Sequence[Condition]) -> str | None:
    for c in conditions:
        if c.alert == alert:
            found = comparison(c.expr)
            return found.op if found else None
    return None


def _timeline(step: Step, outcome: StepResult, observed: Observation, *, fallback: datetime) -> StepTimeline:
    at = outcome.started_at or fallback
    events = list(outcome.events) + list(observed.events)
    if step.refusal and outcome.verdict.value == "skipped":
        events.append(TimelineEvent(at=at, kind=EventKind.REFUSED, text=outcome.reason))
    elif outcome.verdict.value == "skipped" and not outcome.events:
        events.append(TimelineEvent(at=at, kind=EventKind.SKIPPED, text=outcome.reason))
    elif outcome.verdict.value == "baseline-not-met":
        events.append(TimelineEvent(at=outcome.ended_at or at, kind=EventKind.BASELINE, text=outcome.reason))
    if outcome.verdict.value == "error":
        events.append(TimelineEvent(at=outcome.ended_at or at, kind=EventKind.ERROR, text=outcome.reason))
    return StepTimeline(step=step.name, events=tuple(sorted(events, key=lambda e: e.at)))


def _check(step: Step, outcome: StepResult, observed: Observation, *, gameday: GameDay,
           by_name: dict[str, AlertRule]) -> tuple[StepCheck, StepEvidence]:
    window = _fault_window(outcome)
    halt = outcome.halt
    removed = window.end
    latency = None
    if halt is not None and halt.breach_at is not None and halt.removed_at is not None:
        latency = round((halt.removed_at - halt.breach_at).total_seconds(), 3)
    recovered_at = None
    if removed is not None and outcome.recovery_s is not None:
        recovered_at = removed + timedelta(seconds=outcome.recovery_s)
    evidence = _evidence(step, outcome, observed, gameday=gameday, by_name=by_name, latency=latency)
    findings = find_all(evidence)
    check = StepCheck(
        step=step.name, verdict=outcome.verdict, reason=outcome.reason, fault_window=window,
        breach_at=halt.breach_at if halt else None, detected_at=halt.detected_at if halt else None,
        removed_at=removed, recovered_at=recovered_at, halt_latency_s=latency, recovery_s=outcome.recovery_s,
        recovery_target_s=gameday.recovery_target_s, slis=observed.slis, detection=observed.detection,
        findings=findings,
    )
    return check, evidence


def _evidence(step: Step, outcome: StepResult, observed: Observation, *, gameday: GameDay,
              by_name: dict[str, AlertRule], latency: float | None) -> StepEvidence:
    catalog = gameday.catalog
    owners = {s.name: s.owner for s in catalog.services}
    owners.setdefault(step.service.name, step.service.owner)
    rules = list(by_name.values())
    own = tuple(b.rule.name for b in bind_alerts(step.service, rules, catalog) if b.service is not None)
    not_recovered = any(e.kind is EventKind.NOT_RECOVERED for e in outcome.events)
    interval = min((r.interval_s for r in rules if r.interval_s), default=series.DEFAULT_STEP_S)
    return StepEvidence(
        experiment=step.experiment.name, service=step.service.name, owners=owners,
        action=step.fault.action.value, scope=_scope(step), detail=_detail(step),
        duration=step.fault.duration,
        verdict=outcome.verdict, refusal=step.refusal, inject_error=outcome.inject_error,
        broken=observed.broken if outcome.verdict in BREACHED else (),
        baseline_unmet=tuple(UnmetCheck(alert=c.alert, service=c.service, reason=c.reason)
                             for c in _unmet(outcome.before)),
        detection=observed.detection, own_alerts=own, halt_latency_s=latency, recovery_s=outcome.recovery_s,
        recovered=False if not_recovered else (True if outcome.recovery_s is not None else None),
        recovery_target_s=gameday.recovery_target_s, recovery_timeout_s=gameday.recovery_timeout_s,
        slack_s=2 * interval,
    )


# --- what the run says about each experiment ---------------------------------------------

_RANK = {Judgement.FAILED: 2, Judgement.INCONCLUSIVE: 1, Judgement.HELD: 0}


def _judgement(step: Step, outcome: StepResult) -> Judgement | None:
    verdict = outcome.verdict.value
    if verdict == "held":
        return Judgement.HELD
    if verdict in ("halted", "deviated", "baseline-not-met"):
        return Judgement.FAILED
    if verdict == "error" or step.refusal:
        return Judgement.INCONCLUSIVE
    return None  # skipped by the window, the gate, a dry run or a signal: nothing to say


def _groups(judged: Sequence[tuple[Step, StepResult, StepEvidence]]) -> tuple[GroupOutcome, ...]:
    """One outcome per experiment and service (ramp levels together): failed if any level
    failed, held only if every level that ran held."""
    groups: dict[tuple[str, str], GroupOutcome] = {}
    for step, outcome, evidence in judged:
        judgement = _judgement(step, outcome)
        if judgement is None:
            continue
        key = (step.experiment.name, step.service.name)
        findings = find_all(evidence)
        old = groups.get(key)
        if old is not None:
            judgement = max(judgement, old.judgement, key=_RANK.__getitem__)
            findings = (*old.findings, *findings)
        groups[key] = GroupOutcome(experiment=key[0], target=key[1], judgement=judgement, findings=findings)
    return tuple(groups.values())
