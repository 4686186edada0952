"""A run's PDCA cycle end to end: collect the record, apply it to the ledger, attach both."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from chaoslab.model import AlertRule, Plan, RunResult
from chaoslab.pdca.collect import Observed, collect_run
from chaoslab.pdca.ledger import Ledger
from chaoslab.ports import MetricsSource

logger = logging.getLogger(__name__)


def complete_record(
    plan: Plan, result: RunResult, *, rules: Sequence[AlertRule], metrics: MetricsSource | None,
    ledger: Ledger, observed: Observed | None = None,
) -> RunResult:
    """``result`` with its ``pdca`` record: plan, do, check from the run and Prometheus; act
    (the items this run touched) and the whole checklist from the ledger, updated first.
    ``observed``: the steps' ``collect.observe`` already asked (see ``collect_run``)."""
    record, outcomes = collect_run(
        plan, result, rules=rules, metrics=metrics,
        rechecks=lambda experiment, service: ledger.rechecks(experiment=experiment, target=service),
        observed=observed,
    )
    act = ledger.record_run(run_id=result.run_id, at=result.ended_at, outcomes=outcomes)
    record = dataclasses.replace(record, act=act, checklist=tuple(ledger.items()))
    logger.info("run %s: %d checklist items touched, %d in all", result.run_id, len(act),
                len(record.checklist))
    return dataclasses.replace(result, pdca=record)
