"""One step of a run: window and safety, baseline, inject + hold under the SLO watcher,
halt, removal check, recovery — and its verdict.

The fault is injected, held and removed by the step's exported Chaos Toolkit experiment,
run through ``chaoslib`` in the main thread; chaoslab's control (``runner.control``)
ends the hold on a halt and chaoslib's ``always`` rollback strategy removes the fault.
Afterwards the runner checks through the backend that nothing of the run remains.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.ctk import PORT_TARGET, TARGETS, build_ctk_experiment
from chaoslab.errors import BackendError, CleanupError
from chaoslab.halt import reset_halt
from chaoslab.model import (
    AlertRule,
    FaultRequest,
    GameDay,
    HaltRecord,
    HypothesisCheck,
    PodAction,
    PodReport,
    Step,
    StepResult,
    Verdict,
    parse_go_duration,
)
from chaoslab.plan import window_allows
from chaoslab.ports import ChaosBackend, MetricsSource
from chaoslab.prometheus.burnrate import describe_leg_halt
from chaoslab.prometheus.hypothesis import SECRETS_SCOPE, build_hypothesis
from chaoslab.prometheus.probes import answers_from
from chaoslab.runner.control import CONTROL, StepSession, active
from chaoslab.runner.events import PHASE, TICK, Emitter
from chaoslab.runner.guards import GuardLog, baseline_reason
from chaoslab.runner.legs import fast_legs, hot_fast_legs, leg_halt
from chaoslab.runner.outcome import Outcome, decide
from chaoslab.runner.preload import Preload
from chaoslab.runner.readiness import baseline_pods, recovered_pods
from chaoslab.runner.recent import RecentChecks
from chaoslab.runner.signals import RunPhase, SignalWatch
from chaoslab.runner.watchdog import RemovalWatchdog
from chaoslab.settings import Settings
from chaoslab.threads import shared_pool
from chaoslab.watch import BREACH_NO_DATA, Breach, Condition, Watcher, build_conditions, evaluate

if TYPE_CHECKING:
    from chaoslab.runner.recovery import FirstCheck
    from chaoslab.runner.silencing import Silencer

logger = logging.getLogger(__name__)

FIRST_WATCH_AFTER_S = 0.1  # the watcher's first evaluation, after it starts (see _execute)

# Modules a step needs only once its fault is removed (the journal, recovery, the event
# trace) are imported where they are used: a run loads them while the fault is held
# (app/warmup.py), not before injecting it. The same for the "port" target's actions.


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    """Everything a step needs from its run."""

    run_id: str
    gameday: GameDay
    settings: Settings
    backend: ChaosBackend
    metrics: MetricsSource
    target: str
    run_dir: Path
    emit: Emitter
    signals: SignalWatch
    clock: Callable[[], datetime]
    dry_run: bool = False
    silencer: Silencer | None = None  # Alertmanager silences around each step's fault
    preload: Preload | None = None  # chaoslib and the activities, imported while the run waits


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedStep:
    """A step with its Chaos Toolkit experiment and its halt conditions, built before
    anything runs so that a step that cannot be evaluated stops the run up front."""

    step: Step
    experiment: dict[str, Any]
    conditions: tuple[Condition, ...]


def prepare(
    step: Step, *, gameday: GameDay, rules: Sequence[AlertRule], target: str, run_id: str,
    settings: Settings, prometheus_url: str,
) -> PreparedStep:
    """Build the step's Chaos Toolkit experiment (with chaoslab's control) and its halt
    conditions. Raises PlanError when no alert binds to the service: a step whose
    hypothesis cannot be evaluated must not run."""
    hypothesis = build_hypothesis(step.service, rules, gameday.catalog)
    experiment = build_ctk_experiment(
        experiment=step.experiment, service=step.service, prometheus_url=prometheus_url,
        target=target if target in TARGETS else PORT_TARGET,  # any other backend: through the port
        hypothesis=hypothesis, run_id=run_id, step_name=step.name,
        sandbox_dir=str(settings.sandbox_state_dir) if settings.sandbox_state_dir else None,
        inject_timeout_s=settings.inject_timeout_s, remove_timeout_s=settings.remove_timeout_s,
    )
    experiment.setdefault("controls", []).append(copy.deepcopy(CONTROL))
    if settings.prometheus_token:
        # The probes' own Chaos Toolkit secret; journals are redacted before they are written.
        experiment["secrets"] = {SECRETS_SCOPE: {"prometheus_token": settings.prometheus_token}}
    if target not in TARGETS:
        from chaoslab.runner.port_actions import through_port

        experiment = through_port(experiment)
    conditions = build_conditions(step.service, rules, gameday.catalog)
    return PreparedStep(step=step, experiment=experiment, conditions=conditions)


def skeleton(step: Step, *, verdict: Verdict = Verdict.SKIPPED, reason: str = "") -> StepResult:
    fault = step.fault
    return StepResult(
        step=step.name, experiment=step.experiment.name, service=step.service.name, tier=step.service.tier,
        kind=fault.kind, action=fault.action.value, mode=fault.mode, value=fault.value,
        verdict=verdict, reason=reason,
    )


def refusal(ctx: RunContext, step: Step) -> str | None:
    """Why the step may not run now: a safety rule (found at plan time) or the window."""
    if step.refusal:
        return f"refused by safety rules: {step.refusal}"
    allowed, why = window_allows(ctx.gameday.window, ctx.clock())
    return None if allowed else why


def precheck(
    ctx: RunContext, prepared: PreparedStep, *, pods: list[str] | None = None
) -> tuple[tuple[HypothesisCheck, ...], Outcome | None, PodReport | None]:
    """The whole system's health before anything is injected, the preflight, and the
    target's pods when readiness is on.

    Returns the checks, the outcome that says why when the step must not go on, and the
    pods. ``pods`` receives the running pods the selector matched. The preflight and the
    pod listing only read, so they are asked while Prometheus answers; they count once
    the baseline is met, in that order."""
    step = prepared.step
    request = _request(ctx, step)
    aside = shared_pool()
    asked = aside.submit(ctx.backend.preflight, request)
    listed = aside.submit(baseline_pods, ctx.backend, step, gameday=ctx.gameday, request=request)
    checks, stop = _baseline(ctx, prepared)
    asking: list[Future[Any]] = [asked, listed]
    wait(asking)  # nothing of the step's is still asking when it goes on
    if stop is not None:
        return checks, stop, None
    try:
        found = asked.result()
    except BackendError as exc:
        return checks, Outcome(inject_error=f"preflight: {exc}"), None
    report, stop = listed.result()
    logger.info("%s: selector matches %d pods, mode hits %d", step.name, len(found.matched), found.will_hit)
    if pods is not None:
        pods.extend(found.matched)
    return checks, stop, report


def _baseline(ctx: RunContext, prepared: PreparedStep) -> tuple[tuple[HypothesisCheck, ...], Outcome | None]:
    """Every condition checked once, and the outcome that stops the step when one is not met."""
    # The fast legs of multi-window alerts are checked in the same requests as the rest.
    fast = fast_legs(prepared.conditions)
    answered = evaluate(ctx.metrics, [*prepared.conditions, *fast])
    checks, legs = answered[: len(prepared.conditions)], answered[len(prepared.conditions) :]
    if any(c.no_data for c in checks):
        reason = next(c.reason for c in checks if c.no_data)
        return checks, Outcome(ctk_error=f"cannot evaluate the hypothesis: {reason}")
    why = baseline_reason(prepared.conditions, checks)
    if why:
        return checks, Outcome(baseline_met=False, baseline_reason=why)
    hot = hot_fast_legs(fast, legs)
    if hot:
        return checks, Outcome(baseline_met=False, baseline_reason=hot)
    return checks, None


def run_step(ctx: RunContext, prepared: PreparedStep) -> StepResult:
    step = prepared.step
    started = datetime.now(UTC)
    result = dataclasses.replace(skeleton(step), started_at=started)
    reset_halt()
    ctx.signals.enter(RunPhase.BASELINE)
    ctx.emit(PHASE, "checking every SLO alert of the system", phase="precheck")
    matched: list[str] = []
    before, stop, pods = precheck(ctx, prepared, pods=matched)
    result = dataclasses.replace(result, pods=pods)
    guards = GuardLog()
    guards.observe(before)
    if stop is None and not ctx.dry_run and ctx.silencer is not None:
        why_not = ctx.silencer.begin(step)
        stop = Outcome(ctk_error=why_not) if why_not else None
    if stop is not None or ctx.dry_run:
        outcome = stop or Outcome()
        verdict, reason = decide(outcome)
        if ctx.dry_run and stop is None:
            verdict, reason = Verdict.SKIPPED, "dry run: baseline met and preflight passed; nothing injected"
        return dataclasses.replace(result, verdict=verdict, reason=reason, before=before,
                                   ended_at=datetime.now(UTC), guards=guards.checks(),
                                   inject_error=outcome.inject_error)
    try:
        return _execute(ctx, prepared, result, before=before, guards=guards, pods_before=tuple(matched))
    finally:
        if ctx.silencer is not None:
            ctx.silencer.end(step)


def _request(ctx: RunContext, step: Step) -> FaultRequest:
    return FaultRequest(experiment=step.experiment.name, step=step.name, service=step.service,
                        fault=step.fault, run_id=ctx.run_id)


def _recent(ctx: RunContext, prepared: PreparedStep, before: tuple[HypothesisCheck, ...]) -> RecentChecks:
    """The baseline's answers, kept fresh by the watcher, for the step's own probes."""
    recent = RecentChecks(url=ctx.metrics.url, max_age=max(0.5, 2 * ctx.settings.watch_interval_s))
    recent.update(prepared.conditions, before)
    return recent


def _execute(
    ctx: RunContext, prepared: PreparedStep, result: StepResult, *, before: tuple[HypothesisCheck, ...],
    guards: GuardLog, pods_before: tuple[str, ...] = (),
) -> StepResult:
    step = prepared.step

    recent = _recent(ctx, prepared, before)

    def on_tick(checks: tuple[HypothesisCheck, ...]) -> None:
        guards.observe(checks)
        recent.update(prepared.conditions, checks)
        ctx.emit(TICK, checks=checks)

    # The watch starts as the fault is being created, and its first evaluation comes a
    # moment later: the baseline has just checked every condition, and a fault that does
    # not exist yet cannot show in Prometheus (that takes a scrape). Asked at once, it
    # would only compete with the injection for the interpreter.
    watcher = Watcher(
        ctx.metrics, prepared.conditions, interval=ctx.settings.watch_interval_s,
        on_tick=on_tick,
        on_breach=lambda b: ctx.emit(PHASE, f"halt: {b.describe()}", phase="halt"),
        first_after=min(FIRST_WATCH_AFTER_S, ctx.settings.watch_interval_s),
    )
    watchdog = RemovalWatchdog(ctx.backend, run_id=ctx.run_id, timeout=ctx.settings.remove_timeout_s,
                               stop_reason=lambda: _stop_reason(ctx, watcher))
    first: list[FirstCheck] = []  # the recovery's first check, once the rollback removed the fault

    def removed(at: datetime) -> None:
        # Asked as the rollback removes the fault, while the experiment ends and the journal
        # is written (unless there is nothing to recover).
        breach = watcher.breach
        if first or ctx.signals.received or (breach is not None and breach.kind == BREACH_NO_DATA):
            return
        from chaoslab.runner.recovery import FirstCheck

        check = FirstCheck(ctx.metrics, prepared.conditions)
        check.start(watchdog.removed_at or at)  # a halt's removal is the watchdog's
        first.append(check)

    session = StepSession(watcher=watcher, signals=ctx.signals, watchdog=watchdog,
                          on_phase=_phase_reporter(ctx, step), on_removed=removed, backend=ctx.backend,
                          request=_request(ctx, step))
    with answers_from(recent.lookup, recent.guards):
        journal_doc, ctk_error = _run_ctk(ctx, prepared, session)
    watcher.stop(wait=10.0)
    watchdog.join(timeout=ctx.settings.remove_timeout_s + 30.0)
    if watchdog.removed_at is not None:
        session.removed_at = watchdog.removed_at  # gone then, whatever the rollback found later
    from chaoslab.runner import journal as journals
    from chaoslab.runner.trace import step_events

    journal_rel = None
    if journal_doc is not None:
        journal_rel = f"journals/{step.name}.json"
        journals.write_journal(journal_doc, ctx.run_dir / journal_rel,
                               secrets=(ctx.settings.prometheus_token,))
    cleanup_error = _ensure_removed(ctx, session)
    breach = watcher.breach
    outcome = _outcome(session, journal_doc or {}, breach=breach, ctk_error=ctk_error,
                       cleanup_error=cleanup_error, conditions=prepared.conditions)
    halt = _halt_record(ctx, breach, session, since=result.started_at or datetime.now(UTC))
    if halt is not None and halt.leg is not None:  # say which leg, not "the expression returns data"
        outcome = dataclasses.replace(outcome, breach=f"{halt.condition}: {describe_leg_halt(halt.leg)}")
    outcome, after = _recover(ctx, prepared, session, outcome, first=first[0] if first else None)
    guards.observe(after)
    outcome, pods = _recover_pods(ctx, prepared, session, outcome, result.pods)
    verdict, reason = decide(outcome)
    ended = datetime.now(UTC)
    recovery_s = outcome.recovery_s if outcome.recovered else None
    events = step_events(
        step, marks=session.marks, inject_output=session.inject_output, injected=session.injected, halt=halt,
        removed_at=session.removed_at, recovery_s=recovery_s, recovery_reason=outcome.recovery_reason,
        ended_at=ended, pods_before=pods_before, pods_after=_pods_after(ctx, step, session, pods),
    )
    return dataclasses.replace(
        result, verdict=verdict, reason=reason, ended_at=ended, halt=halt,
        recovery_s=recovery_s,
        before=before,
        during=breach_checks(breach, watcher.latest()), after=after, journal=journal_rel,
        injected=session.injected, guards=guards.checks(), failed_attempts=_failed_attempts(session),
        events=events, inject_error=session.inject_error, pods=pods,
    )


def _failed_attempts(session: StepSession) -> tuple[str, ...]:
    """The injection attempts the backend saw fail before the fault took hold."""
    found = (session.inject_output or {}).get("failed_attempts") or ()
    return tuple(str(item) for item in found) if isinstance(found, list | tuple) else ()



def _pods_after(
    ctx: RunContext, step: Step, session: StepSession, pods: PodReport | None
) -> tuple[str, ...] | None:
    """The pods the selector matches once the step is over, to tell which were replaced
    (pod-kill only): those the readiness check has just listed, else one more preflight.
    None when not known."""
    if not session.injected or step.fault.action is not PodAction.POD_KILL:
        return None
    if pods is not None and pods.after:
        return tuple(p.ref for p in pods.after)
    try:
        return tuple(ctx.backend.preflight(_request(ctx, step)).matched)
    except BackendError as exc:
        logger.info("%s: cannot list the pods after the step: %s", step.name, exc)
        return None


def _recover_pods(
    ctx: RunContext, prepared: PreparedStep, session: StepSession, outcome: Outcome, pods: PodReport | None
) -> tuple[Outcome, PodReport | None]:
    """With readiness on: as many of the target's pods Running and Ready again as before."""
    if pods is None or not session.injected or outcome.signal or outcome.cleanup_error \
            or outcome.breach_kind == BREACH_NO_DATA:
        return outcome, pods
    ctx.emit(PHASE, "waiting for the target's pods to be Running and Ready again", phase="recover")
    return recovered_pods(ctx.backend, _request(ctx, prepared.step), outcome, before=pods,
                          since=session.removed_at or datetime.now(UTC),
                          timeout=ctx.gameday.recovery_timeout_s, stop=ctx.signals.event)


