"""Reading a chart back from its SVG: the tick labels drawn on each axis give the mapping
between values and pixels, so geometry is checked against what a reader sees, not
against the renderer's own arithmetic."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def charts_in(html: str) -> list[tuple[str, ET.Element]]:
    """Every ``<svg class='chart'>`` of a page, in page order, with its title."""
    out = []
    for match in re.finditer(r"<svg class='chart'.*?</svg>", html, flags=re.DOTALL):
        svg = parse(match.group(0))
        out.append((svg.findtext(f"{SVG}title") or "", svg))
    return out


def chart_titled(html: str, title: str) -> ET.Element:
    """The first chart of a page with this title."""
    return next(svg for name, svg in charts_in(html) if name == title)


def elements(svg: ET.Element, css: str) -> list[ET.Element]:
    return [el for el in svg.iter() if css in (el.get("class") or "").split()]


def ticks(svg: ET.Element, axis: str) -> list[tuple[float, float]]:
    """(value, pixel) of each tick label of the ``x`` or ``y`` axis."""
    coord = "x" if axis == "x" else "y"
    out = [(float(el.text or "nan"), float(el.get(coord, "nan"))) for el in elements(svg, f"tick-{axis}")]
    assert len(out) >= 2, f"the {axis} axis has fewer than two tick labels"
    return sorted(out)


def axis_value_at(svg: ET.Element, axis: str, pixel: float) -> float:
    """The value at ``pixel`` on an axis, linear between its first and last tick labels."""
    (v0, p0), (v1, p1) = ticks(svg, axis)[0], ticks(svg, axis)[-1]
    return v0 + (pixel - p0) * (v1 - v0) / (p1 - p0)


def position_of(svg: ET.Element, axis: str, value: float) -> float:
    (v0, p0), (v1, p1) = ticks(svg, axis)[0], ticks(svg, axis)[-1]
    return p0 + (value - v0) * (p1 - p0) / (v1 - v0)
