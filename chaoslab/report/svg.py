"""A small inline-SVG line chart for SLI series: no library, no script, no external font.

One chart shows one series over time, a horizontal threshold line, a shaded window (the
fault) and vertical markers (breach, halt, recovery), with ticked axes and a legend. Every
text is escaped. Colours are presentation attributes, so a chart copied out of the page
still looks the same.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

logger = logging.getLogger(__name__)

SERIES_COLOUR = "#1f77b4"
THRESHOLD_COLOUR = "#d62728"
WINDOW_COLOUR = "#ff7f0e"
AXIS_COLOUR = "#57606a"
GRID_COLOUR = "#d8dee4"
FONT = "font-family='system-ui, sans-serif' font-size='12'"


@dataclass(frozen=True, slots=True, kw_only=True)
class Marker:
    """A vertical line at ``at`` (x units), labelled."""

    at: float
    label: str
    colour: str
    dashed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    title: str
    points: Sequence[tuple[float, float | None]]  # (x, y); y None is a gap
    series_label: str
    x_label: str
    threshold: float | None = None
    threshold_label: str = "threshold"
    window: tuple[float, float] | None = None
    window_label: str = "fault"
    markers: Sequence[Marker] = ()
    width: int = 560
    height: int = 260


@dataclass(frozen=True, slots=True, kw_only=True)
class _Frame:
    """The plot area in pixels and the data ranges it shows."""

    left: float
    right: float
    top: float
    bottom: float
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    x_ticks: list[float] = field(default_factory=list)
    y_ticks: list[float] = field(default_factory=list)

    def x(self, value: float) -> float:
        return self.left + (value - self.x_min) / (self.x_max - self.x_min) * (self.right - self.left)

    def y(self, value: float) -> float:
        return self.bottom - (value - self.y_min) / (self.y_max - self.y_min) * (self.bottom - self.top)


def nice_step(span: float, count: int) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``count`` ticks."""
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power * 1.0001:
            return factor * power
    return 10 * power


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values from the first multiple of the step at or below ``low`` to the
    first at or above ``high``."""
    if high <= low:
        pad = abs(low) * 0.5 or 1.0
        low, high = low - pad, high + pad
    step = nice_step(high - low, count)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    n = round((last - first) / step)
    return [_clean(first + i * step) for i in range(n + 1)]


def _clean(value: float) -> float:
    rounded = round(value, 12)
    return 0.0 if rounded == 0 else rounded


def tick_label(value: float, step: float) -> str:
    """``0.05``, ``10``, ``-2.5``: as many decimals as the step needs."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(step / 10 ** math.floor(math.log10(step)) - 2.5) < 1e-9:
        decimals += 1
    return f"{value:.{decimals}f}"


def _frame(chart: Chart) -> _Frame:
    xs = [x for x, _ in chart.points] + [m.at for m in chart.markers]
    if chart.window is not None:
        xs += list(chart.window)
    ys = [y for _, y in chart.points if y is not None]
    if chart.threshold is not None:
        ys.append(chart.threshold)
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_high <= x_low:
        x_low, x_high = x_low - 1.0, x_high + 1.0
    y_low, y_high = (min(ys), max(ys)) if ys else (0.0, 1.0)
    y_low = min(y_low, 0.0) if y_low >= 0 else y_low
    y_ticks = ticks(y_low, y_high + (y_high - y_low) * 0.05, 5)
    x_ticks = [t for t in ticks(x_low, x_high, 8) if x_low - 1e-9 <= t <= x_high + 1e-9]
    return _Frame(
        left=58,
        right=chart.width - 14,
        top=34,
        bottom=chart.height - 40,
        x_min=x_low,
        x_max=x_high,
        y_min=y_ticks[0],
        y_max=y_ticks[-1],
        x_ticks=x_ticks,
        y_ticks=y_ticks,
    )


def _f(value: float) -> str:
    return f"{value:.1f}"


def _axes(frame: _Frame, chart: Chart) -> list[str]:
    out = []
    y_step = frame.y_ticks[1] - frame.y_ticks[0] if len(frame.y_ticks) > 1 else 1.0
    for t in frame.y_ticks:
        y = _f(frame.y(t))
        out.append(
            f"<line class='grid' x1='{_f(frame.left)}' x2='{_f(frame.right)}' y1='{y}' y2='{y}' "
            f"stroke='{GRID_COLOUR}' stroke-width='1'/>"
        )
        out.append(
            f"<text class='tick-y' x='{_f(frame.left - 6)}' y='{y}' text-anchor='end' "
            f"dominant-baseline='middle' fill='{AXIS_COLOUR}' {FONT}>{tick_label(t, y_step)}</text>"
        )
    x_step = frame.x_ticks[1] - frame.x_ticks[0] if len(frame.x_ticks) > 1 else 1.0
    for t in frame.x_ticks:
        x = _f(frame.x(t))
        out.append(
            f"<line class='tick' x1='{x}' x2='{x}' y1='{_f(frame.bottom)}' y2='{_f(frame.bottom + 4)}' "
            f"stroke='{AXIS_COLOUR}'/>"
        )
        out.append(
            f"<text class='tick-x' x='{x}' y='{_f(frame.bottom + 16)}' text-anchor='middle' "
            f"fill='{AXIS_COLOUR}' {FONT}>{tick_label(t, x_step)}</text>"
        )
    out.append(
        f"<path class='axis' d='M{_f(frame.left)} {_f(frame.top)}V{_f(frame.bottom)}H{_f(frame.right)}' "
        f"fill='none' stroke='{AXIS_COLOUR}'/>"
    )
    out.append(
        f"<text class='x-label' x='{_f((frame.left + frame.right) / 2)}' y='{chart.height - 6}' "
        f"text-anchor='middle' fill='{AXIS_COLOUR}' {FONT}>{escape(chart.x_label)}</text>"
    )
    return out