def _recover(
    ctx: RunContext, prepared: PreparedStep, session: StepSession, outcome: Outcome, *,
    first: FirstCheck | None = None,
) -> tuple[Outcome, tuple[HypothesisCheck, ...]]:
    """Wait for every condition to hold again after the removal (when there is something
    to recover from and a way to observe it). ``first``: its first check, asked already."""
    unobservable = outcome.breach_kind == BREACH_NO_DATA
    if not session.injected or outcome.signal or outcome.cleanup_error or unobservable:
        return outcome, ()
    ctx.signals.enter(RunPhase.RECOVERY)
    ctx.emit(PHASE, "waiting for the hypothesis to hold again", phase="recover")
    from chaoslab.runner.recovery import wait_for_recovery

    recovery = wait_for_recovery(
        ctx.metrics, prepared.conditions, since=session.removed_at or datetime.now(UTC),
        timeout=ctx.gameday.recovery_timeout_s, interval=max(0.5, ctx.settings.watch_interval_s),
        stop=ctx.signals.event, first=first,
    )
    return dataclasses.replace(
        outcome, recovered=recovery.recovered, recovery_s=recovery.seconds,
        recovery_reason=recovery.reason, recovery_no_data=recovery.no_data,
        signal=outcome.signal or ctx.signals.received,
    ), recovery.checks


