"""Writing a run's reports: ``report.md`` and ``report.html`` in its folder, and the
folder-wide ``index.html``. Every file is written atomically (a reader, or a browser
reloading the page, never sees half a file; two runs finishing at once never mix).

The index lists every run of the folder, so each run rewrites it from all of them. A run
folder keeps the few fields the index shows in ``index-entry.json`` beside its run.json
(a game day's run.json is over 100 KiB): a folder of a year of nightly runs is read in
milliseconds rather than parsed whole on every run. An entry older than its run.json,
or unreadable, is made again from the run.json.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.report.view import records, text

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"
INDEX_FILE = "index.html"
RUN_FILE = "run.json"
ENTRY_FILE = "index-entry.json"
_ENTRY_KEYS = ("run_id", "started_at", "gameday", "target", "verdict")


def write_text(path: Path, content: str) -> Path:
    """Write ``path`` atomically: a unique temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def index_entry(run: Mapping[str, Any]) -> dict[str, Any]:
    """What the index shows of a run: its id, start, game day, target and verdict, and each
    step's experiment and verdict."""
    steps = [{"experiment": text(step, "experiment"), "verdict": text(step, "verdict")}
             for step in records(run, "steps")]
    return {**{k: run.get(k) for k in _ENTRY_KEYS}, "steps": steps}


def write_entry(run: Mapping[str, Any], run_dir: Path) -> Path:
    """``run_dir/index-entry.json``: the index's few fields of ``run``."""
    return write_text(run_dir / ENTRY_FILE, json.dumps(index_entry(run)) + "\n")


def runs_in(reports_dir: Path) -> list[dict[str, Any]]:
    """The index entries of the runs in ``reports_dir/*/`` (from each run's index-entry.json,
    else its run.json), newest first. A folder whose run.json cannot be read is left out
    (with a warning): one broken run must not hide the others."""
    runs = []
    for path in sorted(reports_dir.glob(f"*/{RUN_FILE}")):
        entry = _fresh_entry(path)
        if entry is not None:
            runs.append(entry)
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            logger.warning("index: %s left out: %s", path, exc)
            continue
        if isinstance(doc, dict) and isinstance(doc.get("run_id"), str):
            runs.append(index_entry(doc))
            try:
                write_entry(doc, path.parent)
            except OSError as exc:  # a read-only folder: the index is still right, only slower
                logger.debug("index: cannot keep %s: %s", path.parent / ENTRY_FILE, exc)
        else:
            logger.warning("index: %s left out: not a run record", path)
    return newest_first(runs)


def _fresh_entry(run_file: Path) -> dict[str, Any] | None:
    """The run's index entry when it is at least as new as its run.json and readable."""
    entry_file = run_file.with_name(ENTRY_FILE)
    try:
        if entry_file.stat().st_mtime_ns < run_file.stat().st_mtime_ns:
            return None
        entry = json.loads(entry_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("steps"), list):
        return None
    return entry if isinstance(entry.get("run_id"), str) else None


def newest_first(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # ISO-8601 UTC strings with a Z sort as times; the run id (time-prefixed) breaks ties.
    return sorted(runs, key=lambda r: (text(r, "started_at"), text(r, "run_id")), reverse=True)


def write_run_reports(
    run: Mapping[str, Any], run_dir: Path, *, formats: tuple[str, ...] = ("md", "html")
) -> list[Path]:
    """report.md and/or report.html of one run, in ``run_dir``."""
    from chaoslab.report.html import render_html
    from chaoslab.report.markdown import render_markdown

    paths = []
    if "md" in formats:
        paths.append(write_text(run_dir / MARKDOWN_FILE, render_markdown(run)))
    if "html" in formats:
        paths.append(write_text(run_dir / HTML_FILE, render_html(run)))
    return paths


def write_index(
    reports_dir: Path, *, items: list[dict[str, Any]], current: Mapping[str, Any] | None = None
) -> Path:
    """``reports_dir/index.html`` from every run folder in it (``current`` counts even
    when its run.json is not written yet)."""
    from chaoslab.report.index import render_index

    runs = runs_in(reports_dir) if reports_dir.is_dir() else []
    if current is not None:
        runs = [r for r in runs if text(r, "run_id") != text(current, "run_id")] + [index_entry(current)]
    return write_text(reports_dir / INDEX_FILE, render_index(newest_first(runs), items))


def write_reports(
    run: dict[str, Any], run_dir: Path, *, reports_dir: Path, items: list[dict[str, Any]] | None = None
) -> list[Path]:
    """Write report.md and report.html into ``run_dir`` and rewrite ``reports_dir/index.html``.

    ``run`` is the run.json document; ``items`` the whole checklist as it stands now
    (default: the run's own ``checklist`` key). Returns the paths written.
    """
    if items is None:
        raw = run.get("checklist")
        items = [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []
    paths = write_run_reports(run, run_dir)
    write_entry(run, run_dir)
    paths.append(write_index(reports_dir, items=items, current=run))
    logger.info("reports written: %s", ", ".join(str(p) for p in paths))
    return paths
