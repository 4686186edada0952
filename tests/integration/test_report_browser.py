"""report.html in a real browser: Chromium renders it headless, and the screenshot shows
the SLI charts drawn (pixels of the series and threshold colours), not a blank page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaoslab.report.files import write_reports
from chaoslab.report.svg import SERIES_COLOUR, THRESHOLD_COLOUR, WINDOW_COLOUR
from tests.support.browser import CHROMIUM, screenshot
from tests.support.pdca_runs import old_run, sample_gameday_run
from tests.support.png import Picture, read_png

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="/usr/bin/chromium is absent (make test installs it with apt-get when run as root)",
)


def render(tmp_path: Path, run: dict[str, Any]) -> Picture:
    folder = tmp_path / "reports" / run["run_id"]
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(run))
    page = write_reports(run, folder, reports_dir=folder.parent)[1]
    png = tmp_path / "report.png"
    profile = tmp_path / "profile"
    profile.mkdir()
    done = screenshot(page, png, profile=profile, width=1200, height=2000)
    assert done.returncode == 0, done.stderr[-2000:]
    picture = read_png(png)
    assert (picture.width, picture.height) == (1200, 2000)
    return picture


def chart_pixels(picture: Picture) -> tuple[int, int, int]:
    """Pixels of the series colour, the threshold colour and the fault window's shade.
    These colours appear nowhere on the page but in the charts (see test_report_html)."""
    shaded = "#" + "".join(
        f"{round(255 - 0.16 * (255 - int(WINDOW_COLOUR[i : i + 2], 16))):02x}" for i in (1, 3, 5)
    )
    return (
        picture.count(SERIES_COLOUR, tolerance=8),
        picture.count(THRESHOLD_COLOUR, tolerance=8),
        picture.count(shaded, tolerance=6),
    )


def test_chromium_draws_the_sli_charts_of_report_html(tmp_path: Path) -> None:
    series, threshold, shaded = chart_pixels(render(tmp_path, sample_gameday_run()))
    assert series > 300, f"only {series} pixels of the series colour: the chart's line was not drawn"
    assert threshold > 120, f"only {threshold} pixels of the threshold colour: no threshold line"
    assert shaded > 2000, f"only {shaded} pixels of the fault window's shade: the window is not drawn"


def test_the_pixel_check_tells_a_page_without_charts_apart(tmp_path: Path) -> None:
    # The same page from a run.json without the PDCA record has no chart: the counts drop to nothing.
    series, threshold, shaded = chart_pixels(render(tmp_path, old_run()))
    assert (series, threshold, shaded) == (0, 0, 0)
