"""Reading a run folder's ``run.json`` back, checked enough for the reports to render it.

A missing folder or file, a file that is not JSON, or a field of the wrong shape raises
:class:`~chaoslab.errors.InvalidInputError` naming the file and the field (exit 2 in the
CLI). Optional keys may be absent (a run.json written before ``pdca`` existed renders).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from chaoslab.errors import InvalidInputError

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"

_REQUIRED_TEXT = ("run_id", "verdict")
_PDCA_LISTS = ("plan", "do", "check", "act")


def load_run(run_dir: Path) -> dict[str, Any]:
    """The run.json document of ``run_dir``."""
    if not run_dir.is_dir():
        what = "is not a directory" if run_dir.exists() else "no such directory"
        raise InvalidInputError(run_dir, "", f"{what} (give a run folder, reports/<run-id>)")
    path = run_dir / RUN_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(path, "", "no such file: not a run folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(path, "", f"cannot read it: {exc}") from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            path, "", f"not valid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno
        ) from None
    check_run(doc, path)
    return doc  # type: ignore[no-any-return]


def check_run(doc: Any, path: Path) -> None:
    """Raise InvalidInputError for the first field the reports cannot use."""
    if not isinstance(doc, dict):
        raise InvalidInputError(path, "", "not a run record: expected a JSON object")
    for key in _REQUIRED_TEXT:
        if not isinstance(doc.get(key), str):
            raise InvalidInputError(path, key, _missing(doc, key, "a string"))
    _objects(doc, "steps", path, "steps", required=True)
    for i, step in enumerate(doc["steps"]):
        if not isinstance(step.get("verdict"), str):
            raise InvalidInputError(path, f"steps[{i}].verdict", _missing(step, "verdict", "a string"))
    _objects(doc, "checklist", path, "checklist", required=False)
    pdca = doc.get("pdca")
    if pdca is None:
        return
    if not isinstance(pdca, dict):
        raise InvalidInputError(path, "pdca", "expected an object")
    for key in _PDCA_LISTS:
        _objects(pdca, key, path, f"pdca.{key}", required=False)
    for i, check in enumerate(pdca.get("check") or []):
        _objects(check, "slis", path, f"pdca.check[{i}].slis", required=False)
        for j, sli in enumerate(check.get("slis") or []):
            _check_points(sli.get("points"), path, f"pdca.check[{i}].slis[{j}].points")


def _missing(doc: dict[str, Any], key: str, expected: str) -> str:
    return "missing" if key not in doc else f"expected {expected}, got {type(doc[key]).__name__}"


def _objects(doc: dict[str, Any], key: str, path: Path, field: str, *, required: bool) -> None:
    value = doc.get(key)
    if value is None and not required:
        return
    if not isinstance(value, list):
        raise InvalidInputError(path, field, _missing(doc, key, "a list"))
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidInputError(path, f"{field}[{i}]", f"expected an object, got {type(item).__name__}")


def _check_points(points: Any, path: Path, field: str) -> None:
    if points is None:
        return
    if not isinstance(points, list):
        raise InvalidInputError(
            path, field, f"expected a list of [seconds, value], got {type(points).__name__}"
        )
    for i, pair in enumerate(points):
        ok = (
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], int | float)
            and (pair[1] is None or isinstance(pair[1], int | float))
        )
        if not ok:
            raise InvalidInputError(path, f"{field}[{i}]", "expected [unix seconds, value or null]")
