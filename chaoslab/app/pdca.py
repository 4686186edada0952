"""The PDCA step of a run, once for the CLI and the Python API: the run's Plan-Do-Check-Act
record and the checklist ledger updated (``chaoslab.pdca``), and the checklist as it stands.

A ledger that cannot be written does not lose the run: the result comes back without its
PDCA record and with ``record_error`` set, which the CLI turns into exit 3."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.errors import ChaoslabError
from chaoslab.runner.events import STEP_FINISHED, RunEvent

if TYPE_CHECKING:
    from chaoslab.model import AlertRule, Plan, RunResult, Step, StepResult
    from chaoslab.pdca.collect import Observation, Observed
    from chaoslab.pdca_model import ChecklistItem
    from chaoslab.ports import MetricsSource
    from chaoslab.settings import Settings

logger = logging.getLogger(__name__)


def record_pdca(
    plan: Plan, result: RunResult, *, rules: Sequence[AlertRule], metrics: MetricsSource, settings: Settings,
    observed: Observed | None = None,
) -> RunResult:
    """``result`` with its PDCA record, the ledger of its reports folder updated (nothing for
    a dry run). ``observed``: what an ``EarlyObservation`` of the run asked already."""
    if result.dry_run or result.directory is None:
        return result
    from chaoslab.pdca.cycle import complete_record
    from chaoslab.pdca.ledger import open_ledger

    try:
        with open_ledger(result.directory.parent, secrets=(settings.prometheus_token,)) as ledger:
            return complete_record(plan, result, rules=rules, metrics=metrics, ledger=ledger,
                                   observed=observed)
    except ChaoslabError as exc:
        logger.error("cannot update the checklist: %s", exc)
        return dataclasses.replace(result, record_error=f"cannot update the checklist: {exc}")


class EarlyObservation:
    """An event sink that asks Prometheus for the last step's charts (``collect.observe``)
    as soon as that step ends, while the run closes: the backend's last check, the run's
    end, the ledger. The record's range queries then take no time of their own.

    Only the last step: an earlier step's chart goes on after its recovery
    (``series.AFTER_S``), which the steps after it leave time for. ``observed`` is what
    ``record_pdca`` takes; it gives the observation for that very step result only."""

    def __init__(self, plan: Plan, *, rules: Sequence[AlertRule], metrics: MetricsSource) -> None:
        self._steps = {s.name: s for s in plan.steps}
        self._catalog = plan.gameday.catalog
        self._rules = rules
        self._metrics = metrics
        self._asked: dict[str, tuple[StepResult, Callable[[], Observation]]] = {}

    def __call__(self, event: RunEvent) -> None:
        outcome = event.step_result
        if event.kind != STEP_FINISHED or outcome is None or event.index != event.total:
            return
        step = self._steps.get(outcome.step)
        if step is None:
            return
        from chaoslab.pdca.collect import observe

        # The queries are sent now, from the request threads; nothing waits for them here.
        self._asked[outcome.step] = (outcome, observe(step, outcome, rules=self._rules, catalog=self._catalog,
                                                      metrics=self._metrics))

    def observed(self, step: Step, outcome: StepResult) -> Callable[[], Observation] | None:
        asked = self._asked.get(step.name)
        if asked is None or asked[0] is not outcome:
            return None
        return asked[1]


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
