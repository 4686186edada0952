"""report.html from a run.json document: self-contained, escaped, the verdict table first,
the same sections as report.md, and an SLI chart per alert whose geometry matches the run."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from chaoslab.report.html import render_html
from chaoslab.report.svg import SERIES_COLOUR, THRESHOLD_COLOUR
from tests.support.pdca_runs import ITEM_PAYMENT, old_run, sample_gameday_run
from tests.support.svgcheck import axis_value_at, chart_titled, charts_in, elements

XSS = "<script>alert('x')</script>"


class Outline(HTMLParser):
    """Headings, tags seen and attributes that could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.tags: set[str] = set()
        self.sources: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.sources += [v or "" for k, v in attrs if k in ("src", "srcset", "data")]
        self.sources += [v or "" for k, v in attrs if k == "href" and not (v or "").startswith("#")]
        if tag in ("h1", "h2", "h3"):
            self._in = tag
            self.headings.append(f"{tag}:")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.headings[-1] += data


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser


def test_the_page_is_self_contained() -> None:
    html = render_html(sample_gameday_run())
    seen = outline(html)
    assert html.startswith("<!DOCTYPE html>")
    assert not {"script", "link", "img", "iframe", "object"} & seen.tags
    assert seen.sources == []
    assert "@import" not in html
    assert "url(" not in html
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)


def test_verdict_table_first_then_the_steps_in_order_with_their_pdca_sections() -> None:
    headings = [
        h.split(" ")[0] if h.startswith("h3") else h
        for h in outline(render_html(sample_gameday_run())).headings
    ]
    assert headings[:2] == ["h1:Game day shop-weekly halted", "h2:Verdicts"]
    steps = [h for h in headings if re.match(r"h2:\d\.", h)]
    assert steps == [
        "h2:1. catalog-delay held",
        "h2:2. cart-delay held",
        "h2:3. payment-pod-kill halted",
        "h2:4. payment-delay skipped",
    ]
    start = headings.index("h2:3. payment-pod-kill halted")
    assert headings[start + 1 : start + 5] == ["h3:Plan", "h3:Timeline", "h3:Check", "h3:Act"]
    assert headings[-1] == "h2:Checklist after this run"


def test_verdicts_are_coloured_and_link_to_their_step() -> None:
    html = render_html(sample_gameday_run())
    assert "<span class='badge v-halted' style='background:#a40e26'>halted</span>" in html
    assert "<span class='badge v-held' style='background:#1a7f37'>held</span>" in html
    assert "<a href='#step-3-payment-pod-kill'>payment-pod-kill</a>" in html
    assert "id='step-3-payment-pod-kill'" in html


def test_one_chart_per_sli_with_points() -> None:
    run = sample_gameday_run()
    charts = charts_in(render_html(run))
    slis = [sli for check in run["pdca"]["check"] for sli in check["slis"]]
    assert len(charts) == len(slis) == 7
    assert [title for title, _ in charts][4:] == [
        "PaymentHighErrorRate (payment): SLI over time",
        "PaymentHighLatencyP99 (payment): SLI over time",
        "ShopAvailabilityBurn: SLI over time",
    ]


def test_the_payment_chart_shows_threshold_fault_window_halt_and_recovery_where_they_happened() -> None:
    chart = chart_titled(render_html(sample_gameday_run()), "PaymentHighErrorRate (payment): SLI over time")
    (threshold,) = elements(chart, "threshold")
    assert axis_value_at(chart, "y", float(threshold.get("y1", "nan"))) == pytest.approx(0.05, abs=0.002)
    (window,) = elements(chart, "window")
    left = float(window.get("x", "nan"))
    # x is seconds from the injection (10:15:51.000); the fault was removed at 10:15:52.900.
    assert axis_value_at(chart, "x", left) == pytest.approx(0.0, abs=0.05)
    assert axis_value_at(chart, "x", left + float(window.get("width", "nan"))) == pytest.approx(1.9, abs=0.05)
    markers = {
        m.findtext("{http://www.w3.org/2000/svg}title"): float(m.get("x1", "nan"))
        for m in elements(chart, "marker")
    }
    assert set(markers) == {"breach", "halt", "recovered"}
    assert axis_value_at(chart, "x", markers["breach"]) == pytest.approx(1.6, abs=0.05)
    assert axis_value_at(chart, "x", markers["halt"]) == pytest.approx(1.9, abs=0.05)
    assert axis_value_at(chart, "x", markers["recovered"]) == pytest.approx(15.5, abs=0.05)
    (series,) = elements(chart, "series")
    peak = min(float(p.split(",")[1]) for p in series.get("points", "").split())
    assert axis_value_at(chart, "y", peak) == pytest.approx(0.31, abs=0.002)


