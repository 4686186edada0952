"""`chaoslab report RUN_DIR` as a child process: re-renders report.md and report.html from
run.json, prints run.json with --format json, and refuses a bad folder with exit 2 and
one line naming the file (and the field)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaoslab.report.html import render_html
from chaoslab.report.markdown import render_markdown
from tests.support.gameday import cli_env, describe, run_cli
from tests.support.pdca_runs import RUN_ID, old_run, sample_gameday_run


def run_folder(tmp_path: Path, run: dict[str, Any] | str) -> Path:
    folder = tmp_path / "reports" / RUN_ID
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(run if isinstance(run, str) else json.dumps(run, indent=2))
    return folder


def report(tmp_path: Path, *args: str) -> Any:
    return run_cli(["report", *args], env=cli_env(), cwd=tmp_path, timeout=60)


def test_report_writes_both_reports_and_prints_their_paths(tmp_path: Path) -> None:
    run = sample_gameday_run()
    folder = run_folder(tmp_path, run)
    result = report(tmp_path, str(folder))
    assert result.returncode == 0, describe(result)
    assert result.stdout.splitlines() == [str(folder / "report.md"), str(folder / "report.html")]
    assert (folder / "report.md").read_text(encoding="utf-8") == render_markdown(run)
    assert (folder / "report.html").read_text(encoding="utf-8") == render_html(run)
    assert result.stderr == ""


@pytest.mark.parametrize(("fmt", "written"), [("md", "report.md"), ("html", "report.html")])
def test_report_format_writes_one_report(tmp_path: Path, fmt: str, written: str) -> None:
    folder = run_folder(tmp_path, sample_gameday_run())
    result = report(tmp_path, "--format", fmt, str(folder))
    assert result.returncode == 0, describe(result)
    assert result.stdout.strip() == str(folder / written)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["run.json", written])


def test_report_format_json_prints_the_run_record_and_writes_nothing(tmp_path: Path) -> None:
    run = sample_gameday_run()
    folder = run_folder(tmp_path, run)
    result = report(tmp_path, "--format", "json", str(folder))
    assert result.returncode == 0, describe(result)
    assert json.loads(result.stdout) == run
    assert [p.name for p in folder.iterdir()] == ["run.json"]


def test_report_renders_an_old_run_json(tmp_path: Path) -> None:
    folder = run_folder(tmp_path, old_run())
    result = report(tmp_path, str(folder))
    assert result.returncode == 0, describe(result)
    assert "has no PDCA record" in (folder / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "reports/20261206T101500Z-3f2a/run.json: no such file"),
        ('{"run_id": "x",', "reports/20261206T101500Z-3f2a/run.json:1: not valid JSON"),
        ("[1, 2]", "run.json: not a run record: expected a JSON object"),
        ('{"verdict": "held", "steps": []}', "run.json: run_id: missing"),
        (
            '{"run_id": "x", "verdict": "held", "steps": [{"verdict": 3}]}',
            "run.json: steps[0].verdict: expected a string, got int",
        ),
        (
            (
                '{"run_id": "x", "verdict": "held", "steps": [], '
                '"pdca": {"check": [{"slis": [{"points": [[1]]}]}]}}'
            ),
            "run.json: pdca.check[0].slis[0].points[0]: expected [unix seconds, value or null]",
        ),
    ],
)
def test_a_bad_run_folder_is_exit_2_with_one_line(tmp_path: Path, content: str | None, expected: str) -> None:
    folder = tmp_path / "reports" / RUN_ID
    folder.mkdir(parents=True)
    if content is not None:
        (folder / "run.json").write_text(content)
    result = report(tmp_path, f"reports/{RUN_ID}")
    assert result.returncode == 2, describe(result)
    assert len(result.stderr.splitlines()) == 1, describe(result)
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (folder / "report.md").exists()


def test_a_missing_folder_is_exit_2(tmp_path: Path) -> None:
    result = report(tmp_path, "reports/nope")
    assert result.returncode == 2, describe(result)
    assert (
        result.stderr.strip()
        == "chaoslab: reports/nope: no such directory (give a run folder, reports/<run-id>)"
    )


def test_help_has_examples(tmp_path: Path) -> None:
    result = report(tmp_path, "--help")
    assert result.returncode == 0
    assert "chaoslab report reports/20261206T101500Z-3f2a" in result.stdout
    assert "--format {md,html,json}" in result.stdout
    top = run_cli(["--help"], env=cli_env(), cwd=tmp_path, timeout=60)
    assert "re-render a run's report" in top.stdout
