"""chaoslab's Chaos Toolkit control: watches the SLOs around the fault and turns a halt
into ``InterruptExecution`` so that chaoslib goes straight to the rollbacks.

chaoslib loads controls by module path and calls them with the experiment only, so the
runner hands the current step's ``StepSession`` over through this module's one slot
(process-global, like chaoslib's own controls: one experiment at a time per process).
Outside a chaoslab run the slot is empty and every hook does nothing.

Only ``InterruptExecution`` raised from a control reaches chaoslib's run loop; anything
else is swallowed. It is never raised around a rollback activity: removal always runs.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chaoslab.halt import halt_reason, halt_requested
from chaoslab.model import FaultRequest
from chaoslab.ports import ChaosBackend
from chaoslab.runner.signals import SignalWatch, quiet_handler
from chaoslab.runner.watchdog import RemovalWatchdog
from chaoslab.watch import Watcher

logger = logging.getLogger(__name__)

CONTROL_NAME = "chaoslab-runner"
CONTROL = {"name": CONTROL_NAME, "provider": {"type": "python", "module": __name__}}

INJECT_FUNC = "inject_fault"
HOLD_FUNC = "hold"
REMOVE_FUNC = "remove_fault"


@dataclass(slots=True, kw_only=True)
class StepSession:
    """What the control needs from the runner for one step, and what it records.

    Written from the main thread only (chaoslib runs controls there)."""

    watcher: Watcher
    signals: SignalWatch
    watchdog: RemovalWatchdog | None = None
    on_phase: Callable[[str], None] = lambda phase: None
    on_removed: Callable[[datetime], None] = lambda at: None  # the rollback removed the fault at ``at``
    phase: str = "baseline"
    method_started: bool = False
    injected: bool = False
    inject_output: dict[str, Any] | None = None  # what inject_fault returned (pods hit, object name)
    inject_error: str | None = None
    removed_at: datetime | None = None
    remove_error: str | None = None
    interrupted_by: str | None = None  # why the control raised InterruptExecution
    # For the "port" actions (runner.port_actions): the run's backend and this step's request.
    backend: ChaosBackend | None = None
    request: FaultRequest | None = None
    marks: list[tuple[str, datetime]] = field(default_factory=list)  # (phase, when it began), in order

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.marks.append((phase, datetime.now(UTC)))
        self.on_phase(phase)


_SESSION: list[StepSession] = []  # the one slot; see the module docstring


@contextlib.contextmanager
def active(session: StepSession) -> Iterator[StepSession]:
    """Make ``session`` the one the control hooks act on, for the block's duration."""
    _SESSION[:] = [session]
    try:
        yield session
    finally:
        _SESSION.clear()


def current_session() -> StepSession | None:
    """The step session of the experiment chaoslib is running, if any."""
    return _current()


def _current() -> StepSession | None:
    return _SESSION[0] if _SESSION else None


def _func(context: Any) -> str | None:
    if isinstance(context, dict):
        provider = context.get("provider")
        if isinstance(provider, dict):
            func = provider.get("func")
            return func if isinstance(func, str) else None
    return None


def _stop_requested(session: StepSession) -> str | None:
    if session.signals.received:
        return f"{session.signals.received} received"
    if halt_requested():
        return halt_reason() or "halt requested"
    return None


def _interrupt(session: StepSession, reason: str) -> None:
    from chaoslib.exceptions import InterruptExecution  # chaoslib is imported lazily, as everywhere

    session.interrupted_by = reason
    raise InterruptExecution(f"chaoslab: {reason}")


# --- chaoslib hooks ------------------------------------------------------------


def configure_control(**kwargs: Any) -> None:
    """Called inside chaoslib's signal scope: put back chaoslab's quiet SIGTERM handler
    (chaoslib's would raise inside whatever activity is running)."""
    if _current() is not None:
        signal.signal(signal.SIGTERM, quiet_handler)


def before_hypothesis_control(context: Any, **kwargs: Any) -> None:
    session = _current()
    if session is None:
        return
    session.enter("verify" if session.method_started else "baseline")
    reason = _stop_requested(session)
    if reason and not session.method_started:
        _interrupt(session, reason)


def before_method_control(context: Any, **kwargs: Any) -> None:
    session = _current()
    if session is None:
        return
    session.method_started = True
    reason = _stop_requested(session)
    if reason:
        _interrupt(session, reason)


def before_activity_control(context: Any, **kwargs: Any) -> None:
    session = _current()
    if session is None:
        return
    func = _func(context)
    if func == INJECT_FUNC:
        reason = _stop_requested(session)
        if reason:
            _interrupt(session, reason)
        session.enter("inject")
        # Watch from the moment the fault is being created: it may bite before it is confirmed.
        session.watcher.start()
        if session.watchdog is not None:
            session.watchdog.start()
    elif func == HOLD_FUNC:
        reason = _stop_requested(session)
        if reason:
            _interrupt(session, reason)
        session.enter("hold")
    elif func == REMOVE_FUNC:
        _stop_watching(session)
        session.enter("remove")
    elif session.phase == "verify":
        # A probe of the hypothesis checked with the fault in place: on a stop, skip the
        # remaining probes and go to the rollback.
        reason = _stop_requested(session)
        if reason:
            _interrupt(session, reason)


def after_activity_control(context: Any, state: Any = None, **kwargs: Any) -> None:
    session = _current()
    if session is None:
        return
    func = _func(context)
    run = state if isinstance(state, dict) else {}
    if func == REMOVE_FUNC:
        _record_removal(session, run)  # never raise here: see the module docstring
    elif func == INJECT_FUNC:
        watchdog = session.watchdog
        if watchdog is not None and watchdog.acted:
            # The watchdog removed the fault while the backend still waited for it to take
            # hold: the injection "failed" because of that removal, not by itself. Part of
            # the fault may have been in place.
            session.injected = True
            _interrupt(session, watchdog.acted)
        if run.get("status") != "succeeded":
            session.inject_error = _failure(run)
            _interrupt(session, f"injection failed: {session.inject_error}")
        session.injected = True
        output = run.get("output")
        session.inject_output = output if isinstance(output, dict) else None
        reason = _stop_requested(session)
        if reason:
            _interrupt(session, reason)
    elif func == HOLD_FUNC:
        reason = _stop_requested(session)
        if reason:
            _interrupt(session, reason)


def before_rollback_control(context: Any, **kwargs: Any) -> None:
    session = _current()
    if session is not None:
        _stop_watching(session)


def _stop_watching(session: StepSession) -> None:
    session.watcher.stop()  # no join: removal must not wait for a query in flight
    if session.watchdog is not None:
        session.watchdog.stop()  # the rollback removes the fault from here on


def _record_removal(session: StepSession, run: dict[str, Any]) -> None:
    if run.get("status") == "succeeded":
        session.removed_at = datetime.now(UTC)
        try:
            session.on_removed(session.removed_at)
        except Exception:  # see the module docstring: a hook here must never raise
            logger.exception("the removal hook failed")
    else:
        session.remove_error = _failure(run)
        logger.error("the rollback could not remove the fault: %s", session.remove_error)


def _failure(run: dict[str, Any]) -> str:
    lines = run.get("exception") or []
    text = lines[-1].strip() if lines else f"activity status {run.get('status') or 'unknown'}"
    # chaoslib prefixes the provider's exception with its own class name.
    return text.removeprefix("chaoslib.exceptions.ActivityFailed: ")
