"""``report.html``: the run as one self-contained page (inline CSS and SVG, no script, no
network), the same sections as report.md, with an SLI chart per alert of each step.

Every string that comes from the run (alert names, reasons, item texts, PromQL) is escaped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from chaoslab.report import view
from chaoslab.report.charts import figure, origin
from chaoslab.report.style import e, page, status_badge, verdict_badge
from chaoslab.report.view import DASH, StepView, clock, mapping, number, records, seconds, strings, text

logger = logging.getLogger(__name__)

NO_PDCA = (
    "This run.json has no PDCA record (it was written by an older chaoslab): the plan, "
    "the timeline, the SLI charts and the checklist are not in it."
)


def _table(header: tuple[str, ...], rows: list[list[str]], *, css: str = "") -> str:
    """Rows are HTML already (escape the cells before)."""
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table class='{css}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(value: str, *, num: bool = False) -> str:
    return f"<td class='num'>{e(value)}</td>" if num else f"<td>{e(value)}</td>"


def _code(value: str) -> str:
    return f"<code>{e(' '.join(value.split()))}</code>" if value.strip() else DASH


def _verdicts(steps: list[StepView]) -> str:
    rows = []
    for s in steps:
        recovery = number(s.step, "recovery_s")
        rows.append(
            [
                f"<td>{s.index}</td>",
                f"<td><a href='#{e(s.anchor)}'>{e(s.name)}</a></td>",
                _td(text(s.step, "service")),
                _td(text(s.step, "tier")),
                _td(view.fault_text(s.step)),
                f"<td>{verdict_badge(s.verdict)}</td>",
                _td(seconds(recovery), num=True),
                _td(text(s.step, "reason")),
            ]
        )
    header = ("#", "step", "service", "tier", "fault", "verdict", "recovery", "reason")
    return f"<section class='card'><h2>Verdicts</h2>{_table(header, rows, css='verdicts')}</section>"


def _facts(s: StepView) -> str:
    plan = s.plan
    facts = [
        ("fault", e(text(mapping(plan, "fault"), "summary") or view.fault_text(s.step))),
        ("Chaos Mesh", e(view.fault_text(s.step))),
    ]
    if plan:
        halts = ", ".join(
            f"<code title='{e(h)}'>{e(view.halt_name(h))}</code>" for h in strings(plan, "halt_conditions")
        )
        facts += [
            ("expected", e(text(plan, "expected") or "the hypothesis holds")),
            ("halt when", halts or DASH),
            ("re-checks", "<br>".join(_code(r) for r in strings(plan, "rechecks")) or "no open item"),
        ]
    return "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"


def _plan(s: StepView) -> str:
    rows = [
        [
            _td(text(h, "alert")),
            _td(text(h, "service") or "global"),
            f"<td>{_code(text(h, 'sli'))}</td>",
            _td(f"{text(h, 'op')} {view.num(number(h, 'threshold'))}"),
            _td(seconds(number(h, "for_s")), num=True),
            _td(text(h, "severity")),
        ]
        for h in records(s.plan, "hypothesis")
    ]
    if not rows:  # a run.json without pdca: the alerts its checks name
        rows = [[_td(a), *[_td(DASH)] * 5] for a in view.checked_alerts(s.step)]
    header = ("alert", "service", "SLI (what the chart shows)", "condition", "for", "severity")
    table = _table(header, rows, css="hypothesis") if rows else ""
    return f"<h3>Plan</h3>{_facts(s)}{table}"


def _timeline(s: StepView, zero: float | None) -> str:
    events = records(s.do, "events")
    rows = []
    for ev in events:
        at = view.epoch(text(ev, "at"))
        offset = DASH if at is None or zero is None else f"{at - zero:+.1f} s"
        pods = ", ".join(strings(ev, "pods"))
        detail = e(text(ev, "text")) + (f" <span class='muted'>({e(pods)})</span>" if pods else "")
        rows.append(
            [
                _td(clock(text(ev, "at"))),
                _td(offset, num=True),
                f"<td><b class='ev-{e(text(ev, 'kind'))}'>{e(text(ev, 'kind'))}</b></td>",
                f"<td>{detail}</td>",
            ]
        )
    if not rows:
        step, halt = s.step, mapping(s.step, "halt")
        pairs = [
            ("started", text(step, "started_at")),
            ("breach", text(halt, "breach_at")),
            ("halt: fault removed", text(halt, "removed_at")),
            ("ended", text(step, "ended_at")),
        ]
        rows = [
            [_td(clock(at)), _td(DASH), f"<td><b>{e(kind)}</b></td>", _td("")] for kind, at in pairs if at
        ]
    if not rows:
        return ""
    return "<h3>Timeline</h3>" + _table(
        ("time (UTC)", "since injection", "event", "detail"), rows, css="timeline"
    )


def _stat(value: str, label: str, *, tone: str = "") -> str:
    return f"<div class='stat {tone}'><b>{e(value)}</b><span>{e(label)}</span></div>"


def _stats(s: StepView) -> str:
    check, halt = s.check, mapping(s.step, "halt")
    tiles = []
    latency = number(check, "halt_latency_s")
    if latency is None and halt:
        breach, removed = view.epoch(text(halt, "breach_at")), view.epoch(text(halt, "removed_at"))
        latency = None if breach is None or removed is None else removed - breach
    if latency is not None:
        tiles.append(_stat(seconds(latency), "halt latency (breach → fault removed)"))
    recovery = number(check, "recovery_s")
    recovery = number(s.step, "recovery_s") if recovery is None else recovery
    target = number(check, "recovery_target_s")
    if recovery is not None:
        slow = target is not None and recovery > target
        label = "recovery" + ("" if target is None else f" (target {seconds(target)})")
        tiles.append(_stat(seconds(recovery), label, tone="bad" if slow else "good" if target else ""))
    breached = [d for d in records(check, "detection") if view.sli_breached(d)]
    if breached:
        noticed = sum(d.get("noticed") is True for d in breached)
        tone = "bad" if noticed < len(breached) else "good"
        tiles.append(
            _stat(f"{noticed} of {len(breached)}", "alerts with a breached SLI that noticed it", tone=tone)
        )
    slis = records(check, "slis")
    if slis:
        broke = sum(view.summarise(x).breached > 0 for x in slis)
        tiles.append(
            _stat(f"{broke} of {len(slis)}", "SLIs past their threshold", tone="bad" if broke else "good")
        )
    return f"<div class='stats'>{''.join(tiles)}</div>" if tiles else ""


def _detection(s: StepView) -> str:
    rows = []
    for d in records(s.check, "detection"):
        noticed = d.get("noticed")
        mark = (
            "<b>yes</b>"
            if noticed is True
            else DASH
            if noticed is not False
            else "<b style='color:#a40e26'>no</b>"
            if view.sli_breached(d)
            else "no (SLI never breached)"
        )
        rows.append(
            [
                _td(text(d, "alert")),
                _td(text(d, "service") or "global"),
                _td(seconds(number(d, "for_s")), num=True),
                _td(seconds(number(d, "pending_after_s")), num=True),
                _td(seconds(number(d, "firing_after_s")), num=True),
                _td(seconds(number(d, "sli_breached_s")), num=True),
                f"<td>{mark}</td>",
            ]
        )
    if not rows:
        return ""
    header = ("alert", "service", "for", "pending after", "firing after", "SLI breached for", "noticed")
    return "<p class='muted'>Detection, timed from the breach:</p>" + _table(header, rows)


def _check(s: StepView) -> str:
    zero = origin(s)
    reason = text(s.check, "reason") or text(s.step, "reason")
    parts = ["<h3>Check</h3>", f"<p>{verdict_badge(s.verdict)} {e(reason)}</p>", _stats(s)]
    leg = text(mapping(mapping(s.step, "halt"), "leg"), "summary")  # a multi-window alert's fast leg
    if leg:
        parts.append(f"<p class='note'>{e(leg)}</p>")
    figures = [figure(s, sli, zero) for sli in records(s.check, "slis")]
    if figures:
        parts.append(f"<div class='charts'>{''.join(figures)}</div>")
    parts.append(_detection(s))
    findings = records(s.check, "findings")
    if findings:
        parts.append(
            "<ul>"
            + "".join(f"<li><b>{e(text(f, 'kind'))}</b>: {e(text(f, 'text'))}</li>" for f in findings)
            + "</ul>"
        )
    return "".join(parts)


def item_html(item: Mapping[str, Any]) -> str:
    who = " · ".join(e(text(item, k)) for k in ("service", "owner") if text(item, k))
    note = f"<br><i>Note: {e(text(item, 'note'))}</i>" if text(item, "note") else ""
    runs = len(strings(item, "runs"))
    return (
        f"<li>{status_badge(text(item, 'status'))} <b>{who}</b> <code>{e(text(item, 'id'))}</code><br>"
        f"{e(text(item, 'text'))}{note}<br><span class='muted'>first seen "
        f"{e(view.when(text(item, 'first_seen')))}, last seen {e(view.when(text(item, 'last_seen')))}, "
        f"{runs} run(s)</span></li>"
    )


def _act(s: StepView, act: list[dict[str, Any]]) -> str:
    mine = [i for i in act if text(i, "experiment") in (s.name, text(s.step, "experiment"))]
    if not mine:
        return ""
    return "<h3>Act</h3><ul class='items'>" + "".join(item_html(i) for i in view.sort_items(mine)) + "</ul>"


def _step(s: StepView, act: list[dict[str, Any]]) -> str:
    fault = text(mapping(s.plan, "fault"), "summary") or view.fault_text(s.step)
    who = " · ".join(
        x
        for x in (
            text(s.step, "service"),
            text(s.step, "tier"),
            f"owner {text(s.plan, 'owner')}" if text(s.plan, "owner") else "",
            fault,
        )
        if x
    )
    return (
        f"<section class='card step' id='{e(s.anchor)}'>"
        f"<h2>{s.index}. {e(s.name)} {verdict_badge(s.verdict)}</h2><p class='meta'>{e(who)}</p>"
        f"{_plan(s)}{_timeline(s, view.injection(s))}{_check(s)}{_act(s, act)}</section>"
    )


def _checklist(items: list[dict[str, Any]]) -> str:
    if not items:
        body = "<p class='muted'>No item: no run has found a weakness yet.</p>"
    else:
        body = "<ul class='items'>" + "".join(item_html(i) for i in view.sort_items(items)) + "</ul>"
    return f"<section class='card' id='checklist'><h2>Checklist after this run</h2>{body}</section>"


def render_html(run: Mapping[str, Any]) -> str:
    """report.html for a run.json document."""
    steps = view.step_views(run)
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.verdict] = counts.get(s.verdict, 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    verdict = text(run, "verdict") or "unknown"
    head = (
        f"<h1>Game day <code>{e(text(run, 'gameday'))}</code> {verdict_badge(verdict)}</h1>"
        f"<p class='meta'>Run <code>{e(text(run, 'run_id'))}</code> on {e(text(run, 'target') or DASH)} · "
        f"{e(view.when(text(run, 'started_at')))} → {e(view.when(text(run, 'ended_at')))} · "
        f"{len(steps)} steps: {e(summary)}"
        + (f" · trace <code>{e(text(run, 'trace_id'))}</code>" if text(run, "trace_id") else "")
        + "</p>"
    )
    parts = [head, _verdicts(steps)]
    if not view.has_pdca(run):
        parts.append(f"<p class='note'>{e(NO_PDCA)}</p>")
    remaining = strings(run, "remaining")
    if remaining:
        parts.append(
            "<p class='note'><b>Cleanup failed; these may remain:</b> "
            + ", ".join(_code(r) for r in remaining)
            + "</p>"
        )
    if view.interruption(run):
        parts.append(
            f"<p class='note'>The run was interrupted by {e(view.interruption(run))}; "
            "the active fault was removed.</p>"
        )
    act = records(mapping(run, "pdca"), "act")
    parts += [_step(s, act) for s in steps]
    if view.has_pdca(run) or "checklist" in run:
        parts.append(_checklist(view.checklist(run)))
    parts.append(
        "<footer>chaoslab · the full record is run.json; the step journals are in journals/</footer>"
    )
    return page(f"{text(run, 'gameday')} · {verdict} · {text(run, 'run_id')}", "".join(parts))
