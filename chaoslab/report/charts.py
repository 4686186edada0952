"""The SLI charts of report.html: one per SLI of a step, from its check record, with x in
seconds since the injection, the threshold, the fault window and the breach, halt and
recovery marked (drawn by :mod:`chaoslab.report.svg`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chaoslab.report import view
from chaoslab.report.style import e
from chaoslab.report.svg import Chart, Marker, render_chart
from chaoslab.report.view import StepView, clock, mapping, number, records, text

logger = logging.getLogger(__name__)

BREACH_COLOUR = "#a40e26"
HALT_COLOUR = "#24292f"
RECOVERED_COLOUR = "#2ca02c"


def origin(s: StepView) -> float | None:
    """Time zero of the step's charts: the injection, else the first sample."""
    start = view.injection(s)
    if start is not None:
        return start
    for sli in records(s.check, "slis"):
        pts = view.points(sli)
        if pts:
            return pts[0][0]
    return None


def _markers(s: StepView, zero: float) -> list[Marker]:
    check, halt = s.check, mapping(s.step, "halt")
    out = []
    for key, label, colour, dashed in (
        ("breach_at", "breach", BREACH_COLOUR, True),
        ("removed_at", "halt", HALT_COLOUR, False),
        ("recovered_at", "recovered", RECOVERED_COLOUR, False),
    ):
        if key == "removed_at" and not (halt or text(check, "breach_at")):
            continue  # a held step's removal is the window's end, not a halt
        at = view.epoch(text(check, key) or text(halt, key))
        if at is not None:
            out.append(Marker(at=at - zero, label=label, colour=colour, dashed=dashed))
    return out


def sli_chart(s: StepView, sli: Mapping[str, Any], zero: float) -> Chart:
    """The chart of one SLI of a step, x in seconds from ``zero`` (unix seconds)."""
    window = mapping(s.check, "fault_window")
    start, end = view.epoch(text(window, "start")), view.epoch(text(window, "end"))
    pts = [(at - zero, value) for at, value in view.points(sli)]
    if start is not None and end is None:
        end = max([start + 1.0] + [at + zero for at, _ in pts])  # never removed: to the last sample
    threshold = number(sli, "threshold")
    alert = text(sli, "alert") + (f" ({text(sli, 'service')})" if text(sli, "service") else "")
    return Chart(
        title=f"{alert}: SLI over time",
        points=pts,
        series_label="SLI",
        x_label=f"seconds from injection at {clock(text(window, 'start'))} UTC"
        if start is not None
        else f"seconds from {clock(datetime.fromtimestamp(zero, UTC).isoformat())} UTC (nothing injected)",
        threshold=threshold,
        threshold_label=f"threshold {text(sli, 'op')} {view.num(threshold)}",
        window=None if start is None or end is None else (start - zero, end - zero),
        window_label="fault",
        markers=_markers(s, zero),
    )


def figure(s: StepView, sli: Mapping[str, Any], zero: float | None) -> str:
    alert = text(sli, "alert") + (f" ({text(sli, 'service')})" if text(sli, "service") else "")
    stats = view.summarise(sli)
    query = f" title='{e(text(sli, 'query'))}'" if text(sli, "query") else ""
    if text(sli, "error") or not stats.samples or zero is None:
        why = text(sli, "error") or "no samples in the range"
        return (
            f"<figure><figcaption{query}><b>{e(alert)}</b></figcaption>"
            f"<div class='nodata'>no series: {e(why)}</div></figure>"
        )
    cond = f"{text(sli, 'op')} {view.num(number(sli, 'threshold'))}"
    caption = (
        f"<b>{e(alert)}</b> · min {e(view.num(stats.low))} · max {e(view.num(stats.high))} · "
        f"threshold {e(cond)} · {stats.breached} of {stats.samples} samples past it"
    )
    css = " class='breached'" if stats.breached else ""
    chart = render_chart(sli_chart(s, sli, zero))
    return f"<figure{css}><figcaption{query}>{caption}</figcaption>{chart}</figure>"
