"""Guard alerts in the run record and the report: what was pending, what fired, and what
fired but was ignored (``guards.ignore``), per step, so that nothing is hidden."""

from __future__ import annotations

from typing import Any

from chaoslab.model import RunResult, StepResult

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


def guard_lines(result: RunResult) -> list[str]:
    """report.md lines: one per step that saw a guard alert pending or firing."""
    lines = []
    for step in result.steps:
        summary = guard_summary(step)
        parts = []
        if summary[FIRING]:
            parts.append("firing: " + ", ".join(f"`{a}`" for a in summary[FIRING]))
        if summary[IGNORED_FIRING]:
            parts.append("firing but ignored (guards.ignore): "
                         + ", ".join(f"`{a}`" for a in summary[IGNORED_FIRING]))
        if summary[PENDING]:
            parts.append("pending (did not halt): " + ", ".join(f"`{a}`" for a in summary[PENDING]))
        if parts:
            lines.append(f"- **{step.step}**: " + "; ".join(parts))
    return lines
