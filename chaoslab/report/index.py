"""``<reports>/index.html``: every run of the folder, newest first; each experiment's
verdicts across the runs as a row of coloured cells (the trend); the open and reopened
checklist items. Rendered from run.json documents and checklist items only.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from chaoslab.report import view
from chaoslab.report.html import item_html
from chaoslab.report.style import e, page, verdict_badge
from chaoslab.report.view import DASH, records, text

logger = logging.getLogger(__name__)

# One letter per verdict inside a trend cell, so the trend also reads without colour.
GLYPHS = {"held": "✓", "deviated": "!", "halted": "✗", "baseline-not-met": "B", "error": "E", "skipped": "–"}


def experiments(runs: list[dict[str, Any]]) -> list[str]:
    """Every experiment of the runs, in the order the newest run that has it lists it."""
    seen: list[str] = []
    for run in runs:
        for step in records(run, "steps"):
            name = text(step, "experiment")
            if name and name not in seen:
                seen.append(name)
    return seen


def trend(runs: list[dict[str, Any]], experiment: str) -> list[tuple[str, str] | None]:
    """Per run (in the order given), ``(run_id, verdict)`` of the experiment, or None when
    the run did not have it. A run with the experiment twice counts its worst verdict."""
    worst = list(view.VERDICT_COLOURS)
    out: list[tuple[str, str] | None] = []
    for run in runs:
        verdicts = [text(s, "verdict") for s in records(run, "steps") if text(s, "experiment") == experiment]
        if not verdicts:
            out.append(None)
            continue
        verdicts.sort(key=lambda v: worst.index(v) if v in worst else len(worst))
        out.append((text(run, "run_id"), verdicts[0]))
    return out


def _href(run_id: str) -> str:
    return f"{e(run_id)}/report.html"


def _cell(entry: tuple[str, str] | None) -> str:
    if entry is None:
        return "<td class='cell'><span class='none' title='not in this run'></span></td>"
    run_id, verdict = entry
    return (
        f"<td class='cell'><a class='cell v-{e(verdict)}' style='background:{view.verdict_colour(verdict)}' "
        f"href='{_href(run_id)}' title='{e(run_id)}: {e(verdict)}'>{e(GLYPHS.get(verdict, '?'))}</a></td>"
    )


def _day(started: str) -> str:
    """``12-06<br>10:15``: the run's start (UTC) as a compact column header."""
    at = view.parse_time(started)
    return DASH if at is None else at.astimezone(UTC).strftime("%m-%d<br>%H:%M")


def _trend_table(runs: list[dict[str, Any]]) -> str:
    names = experiments(runs)
    if not names:
        return "<p class='muted'>No run yet.</p>"
    head = "<th>experiment</th><th>latest</th>" + "".join(
        f"<th class='run' title='{e(text(r, 'run_id'))}'>{_day(text(r, 'started_at'))}</th>" for r in runs
    )
    rows = []
    for name in names:
        cells = trend(runs, name)
        latest = next((c[1] for c in cells if c is not None), "")
        rows.append(
            f"<tr><td>{e(name)}</td><td>{verdict_badge(latest) if latest else DASH}</td>"
            + "".join(_cell(c) for c in cells)
            + "</tr>"
        )
    legend = " ".join(
        f"<span class='key'><span class='glyph' style='background:{view.verdict_colour(v)}'>{e(g)}</span>"
        f"{e(v)}</span>"
        for v, g in GLYPHS.items()
    )
    return (
        f"<p class='muted'>One column per run, the newest first; a cell links to that run's report.</p>"
        f"<p class='legend'>{legend}</p>"
        f"<table class='trend'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _runs_table(runs: list[dict[str, Any]]) -> str:
    rows = []
    for i, run in enumerate(runs):
        counts: dict[str, int] = {}
        for step in records(run, "steps"):
            counts[text(step, "verdict")] = counts.get(text(step, "verdict"), 0) + 1
        steps = ", ".join(f"{n} {v}" for v, n in counts.items())
        rows.append(
            f"<tr><td class='num'>{i + 1}</td><td><a href='{_href(text(run, 'run_id'))}'>"
            f"{e(text(run, 'run_id'))}</a></td><td>{e(text(run, 'gameday'))}</td>"
            f"<td>{e(text(run, 'target'))}</td><td>{e(view.when(text(run, 'started_at')))}</td>"
            f"<td>{verdict_badge(text(run, 'verdict') or 'unknown')}</td><td>{e(steps)}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("#", "run", "game day", "target", "started", "verdict", "steps"))
    return f"<table class='runs'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_index(runs: list[dict[str, Any]], items: list[dict[str, Any]]) -> str:
    """index.html for the run.json documents of a reports folder (newest first) and the
    checklist items as they stand."""
    open_items = view.sort_items([i for i in items if text(i, "status") in view.OPEN_STATUSES])
    body = "".join(item_html(i) for i in open_items)
    items_html = (
        f"<ul class='items'>{body}</ul>" if open_items else "<p class='muted'>No open or reopened item.</p>"
    )
    parts = [
        "<h1>chaoslab runs</h1>",
        f"<p class='meta'>{len(runs)} runs · {len(open_items)} open or reopened checklist items</p>",
        f"<section class='card'><h2>Trend per experiment</h2>{_trend_table(runs)}</section>",
        f"<section class='card' id='checklist'><h2>Open and reopened items</h2>{items_html}</section>",
        f"<section class='card'><h2>Runs</h2>{_runs_table(runs)}</section>",
    ]
    return page("chaoslab runs", "".join(parts))
