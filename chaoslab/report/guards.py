"""Guard alerts in the run record and the report: what was pending, what fired, and what
fired but was ignored (``guards.ignore``), per step, so that nothing is hidden."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaoslab.model import StepResult

PENDING = "pending"
FIRING = "firing"
IGNORED_FIRING = "ignored_firing"


def guard_summary(step: StepResult) -> dict[str, list[str]]:
    """``{"firing": [...], "pending": [...], "ignored_firing": [...]}``: alert names, each once."""
    summary: dict[str, list[str]] = {FIRING: [], PENDING: [], IGNORED_FIRING: []}
    for check in step.guards:
        key = IGNORED_FIRING if check.ignored else FIRING if check.state == "firing" else PENDING
        if check.alert not in summary[key]:
            summary[key].append(check.alert)
    return summary


def guard_record(step: StepResult) -> dict[str, Any]:
    """The ``guards`` key of a step in run.json."""
    return dict(guard_summary(step))


def guard_lines(run: Mapping[str, Any]) -> list[str]:
    """report.md lines for a run.json document: one per step that saw a guard alert pending
    or firing (the step's ``guards`` key)."""
    lines = []
    for step in run.get("steps") or ():
        summary = step.get("guards") if isinstance(step, Mapping) else None
        if not isinstance(summary, Mapping):
            continue
        summary = {key: [str(a) for a in summary.get(key) or ()] for key in (FIRING, IGNORED_FIRING, PENDING)}
        parts = []
        if summary[FIRING]:
            parts.append("firing: " + ", ".join(f"`{a}`" for a in summary[FIRING]))
        if summary[IGNORED_FIRING]:
            parts.append("firing but ignored (guards.ignore): "
                         + ", ".join(f"`{a}`" for a in summary[IGNORED_FIRING]))
        if summary[PENDING]:
            parts.append("pending (did not halt): " + ", ".join(f"`{a}`" for a in summary[PENDING]))
        if parts:
            lines.append(f"- **{step.get('step') or step.get('experiment')}**: " + "; ".join(parts))
    return lines
