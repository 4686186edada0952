"""Pure rules of a run: run ids, the overall verdict, and when the gate stops a game day."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from chaoslab.errors import PlanError
from chaoslab.model import Gate, StepResult, Tier, Verdict

RUN_ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")

# A step with one of these verdicts found a weakness or could not be carried out.
FAILED = frozenset({Verdict.DEVIATED, Verdict.HALTED, Verdict.BASELINE_NOT_MET, Verdict.ERROR})

# Worst first: the run's verdict is its worst step's.
_SEVERITY = (
    Verdict.ERROR,
    Verdict.HALTED,
    Verdict.DEVIATED,
    Verdict.BASELINE_NOT_MET,
    Verdict.HELD,
    Verdict.SKIPPED,
)


def new_run_id(now: datetime | None = None) -> str:
    """A sortable run id: UTC timestamp + 4 random hex digits, e.g. ``20261127T101500Z-3f2a``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def unused_run_id(taken: Callable[[str], bool], now: datetime | None = None) -> str:
    """A new run id for which ``taken`` (its report folder exists) is false: two runs started
    in the same second share the timestamp, and a reused id would mix their records."""
    for _attempt in range(100):
        run_id = new_run_id(now)
        if not taken(run_id):
            return run_id
    raise PlanError(f"no unused run id for {now or 'now'} after 100 tries: are the report folders writable?")


def aggregate_verdict(steps: Sequence[StepResult]) -> Verdict:
    """The run's verdict: its worst step's. Skipped steps alone (for instance every step
    outside the run window) give ``skipped``; held and skipped steps give ``held``."""
    present = {step.verdict for step in steps}
    for verdict in _SEVERITY:
        if verdict in present:
            return verdict
    return Verdict.SKIPPED


def stop_reason(step: StepResult, *, gate: Gate) -> str | None:
    """Why the game day must stop after ``step`` (None: carry on).

    ``gate: stop`` stops on any failed step. Whatever the gate, an error (the system could
    not be driven or observed) stops the run, and a failure in the non-core stage never
    lets the core stage start; ``stage_stop_reason`` applies the latter."""
    if step.verdict not in FAILED:
        return None
    if step.verdict is Verdict.ERROR:
        return f"step {step.step} ended in error"
    if gate is Gate.STOP:
        return f"gate stop: step {step.step} {step.verdict.value}"
    return None


def skip_reason(results: Sequence[StepResult], *, tier: Tier, gate: Gate) -> str | None:
    """Why the next step, of ``tier``, must not run given the results so far (None: run it)."""
    for result in results:
        reason = stop_reason(result, gate=gate)
        if reason is not None:
            return reason
    return stage_stop_reason(results, tier=Tier.NON_CORE) if tier is Tier.CORE else None


def stage_stop_reason(results: Sequence[StepResult], *, tier: Tier) -> str | None:
    """A failure in the non-core stage keeps the core stage from starting."""
    if tier is not Tier.NON_CORE:
        return None
    failed = [s.step for s in results if s.tier is Tier.NON_CORE and s.verdict in FAILED]
    if failed:
        return f"non-core stage failed ({', '.join(failed)}); core stage not started"
    return None
