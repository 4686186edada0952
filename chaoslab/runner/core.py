"""Running a plan: orphans first, then every step in plan order with its gate, under
SIGINT/SIGTERM handling, into a ``RunResult``.

The run record itself (run.json, reports) is written by the caller from the result;
the runner writes only the Chaos Toolkit journals, as each step ends.
"""

from __future__ import annotations

import contextlib
import logging
import platform
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from chaoslab.errors import BackendError, CleanupError
from chaoslab.model import AlertRule, FaultHandle, Plan, RunResult, SilenceSpec, StepResult, Verdict
from chaoslab.ports import ChaosBackend, MetricsSource, SilencePort
from chaoslab.runner.events import (
    RUN_FINISHED,
    RUN_STARTED,
    SIGNAL,
    STEP_FINISHED,
    STEP_STARTED,
    WARNING,
    Emitter,
    EventSink,
)
from chaoslab.runner.preload import Preload, experiment_modules
from chaoslab.runner.signals import RunPhase, SignalWatch
from chaoslab.runner.step import PreparedStep, RunContext, prepare, refusal, run_step, skeleton
from chaoslab.runner.verdict import aggregate_verdict, skip_reason, unused_run_id
from chaoslab.settings import Settings
from chaoslab.threads import start_threads

logger = logging.getLogger(__name__)

BASELINE_THREADS = 5


def run_plan(
    plan: Plan,
    *,
    settings: Settings,
    backend: ChaosBackend,
    metrics: MetricsSource,
    rules: Sequence[AlertRule],
    events: EventSink | None = None,
    now: Callable[[], datetime] | None = None,
    target: str | None = None,
    dry_run: bool = False,
    cleanup_orphans: bool = False,
    run_id: str | None = None,
    signals: SignalWatch | None = None,
    silences: SilencePort | None = None,
) -> RunResult:
    """Run every step of ``plan`` in order (see docs/running.md for the lifecycle).

    ``signals``: a ``SignalWatch`` the caller installed already (so that a signal before or
    after the run is handled too); without one, SIGINT/SIGTERM are handled for the run only.

    ``silences``: an Alertmanager; the alerts each fault may trip are silenced around its
    step as the game day's ``silence`` says (scope target by default), and every silence
    is expired before this returns.

    Raises PlanError before anything runs when a step's hypothesis cannot be built, and
    CleanupError when orphans from an earlier run cannot be removed. Everything that
    happens once steps run is recorded in the result instead: a breach is a verdict, an
    unreachable backend an ``error`` step."""
    clock = now or (lambda: datetime.now(UTC))
    started = datetime.now(UTC)
    reports = Path(settings.reports_dir)
    run_id = run_id or unused_run_id(lambda candidate: (reports / candidate).exists(), started)
    target = target or backend.name
    emit = Emitter(events)
    scope = contextlib.nullcontext() if signals is not None else None
    signals = signals or SignalWatch()
    if signals.on_signal is None:
        signals.on_signal = lambda name: emit(SIGNAL, f"{name} received: removing the fault", phase="signal")
    prepared = [
        prepare(step, gameday=plan.gameday, rules=rules, target=target, run_id=run_id,
                settings=settings, prometheus_url=metrics.url)
        for step in plan.steps
    ]
    run_dir = reports / run_id
    silencer = None
    if silences is not None and not dry_run:
        from chaoslab.runner.silencing import Silencer  # only with an Alertmanager

        silencer = Silencer(port=silences, spec=plan.gameday.silence or SilenceSpec(), run_id=run_id,
                            rules=rules, catalog=plan.gameday.catalog, ttl_s=settings.silence_ttl_s,
                            renew_s=settings.silence_renew_s, warn=lambda text: emit(WARNING, text))
    # The threads the first baseline asks through start now, while nothing else runs: the
    # preload, the preflight, the pod listing, the alerts and a batch query.
    start_threads(BASELINE_THREADS)
    # chaoslib and the steps' activities load while the run waits on its first checks. So
    # does the platform chaoslib's journal records: on Linux, platform.platform() runs
    # `uname -p` in a child process (about 2 ms), once per process.
    preload = None if dry_run else Preload(experiment_modules(p.experiment for p in prepared),
                                           then=(platform.platform,)).start()
    ctx = RunContext(run_id=run_id, gameday=plan.gameday, settings=settings, backend=backend, metrics=metrics,
                     target=target, run_dir=run_dir, emit=emit, signals=signals,
                     clock=clock, dry_run=dry_run, silencer=silencer, preload=preload)
    emit.total = len(prepared)
    count = f"{len(prepared)} step" + ("" if len(prepared) == 1 else "s")
    emit(RUN_STARTED, f"run {run_id}: {plan.gameday.name}, {count} on {target}{' (dry run)' * dry_run}")
    with scope or signals.installed():
        handle_orphans(
            backend, emit=emit, remove=cleanup_orphans and not dry_run, timeout=settings.remove_timeout_s
        )
        try:
            results = _run_steps(ctx, plan, prepared)
        finally:
            if silencer is not None:
                silencer.close()
        signals.enter(RunPhase.FINISHING)
        remaining = _remaining(backend, run_id, results)
    # An interrupted run is never a pass, whatever its steps managed before the signal.
    verdict = Verdict.ERROR if signals.received else aggregate_verdict(results)
    result = RunResult(
        run_id=run_id, gameday=plan.gameday.name, target=target,
        started_at=started, ended_at=datetime.now(UTC),
        verdict=verdict, steps=tuple(results), interrupted=signals.received,
        remaining=remaining, dry_run=dry_run, directory=run_dir,
        interrupted_phase=signals.interrupted_phase,
        silences=silencer.records if silencer is not None else (),
    )
    emit(RUN_FINISHED, f"run {run_id}: {result.verdict.value}", run_result=result)
    return result