def test_a_held_step_marks_no_halt() -> None:
    chart = chart_titled(render_html(sample_gameday_run()), "ShopAvailabilityBurn: SLI over time")
    assert [m.findtext("{http://www.w3.org/2000/svg}title") for m in elements(chart, "marker")] == [
        "recovered"
    ]


def test_check_numbers_and_detection_are_on_the_page() -> None:
    html = render_html(sample_gameday_run())
    assert "<b>0.30 s</b><span>halt latency (breach → fault removed)</span>" in html
    assert "<b>13.6 s</b><span>recovery (target 60 s)</span>" in html
    assert "<b>1 of 1</b><span>alerts with a breached SLI that noticed it</span>" in html
    assert "min 0 · max 0.31 · threshold &gt; 0.05 · 13 of 61 samples past it" in html
    assert "no (SLI never breached)" in html
    assert ITEM_PAYMENT in html


def test_chart_colours_are_used_by_the_charts_only() -> None:
    # The browser test counts these colours' pixels to tell a drawn chart from a blank page.
    html = render_html(sample_gameday_run())
    outside = re.sub(r"<svg class='chart'.*?</svg>", "", html, flags=re.DOTALL)
    assert SERIES_COLOUR not in outside
    assert THRESHOLD_COLOUR not in outside.replace("figure.breached{border-color:#d62728}", "")


def test_every_string_from_the_run_is_escaped() -> None:
    run = sample_gameday_run()
    run["gameday"] = XSS
    run["steps"][2]["reason"] = XSS
    run["pdca"]["check"][2]["reason"] = XSS
    run["pdca"]["check"][2]["slis"][0]["alert"] = XSS
    run["pdca"]["check"][2]["slis"][0]["query"] = "x' onmouseover='alert(1)"
    run["pdca"]["plan"][2]["hypothesis"][0]["alert"] = XSS
    run["pdca"]["plan"][2]["halt_conditions"][0] = XSS + ": up == 0"
    run["pdca"]["do"][2]["events"][1]["pods"] = [XSS]
    run["pdca"]["check"][2]["findings"][0]["text"] = XSS
    run["checklist"][0]["text"] = XSS
    run["checklist"][0]["id"] = XSS
    run["checklist"][0]["note"] = XSS
    run["steps"][2]["experiment"] = XSS
    html = render_html(run)
    assert "<script" not in html
    assert "onmouseover='" not in html
    assert html.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;") >= 9
    charts_in(html)  # the charts are still well-formed


def test_an_old_run_json_renders_with_a_note_and_no_charts() -> None:
    html = render_html(old_run())
    assert "has no PDCA record" in html
    assert charts_in(html) == []
    assert "<b>0.30 s</b><span>halt latency (breach → fault removed)</span>" in html
    assert "Checklist after this run" not in html


def test_an_sli_whose_range_query_failed_says_why() -> None:
    run = sample_gameday_run()
    run["pdca"]["check"][2]["slis"][1] = {
        **run["pdca"]["check"][2]["slis"][1],
        "points": [],
        "error": "Prometheus answered 503",
    }
    html = render_html(run)
    assert "no series: Prometheus answered 503" in html
    assert len(charts_in(html)) == 6