def _stop_reason(ctx: RunContext, watcher: Watcher) -> str | None:
    """Why the fault must go now (for the removal watchdog): a signal or a breach."""
    if ctx.signals.received:
        return f"{ctx.signals.received} received"
    breach = watcher.breach
    return f"halt: {breach.describe()}" if breach is not None else None


def breach_checks(breach: Breach | None, latest: tuple[HypothesisCheck, ...]) -> tuple[HypothesisCheck, ...]:
    """What the watcher saw last: every condition's margin, the breaching one included."""
    if breach is not None and breach.check not in latest:
        return (*latest, breach.check)
    return latest


# The control's phases of a step, as an interruption records them.
_RUN_PHASES = {"baseline": RunPhase.BASELINE, "inject": RunPhase.INJECTING, "hold": RunPhase.HOLDING,
               "verify": RunPhase.HOLDING, "remove": RunPhase.REMOVAL}


def _phase_reporter(ctx: RunContext, step: Step) -> Callable[[str], None]:
    hold_s = parse_go_duration(step.fault.duration)
    messages = {"baseline": "checking the steady-state hypothesis", "inject": "injecting the fault",
                "hold": "holding the fault", "remove": "removing the fault",
                "verify": "checking the hypothesis with the fault in place"}

    def report(phase: str) -> None:
        ctx.signals.enter(_RUN_PHASES.get(phase, ctx.signals.phase))
        if phase == "hold":
            ctx.emit(PHASE, messages[phase], phase=phase, hold_s=hold_s, hold_started=time.monotonic())
        else:
            ctx.emit(PHASE, messages.get(phase, phase), phase=phase)

    return report