def _run_steps(ctx: RunContext, plan: Plan, prepared: Sequence[PreparedStep]) -> list[StepResult]:
    results: list[StepResult] = []
    for index, item in enumerate(prepared, start=1):
        step = item.step
        ctx.emit.step, ctx.emit.stage, ctx.emit.index = step.name, step.service.tier, index
        # A dry run changes nothing, so every step is checked whatever came before.
        gated = None if ctx.dry_run else skip_reason(results, tier=step.service.tier, gate=plan.gameday.gate)
        why_not = _interrupted(ctx) or gated or refusal(ctx, step)
        if why_not is not None:
            result = skeleton(step, reason=why_not)
        else:
            ctx.emit(STEP_STARTED, f"{step.name}: {step.fault.kind.value} {step.fault.action.value} "
                     f"on {step.service.name}")
            result = _guarded_step(ctx, item)
        results.append(result)
        ctx.signals.enter(RunPhase.BETWEEN_STEPS if index < len(prepared) else RunPhase.FINISHING)
        ctx.emit(STEP_FINISHED, f"{step.name}: {result.verdict.value} — {result.reason}", step_result=result)
    return results


def _interrupted(ctx: RunContext) -> str | None:
    return f"run interrupted by {ctx.signals.received}" if ctx.signals.received else None


def _guarded_step(ctx: RunContext, item: PreparedStep) -> StepResult:
    """Run a step; an unexpected exception becomes an error verdict, and the backend is
    asked once more to remove whatever this run left."""
    try:
        return run_step(ctx, item)
    except Exception as exc:  # the run's boundary: record the step, clean up, write run.json
        logger.exception("step %s failed", item.step.name)
        reason = f"{type(exc).__name__}: {exc}"
        try:
            for handle in ctx.backend.list_faults(run_id=ctx.run_id):
                ctx.backend.remove(handle, timeout=ctx.settings.remove_timeout_s)
        except (BackendError, CleanupError) as cleanup:
            reason += f"; cleanup failed: {cleanup}"
        return skeleton(item.step, verdict=Verdict.ERROR, reason=reason)


def handle_orphans(
    backend: ChaosBackend, *, emit: Emitter, remove: bool, timeout: float
) -> list[FaultHandle]:
    """Faults left by earlier runs that died: warn about them, or remove them."""
    try:
        orphans = list(backend.list_faults())
    except BackendError as exc:
        emit(WARNING, f"cannot list faults left by earlier runs: {exc}")
        return []
    for handle in orphans:
        run = f" (run {handle.run_id})" if handle.run_id else ""
        if remove:
            emit(WARNING, f"removing {handle.ref}{run}, left by an earlier run")
            backend.remove(handle, timeout=timeout)  # CleanupError: exit 4 before anything is injected
        else:
            emit(WARNING, f"{handle.ref}{run} was left by an earlier run; remove it with "
                 "`chaoslab cleanup` or run with --cleanup-orphans")
    return orphans


def _remaining(backend: ChaosBackend, run_id: str, results: Sequence[StepResult]) -> tuple[str, ...]:
    """What of this run may remain: the backend's view, or every fault a failed cleanup named."""
    try:
        left = tuple(h.ref for h in backend.list_faults(run_id=run_id))
    except BackendError as exc:
        logger.warning("cannot check what remains: %s", exc)
        left = ()
    failed = tuple(f"{r.step}: {r.reason}" for r in results if r.reason.startswith("cleanup failed"))
    return left or failed
