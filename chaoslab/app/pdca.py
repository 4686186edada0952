"""The PDCA step of a run, once for the CLI and the Python API: the run's Plan-Do-Check-Act
record and the checklist ledger updated (``chaoslab.pdca``), and the checklist as it stands.

A ledger that cannot be written does not lose the run: the result comes back without its
PDCA record and with ``record_error`` set, which the CLI turns into exit 3."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.errors import ChaoslabError

if TYPE_CHECKING:
    from chaoslab.model import AlertRule, Plan, RunResult
    from chaoslab.pdca_model import ChecklistItem
    from chaoslab.ports import MetricsSource
    from chaoslab.settings import Settings

logger = logging.getLogger(__name__)


def record_pdca(
    plan: Plan, result: RunResult, *, rules: Sequence[AlertRule], metrics: MetricsSource, settings: Settings,
) -> RunResult:
    """``result`` with its PDCA record, the ledger of its reports folder updated (nothing for
    a dry run)."""
    if result.dry_run or result.directory is None:
        return result
    from chaoslab.pdca.cycle import complete_record
    from chaoslab.pdca.ledger import open_ledger

    try:
        with open_ledger(result.directory.parent, secrets=(settings.prometheus_token,)) as ledger:
            return complete_record(plan, result, rules=rules, metrics=metrics, ledger=ledger)
    except ChaoslabError as exc:
        logger.error("cannot update the checklist: %s", exc)
        return dataclasses.replace(result, record_error=f"cannot update the checklist: {exc}")


def read_items(reports_dir: Path, *, statuses: Sequence[str] | None = None,
               service: str | None = None) -> list[ChecklistItem]:
    """The checklist of ``reports_dir`` (empty when no run has written one yet)."""
    from chaoslab.pdca.ledger import DB_FILE, open_ledger
    from chaoslab.pdca_model import ItemStatus

    if not (reports_dir / DB_FILE).exists():
        return []
    wanted = None if statuses is None else {ItemStatus(s) for s in statuses}
    with open_ledger(reports_dir) as ledger:
        return ledger.items(statuses=wanted, service=service)


def current_items(reports_dir: Path) -> list[dict[str, Any]]:
    """Every item of the checklist as it stands, as run.json's ``checklist`` holds them
    (what ``checklist --format json --status all`` prints, and what reports render)."""
    from chaoslab.report.pdca_record import checklist_to_list

    return checklist_to_list(read_items(reports_dir))
