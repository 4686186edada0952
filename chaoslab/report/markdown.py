"""``report.md``: the run as a Plan-Do-Check-Act record a person reads.

The verdict table first, then a section per step (plan, timeline, check with the numbers,
act), then the checklist as it stands after the run. Rendered from the run.json document
only (see :mod:`chaoslab.report.view`); a run.json without ``pdca`` still gives the table,
the halts and the recovery times.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.report import view
from chaoslab.report.guards import guard_lines
from chaoslab.report.view import DASH, StepView, clock, mapping, number, records, seconds, strings, text

if TYPE_CHECKING:
    from chaoslab.model import RunResult

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"

NO_PDCA = (
    "This run.json has no PDCA record (it was written by an older chaoslab): "
    "the plan, the timeline, the SLI series and the checklist are not in it."
)


def _cell(value: str) -> str:
    return " ".join(value.replace("|", "\\|").split()) or DASH


def _code(value: str) -> str:
    flat = " ".join(value.split()).replace("`", "'")
    return f"`{flat}`" if flat else DASH


def _table(header: tuple[str, ...], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _verdict_table(steps: list[StepView]) -> list[str]:
    rows = []
    for s in steps:
        recovery = number(s.step, "recovery_s")
        rows.append(
            (
                _cell(s.name),
                _cell(text(s.step, "service")),
                _cell(text(s.step, "tier")),
                _cell(view.fault_text(s.step)),
                f"**{s.verdict}**",
                "" if recovery is None else f"{recovery:.1f}s",
                _cell(text(s.step, "reason")),
            )
        )
    return _table(("step", "service", "tier", "fault", "verdict", "recovery", "reason"), rows)


def _plan(s: StepView) -> list[str]:
    plan = s.plan
    fault = mapping(plan, "fault")
    lines = ["### Plan", ""]
    summary = text(fault, "summary")
    lines.append(f"- **Fault**: {summary + ' — ' if summary else ''}{view.fault_text(s.step)}")
    if not plan:  # a run.json without pdca: the alerts its checks name
        lines.append(f"- **Hypothesis**: {', '.join(view.checked_alerts(s.step)) or DASH}")
        return [*lines, ""]
    lines.append(f"- **Expected**: {text(plan, 'expected') or 'the hypothesis holds'}")
    halts = strings(plan, "halt_conditions")
    lines.append(f"- **Halt when any breaks**: {', '.join(_code(view.halt_name(h)) for h in halts) or DASH}")
    rechecks = strings(plan, "rechecks")
    lines.append(f"- **Re-checks**: {', '.join(_code(r) for r in rechecks) or 'no open item'}")
    rows = []
    for h in records(plan, "hypothesis"):
        cond = f"{text(h, 'op')} {view.num(number(h, 'threshold'))}"
        rows.append(
            (
                _cell(text(h, "alert")),
                _cell(text(h, "service") or "global"),
                _code(text(h, "sli")),
                _cell(cond),
                seconds(number(h, "for_s")),
                _cell(text(h, "severity")),
            )
        )
    if rows:
        lines += ["", *_table(("alert", "service", "SLI", "condition", "for", "severity"), rows)]
    return [*lines, ""]


def _offset(at: str, origin: float | None) -> str:
    moment = view.epoch(at)
    if moment is None or origin is None:
        return DASH
    return f"{moment - origin:+.1f}s"


def _timeline(s: StepView) -> list[str]:
    events = records(s.do, "events")
    if not events:
        step = s.step
        halt = mapping(step, "halt")
        rows = [
            (clock(text(step, "started_at")), "started"),
            (clock(text(halt, "breach_at")), "breach"),
            (clock(text(halt, "removed_at")), "halt: fault removed"),
            (clock(text(step, "ended_at")), "ended"),
        ]
        rows = [r for r in rows if r[0] != DASH]
        if not rows:
            return []
        return ["### Timeline", "", *_table(("time (UTC)", "event"), rows), ""]
    origin = view.injection(s)
    lines = []
    for e in events:
        pods = ", ".join(strings(e, "pods"))
        detail = text(e, "text") + (f" ({pods})" if pods else "")
        lines.append(
            (clock(text(e, "at")), _offset(text(e, "at"), origin), _cell(text(e, "kind")), _cell(detail))
        )
    return ["### Timeline", "", *_table(("time (UTC)", "since injection", "event", "detail"), lines), ""]


def _halt_line(s: StepView) -> str | None:
    halt = mapping(s.step, "halt")
    check = s.check
    breach = text(check, "breach_at") or text(halt, "breach_at")
    removed = text(check, "removed_at") or text(halt, "removed_at")
    detected = text(check, "detected_at") or text(halt, "detected_at")
    if not (halt or breach):
        return None
    latency = number(check, "halt_latency_s")
    if latency is None and view.epoch(breach) is not None and view.epoch(removed) is not None:
        latency = (view.epoch(removed) or 0.0) - (view.epoch(breach) or 0.0)
    on = f" on {_code(text(halt, 'condition'))}" if text(halt, "condition") else ""
    tail = "" if latency is None else f": {latency:.2f}s from breach to removal"
    leg = text(mapping(halt, "leg"), "summary")  # a multi-window alert halted on its fast leg
    return (
        f"- **Halt**{on}: breach {clock(breach)}, detected {clock(detected)}, removed {clock(removed)}{tail}"
        + (f"\n  - {leg}" if leg else "")
    )


def _recovery_line(s: StepView) -> str | None:
    recovery = number(s.check, "recovery_s")
    if recovery is None:
        recovery = number(s.step, "recovery_s")
    if recovery is None:
        return None
    target = number(s.check, "recovery_target_s")
    if target is None:
        return f"- **Recovery**: {seconds(recovery)}"
    verdict = "within" if recovery <= target else "**slower than**"
    return f"- **Recovery**: {seconds(recovery)}, {verdict} the target of {seconds(target)}"


def _sli_rows(s: StepView) -> list[str]:
    rows = []
    for sli in records(s.check, "slis"):
        stats = view.summarise(sli)
        alert = text(sli, "alert") + (f" ({text(sli, 'service')})" if text(sli, "service") else "")
        cond = f"{text(sli, 'op')} {view.num(number(sli, 'threshold'))}"
        if text(sli, "error"):
            past = f"no series: {text(sli, 'error')}"
        else:
            past = f"{stats.breached} of {stats.samples}" + (" — **breached**" if stats.breached else "")
        rows.append((_cell(alert), view.num(stats.low), view.num(stats.high), _cell(cond), _cell(past)))
    if not rows:
        return []
    return ["", *_table(("SLI of alert", "min", "max", "threshold", "samples past it"), rows)]


def _detection_rows(s: StepView) -> list[str]:
    rows = []
    for d in records(s.check, "detection"):
        noticed = d.get("noticed")
        mark = (
            "yes"
            if noticed is True
            else DASH
            if noticed is not False
            else "**no**"
            if view.sli_breached(d)
            else "no (SLI never breached)"
        )
        rows.append(
            (
                _cell(text(d, "alert")),
                _cell(text(d, "service") or "global"),
                seconds(number(d, "for_s")),
                seconds(number(d, "pending_after_s")),
                seconds(number(d, "firing_after_s")),
                seconds(number(d, "sli_breached_s")),
                mark,
            )
        )
    if not rows:
        return []
    header = ("alert", "service", "for", "pending after", "firing after", "SLI breached for", "noticed")
    return ["", "Detection (after the breach):", "", *_table(header, rows)]


def _check(s: StepView) -> list[str]:
    reason = text(s.check, "reason") or text(s.step, "reason")
    lines = ["### Check", "", f"- **Verdict**: **{s.verdict}** — {_cell(reason)}"]
    window = mapping(s.check, "fault_window")
    if window:
        end = text(window, "end")
        lines.append(
            f"- **Fault window**: {clock(text(window, 'start'))} → {clock(end) if end else 'never removed'}"
        )
    lines += [line for line in (_halt_line(s), _recovery_line(s)) if line is not None]
    lines += _sli_rows(s) + _detection_rows(s)
    findings = records(s.check, "findings")
    if findings:
        lines += ["", "Findings:", ""]
        lines += [f"- **{_cell(text(f, 'kind'))}**: {_cell(text(f, 'text'))}" for f in findings]
    return [*lines, ""]


def _item_line(item: Mapping[str, Any]) -> list[str]:
    status = text(item, "status") or "unknown"
    box = "[x]" if status in ("verified", "done") else "[ ]"
    who = " · ".join(_cell(text(item, k)) for k in ("service", "owner") if text(item, k))
    note = f" Note: {_cell(text(item, 'note'))}" if text(item, "note") else ""
    seen = f"first seen {view.when(text(item, 'first_seen'))}, {len(strings(item, 'runs'))} run(s)"
    return [
        f"- {box} **{status}** · {who} · {_code(text(item, 'id'))}",
        f"  {_cell(text(item, 'text'))}{note} ({seen})",
    ]


def _act(s: StepView, act: list[dict[str, Any]]) -> list[str]:
    mine = [i for i in act if text(i, "experiment") in (s.name, text(s.step, "experiment"))]
    if not mine:
        return []
    lines = ["### Act", ""]
    for item in view.sort_items(mine):
        lines += _item_line(item)
    return [*lines, ""]


def _checklist(items: list[dict[str, Any]]) -> list[str]:
    counts: dict[str, int] = {}
    for item in items:
        counts[text(item, "status") or "unknown"] = counts.get(text(item, "status") or "unknown", 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=_status_rank))
    lines = ["## Checklist after this run", ""]
    if not items:
        return [*lines, "No item: no run has found a weakness yet.", ""]
    lines += [f"{len(items)} items: {summary}.", ""]
    for item in view.sort_items(items):
        lines += _item_line(item)
    return [*lines, ""]


def _status_rank(pair: tuple[str, int]) -> int:
    return view.STATUS_ORDER.index(pair[0]) if pair[0] in view.STATUS_ORDER else len(view.STATUS_ORDER)


def _pod_lines(run: Mapping[str, Any]) -> list[str]:
    """Pods restarted, replaced or not ready again, per step (readiness checks only)."""
    lines: list[str] = []
    for step in records(run, "steps"):
        pods = mapping(step, "pods")
        if not pods:
            continue
        ready = number(pods, "ready_s")
        changes = [
            *(f"{verb} {', '.join(_code(r) for r in strings(pods, key))}"
              for verb, key in (("restarted", "restarted"), ("replaced", "replaced"), ("new", "added"))
              if strings(pods, key)),
            f"ready again {ready:.1f}s after removal" if ready is not None else "",
            text(pods, "reason"),
        ]
        summary = "; ".join(c for c in changes if c)
        if summary:
            count = len(records(pods, "before"))
            lines.append(f"- **{text(step, 'experiment')}** ({count} pods before): {_cell(summary)}")
    return lines


def _silence_lines(run: Mapping[str, Any]) -> list[str]:
    lines = []
    for silence in records(run, "silences"):
        scope = f"({text(silence, 'step')})" if text(silence, "step") else "(whole run)"
        expired = text(silence, "expired_at") or f"not confirmed: it lapses at {text(silence, 'ends_at')}"
        lines.append(f"- {_code(text(silence, 'id'))} {scope}: "
                     f"{_cell(', '.join(strings(silence, 'matchers')))}; expired {expired}")
    return lines


def render_markdown(run: Mapping[str, Any]) -> str:
    """report.md for a run.json document."""
    steps = view.step_views(run)
    lines = [
        f"# Game day `{text(run, 'gameday')}` — {text(run, 'verdict') or 'unknown'}",
        "",
        f"Run `{text(run, 'run_id')}` on {text(run, 'target') or DASH}, "
        f"{text(run, 'started_at') or DASH} → {text(run, 'ended_at') or DASH}."
        + (f" Trace `{text(run, 'trace_id')}`." if text(run, "trace_id") else ""),
        "",
        *_verdict_table(steps),
        "",
    ]
    if not view.has_pdca(run):
        lines += [NO_PDCA, ""]
    act = records(mapping(run, "pdca"), "act")
    for s in steps:
        lines += [f"## {s.index}. {s.name} — {s.verdict}", ""]
        lines += _plan(s) + _timeline(s) + _check(s) + _act(s, act)
    guards = guard_lines(run)
    if guards:
        lines += ["## Guard alerts", "", *guards, ""]
    pods = _pod_lines(run)
    if pods:
        lines += ["## Pods", "", *pods, ""]
    silences = _silence_lines(run)
    if silences:
        lines += ["## Alertmanager silences", "", *silences, ""]
    remaining = strings(run, "remaining")
    if remaining:
        lines += ["## Cleanup failed: these may remain", "", *(f"- {_code(r)}" for r in remaining), ""]
    if view.interruption(run):
        lines += [f"The run was interrupted by {view.interruption(run)}; the active fault was removed.", ""]
    if view.has_pdca(run) or "checklist" in run:
        lines += _checklist(view.checklist(run))
    lines += ["Step journals (Chaos Toolkit) are in `journals/`; the full record is `run.json`.", ""]
    return "\n".join(lines)


def write_markdown(result: RunResult, directory: Path) -> Path:
    """report.md for a RunResult (the runner's objects), through its run.json document."""
    from chaoslab.report.files import write_text
    from chaoslab.report.record import run_to_dict

    path = write_text(directory / REPORT_FILE, render_markdown(run_to_dict(result)))
    logger.info("report written to %s", path)
    return path
