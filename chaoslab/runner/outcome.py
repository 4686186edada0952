"""A step's verdict from what happened, pure: the rules in one place, worst first."""

from __future__ import annotations

from dataclasses import dataclass

from chaoslab.model import Verdict
from chaoslab.watch import BREACH_NO_DATA


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a step's execution found. ``None`` means "not known / not reached"."""

    injected: bool = False
    signal: str | None = None
    breach_kind: str | None = None
    breach: str | None = None  # the breach in words
    inject_error: str | None = None
    ctk_error: str | None = None
    baseline_met: bool | None = True
    baseline_reason: str = ""
    after_met: bool | None = None
    after_reason: str = ""
    cleanup_error: str | None = None
    recovered: bool | None = None
    recovery_s: float | None = None
    recovery_reason: str = ""
    recovery_no_data: bool = False
    breach_guard: bool = False  # the breach was a guard alert firing, not an SLO condition


def _recovery_note(o: Outcome) -> str:
    if o.recovered is True and o.recovery_s is not None:
        return f"; recovered in {o.recovery_s:.1f}s"
    if o.recovered is False:
        return f"; not recovered: {o.recovery_reason}"
    return ""


def _breached(o: Outcome) -> str:
    return "guard alert fired" if o.breach_guard else "SLO breached"


def decide(o: Outcome) -> tuple[Verdict, str]:
    """The verdict and its one-line reason. Infrastructure trouble (error) outranks a
    finding; a hypothesis that could not be evaluated is never a pass."""
    removed = "the fault was removed" if o.injected else "nothing was injected"
    if o.cleanup_error:
        return Verdict.ERROR, f"cleanup failed: {o.cleanup_error}"
    if o.signal:
        return Verdict.ERROR, f"interrupted by {o.signal}; {removed}"
    if o.breach_kind == BREACH_NO_DATA:
        return Verdict.ERROR, (
            f"Prometheus unreachable while the fault was in place, halted; {removed}: {o.breach}"
        )
    if o.inject_error:
        return Verdict.ERROR, f"injection failed: {o.inject_error}"
    if o.ctk_error:
        return Verdict.ERROR, f"the experiment could not be carried out: {o.ctk_error}; {removed}"
    if o.baseline_met is not True:
        reason = o.baseline_reason or "unknown"
        return Verdict.BASELINE_NOT_MET, f"baseline not met, nothing injected: {reason}"
    if o.recovered is False:
        # Whatever happened during the fault, a system that does not hold again within the
        # recovery timeout after the removal has deviated (the halt, if any, stays recorded).
        halted = f"{_breached(o)}, fault removed: {o.breach}; " if o.breach_kind is not None else ""
        if o.recovery_no_data:
            return Verdict.ERROR, f"{halted}recovery could not be observed: {o.recovery_reason}"
        return Verdict.DEVIATED, f"{halted}did not recover: {o.recovery_reason}"
    if o.breach_kind is not None:
        return Verdict.HALTED, f"{_breached(o)}, fault removed: {o.breach}{_recovery_note(o)}"
    if o.after_met is False:
        return Verdict.DEVIATED, (
            f"hypothesis not met at the end of the hold: {o.after_reason}{_recovery_note(o)}"
        )
    return Verdict.HELD, f"hypothesis held during the fault{_recovery_note(o)}"