def _segments(frame: _Frame, points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((frame.x(x), frame.y(y)))
    return [r for r in runs if r]


def _series(frame: _Frame, chart: Chart) -> list[str]:
    out = []
    for seg in _segments(frame, chart.points):
        if len(seg) == 1:
            x, y = seg[0]
            out.append(f"<circle class='series' cx='{_f(x)}' cy='{_f(y)}' r='2.5' fill='{SERIES_COLOUR}'/>")
            continue
        coords = " ".join(f"{_f(x)},{_f(y)}" for x, y in seg)
        out.append(
            f"<polyline class='series' points='{coords}' fill='none' stroke='{SERIES_COLOUR}' "
            "stroke-width='2.5' stroke-linejoin='round'/>"
        )
    return out


def _overlays(frame: _Frame, chart: Chart) -> tuple[list[str], list[str]]:
    """(drawn under the series: the window; drawn over it: threshold and markers)."""
    under, over = [], []
    if chart.window is not None:
        x1, x2 = frame.x(chart.window[0]), frame.x(chart.window[1])
        under.append(
            f"<rect class='window' x='{_f(x1)}' y='{_f(frame.top)}' width='{_f(max(x2 - x1, 1.0))}' "
            f"height='{_f(frame.bottom - frame.top)}' fill='{WINDOW_COLOUR}' fill-opacity='0.16'/>"
        )
    if chart.threshold is not None:
        y = _f(frame.y(chart.threshold))
        over.append(
            f"<line class='threshold' x1='{_f(frame.left)}' x2='{_f(frame.right)}' y1='{y}' y2='{y}' "
            f"stroke='{THRESHOLD_COLOUR}' stroke-width='2' stroke-dasharray='7 4'/>"
        )
    for m in chart.markers:
        x = _f(frame.x(m.at))
        dash = " stroke-dasharray='2 3'" if m.dashed else ""
        over.append(
            f"<line class='marker' x1='{x}' x2='{x}' y1='{_f(frame.top)}' y2='{_f(frame.bottom)}' "
            f"stroke='{m.colour}' stroke-width='1.5'{dash}><title>{escape(m.label)}</title></line>"
        )
    return under, over


def _legend(chart: Chart) -> list[str]:
    entries: list[tuple[str, str]] = [
        (
            f"<line x1='0' x2='16' y1='0' y2='0' stroke='{SERIES_COLOUR}' stroke-width='2'/>",
            chart.series_label,
        )
    ]
    if chart.threshold is not None:
        entries.append(
            (
                f"<line x1='0' x2='16' y1='0' y2='0' stroke='{THRESHOLD_COLOUR}' stroke-width='2' "
                "stroke-dasharray='5 3'/>",
                chart.threshold_label,
            )
        )
    if chart.window is not None:
        entries.append(
            (
                f"<rect x='0' y='-5' width='16' height='10' fill='{WINDOW_COLOUR}' fill-opacity='0.3'/>",
                chart.window_label,
            )
        )
    for m in chart.markers:
        dash = " stroke-dasharray='2 2'" if m.dashed else ""
        entries.append(
            (f"<line x1='8' x2='8' y1='-6' y2='6' stroke='{m.colour}' stroke-width='2'{dash}/>", m.label)
        )
    out, x = [], 8.0
    for swatch, label in entries:
        out.append(
            f"<g class='legend' transform='translate({_f(x)},{20})'>{swatch}"
            f"<text x='21' y='0' dominant-baseline='middle' fill='#24292f' {FONT}>{escape(label)}</text></g>"
        )
        x += 30 + 6.8 * len(label)
    return out


def render_chart(chart: Chart) -> str:
    """The chart as an ``<svg>`` element (scales to its container's width)."""
    frame = _frame(chart)
    under, over = _overlays(frame, chart)
    parts = [
        f"<svg class='chart' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {chart.width} {chart.height}' "
        f"role='img' aria-label='{escape(chart.title)}'><title>{escape(chart.title)}</title>",
        f"<rect x='0' y='0' width='{chart.width}' height='{chart.height}' fill='#ffffff'/>",
        *under,
        *_axes(frame, chart),
        *_series(frame, chart),
        *over,
        *_legend(chart),
        "</svg>",
    ]
    return "".join(parts)