def _run_ctk(
    ctx: RunContext, prepared: PreparedStep, session: StepSession
) -> tuple[dict[str, Any] | None, str | None]:
    """Run the step's experiment through chaoslib (main thread). Returns the journal and,
    when chaoslib itself failed, why."""
    if ctx.preload is not None:
        ctx.preload.wait()
    from chaoslib.exceptions import ChaosException, InterruptExecution
    from chaoslib.experiment import run_experiment
    from chaoslib.types import Strategy

    experiment = copy.deepcopy(prepared.experiment)
    # chaoslib reads the rollback strategy from its settings, not from the experiment.
    settings = {"runtime": copy.deepcopy(experiment.get("runtime") or {})}
    try:
        with active(session):
            journal = run_experiment(experiment, settings=settings, strategy=Strategy.DEFAULT)
    except InterruptExecution as exc:
        # chaoslib's own SIGTERM handler fired before chaoslab's control was in place.
        ctx.signals.deliver("SIGTERM")
        return None, f"interrupted before the experiment started: {exc}"
    except (ChaosException, ValueError, TypeError, KeyError, OSError) as exc:
        logger.exception("chaoslib failed on step %s", prepared.step.name)
        return None, f"{type(exc).__name__}: {exc}"
    status = journal.get("status")
    if status == "aborted":
        from chaoslab.runner import journal as journals

        return journal, journals.method_error(journal) or "Chaos Toolkit aborted the experiment"
    return journal, None


