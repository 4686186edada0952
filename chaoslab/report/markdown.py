"""``report.md``: a short human summary of a run — verdict table, halts, recovery."""

from __future__ import annotations

import logging
from pathlib import Path

from chaoslab.model import RunResult, StepResult
from chaoslab.report.record import format_time

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fault(step: StepResult) -> str:
    mode = step.mode.value if step.value is None else f"{step.mode.value} {step.value}"
    return f"{step.kind.value} {step.action} ({mode})"


def _halt_lines(result: RunResult) -> list[str]:
    lines: list[str] = []
    for step in result.steps:
        halt = step.halt
        if halt is None:
            continue
        latency = ""
        if halt.breach_at is not None and halt.removed_at is not None:
            latency = f", {(halt.removed_at - halt.breach_at).total_seconds():.2f}s from breach to removal"
        breach = format_time(halt.breach_at) or "unknown"
        removed = format_time(halt.removed_at) or "unknown"
        lines.append(
            f"- **{step.step}** halted on `{halt.condition}`: breach {breach}, "
            f"detected {format_time(halt.detected_at)}, removed {removed}{latency}"
        )
    return lines


def _pod_lines(result: RunResult) -> list[str]:
    """Pods restarted, replaced or not ready again, per step (readiness checks only)."""
    lines: list[str] = []
    for step in result.steps:
        pods = step.pods
        if pods is None:
            continue
        changes = [f"restarted {', '.join(f'`{r}`' for r in pods.restarted)}" if pods.restarted else "",
                   f"replaced {', '.join(f'`{r}`' for r in pods.replaced)}" if pods.replaced else "",
                   f"new {', '.join(f'`{r}`' for r in pods.added)}" if pods.added else "",
                   f"ready again {pods.ready_s:.1f}s after removal" if pods.ready_s is not None else "",
                   pods.reason]
        text = "; ".join(c for c in changes if c)
        if text:
            lines.append(f"- **{step.step}** ({len(pods.before)} pods before): {_cell(text)}")
    return lines


def render_markdown(result: RunResult) -> str:
    lines = [
        f"# Game day `{result.gameday}` — {result.verdict.value}",
        "",
        f"Run `{result.run_id}` on {result.target}, {format_time(result.started_at)} → "
        f"{format_time(result.ended_at)}." + (f" Trace `{result.trace_id}`." if result.trace_id else ""),
        "",
        "| step | service | tier | fault | verdict | recovery | reason |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in result.steps:
        recovery = "" if step.recovery_s is None else f"{step.recovery_s:.1f}s"
        lines.append(
            f"| {_cell(step.step)} | {step.service} | {step.tier.label} | {_cell(_fault(step))} | "
            f"**{step.verdict.value}** | {recovery} | {_cell(step.reason)} |"
        )
    halts = _halt_lines(result)
    if halts:
        lines += ["", "## Halts", "", *halts]
    pods = _pod_lines(result)
    if pods:
        lines += ["", "## Pods", "", *pods]
    if result.silences:
        lines += ["", "## Alertmanager silences", "", *(
            f"- `{s.id}` {'(whole run)' if s.step is None else f'({s.step})'}: "
            f"{_cell(', '.join(m.describe() for m in s.matchers))}; expired "
            f"{format_time(s.expired_at) or f'not confirmed: it lapses at {format_time(s.ends_at)}'}"
            for s in result.silences)]
    if result.remaining:
        lines += ["", "## Cleanup failed: these may remain", "", *(f"- `{ref}`" for ref in result.remaining)]
    if result.interrupted:
        lines += ["", f"The run was interrupted by {result.interrupted}; the active fault was removed."]
    lines += ["", "Step journals (Chaos Toolkit) are in `journals/`; the full record is `run.json`.", ""]
    return "\n".join(lines)


def write_markdown(result: RunResult, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / REPORT_FILE
    path.write_text(render_markdown(result), encoding="utf-8")
    logger.info("report written to %s", path)
    return path
