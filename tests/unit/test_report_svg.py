"""The SVG chart renderer: round ticks, and geometry read back from the drawn axes (the
threshold line sits at its value on the y axis, the fault window spans its seconds on the
x axis), gaps, markers and escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from chaoslab.report.svg import (
    SERIES_COLOUR,
    THRESHOLD_COLOUR,
    Chart,
    Marker,
    render_chart,
    tick_label,
    ticks,
)
from tests.support.svgcheck import axis_value_at, elements, parse, position_of

SVG = "{http://www.w3.org/2000/svg}"


def ramp() -> list[tuple[float, float | None]]:
    return [(float(t), max(0.0, min(0.31, (t - 1) * 0.1))) for t in range(-15, 46)]


def chart(**overrides: object) -> Chart:
    values: dict[str, object] = {
        "title": "PaymentErrors (payment): SLI over time",
        "points": ramp(),
        "series_label": "SLI",
        "x_label": "seconds from injection",
        "threshold": 0.05,
        "threshold_label": "threshold > 0.05",
        "window": (0.0, 1.9),
        "markers": (
            Marker(at=1.6, label="breach", colour="#a40e26", dashed=True),
            Marker(at=15.5, label="recovered", colour="#2ca02c"),
        ),
    }
    values.update(overrides)
    return Chart(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.0, 0.31, [0.0, 0.1, 0.2, 0.3, 0.4]),
        (0.0, 1.05, [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]),
        (-15.0, 45.0, [-20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0]),
        (0.0, 0.0042, [0.0, 0.001, 0.002, 0.003, 0.004, 0.005]),
        (5.0, 5.0, [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
    ],
)
def test_ticks_are_round_and_cover_the_range(low: float, high: float, expected: list[float]) -> None:
    assert ticks(low, high, 5 if high - low < 50 else 8) == pytest.approx(expected)


def test_tick_labels_have_the_decimals_their_step_needs() -> None:
    assert [tick_label(v, 0.1) for v in (0.0, 0.1, 0.3)] == ["0.0", "0.1", "0.3"]
    assert tick_label(0.75, 0.25) == "0.75"
    assert tick_label(0.05, 0.025) == "0.050"
    assert tick_label(-10.0, 10.0) == "-10"


def test_the_threshold_line_sits_at_its_value_on_the_drawn_y_axis() -> None:
    svg = parse(render_chart(chart()))
    (line,) = elements(svg, "threshold")
    assert line.get("y1") == line.get("y2")
    assert line.get("stroke") == THRESHOLD_COLOUR
    assert axis_value_at(svg, "y", float(line.get("y1", "nan"))) == pytest.approx(0.05, abs=0.002)
    # And horizontally across the whole plot.
    assert (
        float(line.get("x1", "0"))
        < position_of(svg, "x", -10)
        < position_of(svg, "x", 40)
        < float(line.get("x2", "0"))
    )


def test_the_fault_window_is_shaded_from_injection_to_removal() -> None:
    svg = parse(render_chart(chart(window=(2.0, 22.0))))
    (rect,) = elements(svg, "window")
    left = float(rect.get("x", "nan"))
    right = left + float(rect.get("width", "nan"))
    assert axis_value_at(svg, "x", left) == pytest.approx(2.0, abs=0.05)
    assert axis_value_at(svg, "x", right) == pytest.approx(22.0, abs=0.05)
    (threshold,) = elements(svg, "threshold")
    # The shading fills the plot's height: from above the threshold down to the x axis.
    assert float(rect.get("y", "nan")) < float(threshold.get("y1", "nan"))
    assert float(rect.get("y", "0")) + float(rect.get("height", "0")) == pytest.approx(
        position_of(svg, "y", 0.0), abs=0.2
    )


def test_the_series_goes_through_its_points() -> None:
    svg = parse(render_chart(chart()))
    (line,) = elements(svg, "series")
    assert line.get("stroke") == SERIES_COLOUR
    coords = [tuple(map(float, pair.split(","))) for pair in line.get("points", "").split()]
    assert len(coords) == len(ramp())
    assert axis_value_at(svg, "x", coords[0][0]) == pytest.approx(-15, abs=0.05)
    assert axis_value_at(svg, "x", coords[-1][0]) == pytest.approx(45, abs=0.05)
    assert max(axis_value_at(svg, "y", y) for _, y in coords) == pytest.approx(0.31, abs=0.002)


def test_a_gap_in_the_series_breaks_the_line() -> None:
    points = ramp()
    points[30] = (points[30][0], None)
    lines = elements(parse(render_chart(chart(points=points))), "series")
    assert [len(p.get("points", "").split()) for p in lines] == [30, 30]


def test_markers_are_vertical_lines_at_their_time_and_in_the_legend() -> None:
    svg = parse(render_chart(chart()))
    markers = elements(svg, "marker")
    assert [m.findtext(f"{SVG}title") for m in markers] == ["breach", "recovered"]
    for marker, at in zip(markers, (1.6, 15.5), strict=True):
        assert marker.get("x1") == marker.get("x2")
        assert axis_value_at(svg, "x", float(marker.get("x1", "nan"))) == pytest.approx(at, abs=0.05)
    legend = [g.findtext(f"{SVG}text") for g in elements(svg, "legend")]
    assert legend == ["SLI", "threshold > 0.05", "fault", "breach", "recovered"]


def test_text_from_the_run_is_escaped() -> None:
    text = render_chart(chart(title="<script>alert(1)</script>", threshold_label="a & b < c"))
    assert "<script>" not in text
    svg = parse(text)  # still well-formed XML
    assert svg.findtext(f"{SVG}title") == "<script>alert(1)</script>"


def test_degenerate_series_still_draw() -> None:
    flat = parse(
        render_chart(chart(points=[(0.0, 0.2), (1.0, 0.2)], threshold=None, window=None, markers=()))
    )
    assert elements(flat, "series")
    assert not elements(flat, "threshold")
    single = parse(render_chart(chart(points=[(3.0, 0.0)], window=None, markers=())))
    assert single.find(f".//{SVG}circle[@class='series']") is not None
    empty = parse(render_chart(chart(points=[], window=None, markers=())))
    assert not elements(empty, "series")
    assert ET.tostring(empty)
