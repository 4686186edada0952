"""write_reports and <reports>/index.html: the files of a run, every run newest first, each
experiment's verdict trend across runs, and the open and reopened checklist items."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chaoslab.report.files import write_reports
from chaoslab.report.html import render_html
from chaoslab.report.index import render_index, trend
from chaoslab.report.markdown import render_markdown
from tests.support.pdca_runs import ITEM_CART, ITEM_CATALOG, ITEM_PAYMENT, RUN_ID, run_at, sample_gameday_run

WEEK = timedelta(days=7)
NOW = datetime(2026, 12, 6, 10, 15, tzinfo=UTC)


def save(reports: Path, run: dict[str, Any]) -> Path:
    folder = reports / run["run_id"]
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return folder


def history(reports: Path) -> None:
    """Three earlier runs, saved in an order that is not their time order."""
    save(reports, run_at("b-middle", NOW - 2 * WEEK, {"catalog-delay": "held", "payment-pod-kill": "held"}))
    save(
        reports,
        run_at("c-oldest", NOW - 3 * WEEK, {"catalog-delay": "deviated", "payment-pod-kill": "halted"}),
    )
    save(reports, run_at("a-latest-before", NOW - WEEK, {"payment-pod-kill": "error"}))


def trend_rows(html: str) -> dict[str, list[str]]:
    """experiment → the cells of its trend row: 'run-id: verdict', or '' where absent."""
    table = html.split("<table class='trend'>", 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", table):
        cells = re.findall(r"<td class='cell'>(.*?)</td>", row[1])
        rows[row[0]] = [
            m.group(1) if (m := re.search(r"title='([^']+)'", c)) and "none" not in c else "" for c in cells
        ]
    return rows


def test_write_reports_writes_the_two_reports_and_the_index(tmp_path: Path) -> None:
    run = sample_gameday_run()
    folder = save(tmp_path, run)
    paths = write_reports(run, folder, reports_dir=tmp_path)
    assert paths == [folder / "report.md", folder / "report.html", tmp_path / "index.html"]
    assert paths[0].read_text(encoding="utf-8") == render_markdown(run)
    assert paths[1].read_text(encoding="utf-8") == render_html(run)
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        [RUN_ID, "run.json", "report.md", "report.html", "index-entry.json", "index.html"]
    ), "temporary files left behind"


def test_index_lists_every_run_newest_first_with_the_current_one_on_top(tmp_path: Path) -> None:
    history(tmp_path)
    run = sample_gameday_run()
    # run.json of the current run is not needed for it to be listed.
    write_reports(run, tmp_path / run["run_id"], reports_dir=tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    runs_table = html.split("<table class='runs'>", 1)[1]
    listed = re.findall(r"<a href='([^/']+)/report.html'>", runs_table)
    assert listed == [RUN_ID, "a-latest-before", "b-middle", "c-oldest"]


def test_trend_shows_each_experiments_verdicts_across_runs_newest_first(tmp_path: Path) -> None:
    history(tmp_path)
    run = sample_gameday_run()
    write_reports(run, save(tmp_path, run), reports_dir=tmp_path)
    rows = trend_rows((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert rows["payment-pod-kill"] == [
        f"{RUN_ID}: halted",
        "a-latest-before: error",
        "b-middle: held",
        "c-oldest: halted",
    ]
    assert rows["catalog-delay"] == [f"{RUN_ID}: held", "", "b-middle: held", "c-oldest: deviated"]
    assert rows["payment-delay"] == [f"{RUN_ID}: skipped", "", "", ""]


def test_a_run_with_an_experiment_twice_shows_its_worst_verdict() -> None:
    run = run_at("r1", NOW, {"payment-pod-kill": "held"})
    run["steps"].append({**run["steps"][0], "verdict": "halted"})
    assert trend([run], "payment-pod-kill") == [("r1", "halted")]


def test_index_shows_only_open_and_reopened_items_reopened_first(tmp_path: Path) -> None:
    run = sample_gameday_run()
    items = [dict(i) for i in run["checklist"]]
    items[1] = {**items[1], "status": "reopened"}  # the cart item came back
    write_reports(run, save(tmp_path, run), reports_dir=tmp_path, items=items)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    section = html.split("id='checklist'", 1)[1].split("</section>", 1)[0]
    assert ITEM_CATALOG not in section  # accepted
    assert section.index(ITEM_CART) < section.index(ITEM_PAYMENT)
    assert "2 open or reopened checklist items" in html


def test_items_default_to_the_runs_own_checklist(tmp_path: Path) -> None:
    run = sample_gameday_run()
    write_reports(run, save(tmp_path, run), reports_dir=tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert ITEM_PAYMENT in html
    assert "1 open or reopened checklist items" in html


def test_a_broken_run_folder_does_not_hide_the_others(tmp_path: Path) -> None:
    history(tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "run.json").write_text("[]", encoding="utf-8")
    run = sample_gameday_run()
    write_reports(run, save(tmp_path, run), reports_dir=tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "5 runs" not in html
    assert "4 runs" in html


def test_index_of_nothing_and_escaping() -> None:
    assert "No run yet." in render_index([], [])
    evil = run_at("<b>x</b>", NOW, {"<img src=x>": "held"})
    html = render_index([evil], [{"id": "<i>", "status": "open", "text": "<script>"}])
    assert "<img" not in html
    assert "<script>" not in html
    assert "<b>x</b>" not in html


def test_the_index_reads_each_run_once_then_its_entry_until_the_run_changes(tmp_path: Path) -> None:
    history(tmp_path)
    entries = sorted(tmp_path.glob("*/index-entry.json"))
    assert not entries  # history() wrote run.json files only
    run = sample_gameday_run()
    write_reports(run, tmp_path / run["run_id"], reports_dir=tmp_path)
    entries = sorted(tmp_path.glob("*/index-entry.json"))
    assert len(entries) == 4  # the three earlier runs' (made while indexing) and the current one's
    first = (tmp_path / "index.html").read_text(encoding="utf-8")
    # An entry stands for its run.json: the index is the same from the entries alone.
    write_reports(run, tmp_path / run["run_id"], reports_dir=tmp_path)
    assert (tmp_path / "index.html").read_text(encoding="utf-8") == first
    # A run.json changed after its entry (a re-rendered or repaired record) is read again.
    older = sorted(p for p in tmp_path.glob("*/run.json") if p.parent.name != run["run_id"])[0]
    doc = json.loads(older.read_text(encoding="utf-8"))
    doc["gameday"] = "renamed-after-the-fact"
    entry = older.with_name("index-entry.json")
    older.write_text(json.dumps(doc), encoding="utf-8")
    os.utime(entry, ns=(entry.stat().st_atime_ns, older.stat().st_mtime_ns - 1_000_000))
    write_reports(run, tmp_path / run["run_id"], reports_dir=tmp_path)
    assert "renamed-after-the-fact" in (tmp_path / "index.html").read_text(encoding="utf-8")
    # An unreadable entry is made again from its run.json.
    entry.write_text("{not json", encoding="utf-8")
    os.utime(entry, ns=(entry.stat().st_atime_ns, older.stat().st_mtime_ns + 1_000_000))
    write_reports(run, tmp_path / run["run_id"], reports_dir=tmp_path)
    assert "renamed-after-the-fact" in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert json.loads(entry.read_text(encoding="utf-8"))["gameday"] == "renamed-after-the-fact"