def _outcome(
    session: StepSession, journal: Mapping[str, Any], *, breach: Breach | None, ctk_error: str | None,
    cleanup_error: str | None, conditions: Sequence[Condition],
) -> Outcome:
    from chaoslab.runner import journal as journals

    before = journals.baseline_met(journal)
    before_checks = journals.probe_checks(journals.steady_state(journal, "before"), conditions)
    after_state = journals.steady_state(journal, "after")
    after_checks = journals.probe_checks(after_state, conditions)
    return Outcome(
        injected=session.injected,
        signal=session.signals.received,
        breach_kind=breach.kind if breach else None,
        breach=breach.describe() if breach else None,
        inject_error=session.inject_error,
        ctk_error=ctk_error,
        # No hypothesis in the journal: the runner's own baseline check stands.
        baseline_met=True if before is None and ctk_error is None else before,
        baseline_reason="; ".join(f"{c.alert}: {c.reason}" for c in before_checks if not c.met),
        after_met=None if after_state is None else after_state.get("steady_state_met"),
        after_reason="; ".join(f"{c.alert}: {c.reason}" for c in after_checks if not c.met),
        cleanup_error=cleanup_error,
        breach_guard=breach is not None and breach.condition.guard,
    )


def _ensure_removed(ctx: RunContext, session: StepSession) -> str | None:
    """Whatever the experiment did, nothing of this run may remain: remove what is left."""
    try:
        left = ctx.backend.list_faults(run_id=ctx.run_id)
    except BackendError as exc:
        return f"cannot list what remains: {exc}"
    errors = []
    for handle in left:
        logger.warning("%s remained after the rollback: removing it", handle.ref)
        try:
            ctx.backend.remove(handle, timeout=ctx.settings.remove_timeout_s)
        except (CleanupError, BackendError) as exc:
            errors.append(f"{handle.ref}: {exc}")
    if left and not errors:
        session.removed_at = datetime.now(UTC)  # the rollback did not; this did
    return "; ".join(errors) or None


def _halt_record(
    ctx: RunContext, breach: Breach | None, session: StepSession, *, since: datetime
) -> HaltRecord | None:
    if breach is None:
        return None
    breach_at = None
    if breach.kind != "no-data":
        from chaoslab.runner.recovery import breach_time

        breach_at = breach_time(ctx.metrics, breach.condition.breach_expr, start=since,
                                end=breach.detected_at)
    return HaltRecord(condition=breach.condition.label, detected_at=breach.detected_at,
                      removed_at=session.removed_at, breach_at=breach_at, kind=breach.kind,
                      leg=leg_halt(ctx.metrics, breach, since=since))


