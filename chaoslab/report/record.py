"""The run record, ``<reports>/<run-id>/run.json``: RunResult → the JSON contract and back.

Named ``record`` rather than ``json`` so it never shadows the standard library module.
The contract (keys, ISO-8601 UTC timestamps) is documented in docs/running.md; other
tools read this file, so keys are only ever added, never renamed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoslab.model import (
    HaltRecord,
    HypothesisCheck,
    LegHalt,
    LegReading,
    PodReport,
    PodState,
    RunResult,
    SilenceRecord,
    StepResult,
)
from chaoslab.redaction import redact
from chaoslab.report.guards import guard_record

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"


def format_time(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with millisecond precision and a ``Z`` suffix."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def check_to_dict(check: HypothesisCheck) -> dict[str, Any]:
    return {
        "alert": check.alert,
        "service": check.service,
        "met": check.met,
        "state": check.state,
        "condition_true": check.condition_true,
        "value": check.value,
        "threshold": check.threshold,
        "margin": check.margin,
        "reason": check.reason,
        "at": format_time(check.at),
        "guard": check.guard,
        "ignored": check.ignored,
    }


def halt_to_dict(halt: HaltRecord | None) -> dict[str, Any] | None:
    if halt is None:
        return None
    record: dict[str, Any] = {
        "condition": halt.condition,
        "breach_at": format_time(halt.breach_at),
        "detected_at": format_time(halt.detected_at),
        "removed_at": format_time(halt.removed_at),
    }
    if halt.leg is not None:  # only for a halt on the fast leg of a multi-window alert
        record["leg"] = leg_to_dict(halt.leg)
    return record


def _reading_to_dict(leg: LegReading) -> dict[str, Any]:
    return {"window": leg.window, "ratio": leg.ratio, "op": leg.op, "threshold": leg.threshold,
            "value": leg.value}


def leg_to_dict(leg: LegHalt | None) -> dict[str, Any] | None:
    """The fast leg of a multi-window alert that halted, and what the full alert needed."""
    if leg is None:
        return None
    from chaoslab.prometheus.burnrate import describe_leg_halt

    return {
        "alert": leg.alert,
        **_reading_to_dict(leg.leg),
        "needs": [_reading_to_dict(n) for n in leg.needs],
        "full_alert_more_s": None if leg.more_s is None else round(leg.more_s, 1),
        "summary": describe_leg_halt(leg),
    }


def step_to_dict(step: StepResult) -> dict[str, Any]:
    return {
        "experiment": step.experiment,
        "service": step.service,
        "tier": step.tier.label,
        "kind": step.kind.value,
        "action": step.action,
        "mode": step.mode.value,
        "value": step.value,
        "verdict": step.verdict.value,
        "reason": step.reason,
        "started_at": format_time(step.started_at),
        "ended_at": format_time(step.ended_at),
        "halt": halt_to_dict(step.halt),
        "recovery_s": None if step.recovery_s is None else round(step.recovery_s, 3),
        "hypothesis": {
            "before": [check_to_dict(c) for c in step.before],
            "during": [check_to_dict(c) for c in step.during],
            "after": [check_to_dict(c) for c in step.after],
        },
        "journal": step.journal,
        "guards": guard_record(step),
        "failed_attempts": list(step.failed_attempts),
        "pods": pods_to_dict(step.pods),
    }


def _pod(pod: PodState) -> dict[str, Any]:
    return {"name": pod.name, "namespace": pod.namespace, "phase": pod.phase, "ready": pod.ready,
            "restarts": pod.restarts, "reason": pod.reason}


def pods_to_dict(report: PodReport | None) -> dict[str, Any] | None:
    """The readiness part of a step's hypothesis; None when it was off or not reached."""
    if report is None:
        return None
    return {
        "before": [_pod(p) for p in report.before],
        "after": [_pod(p) for p in report.after],
        "restarted": list(report.restarted),
        "replaced": list(report.replaced),
        "added": list(report.added),
        "ready_s": None if report.ready_s is None else round(report.ready_s, 3),
        "reason": report.reason,
    }


def run_to_dict(result: RunResult) -> dict[str, Any]:
    """The run.json document for ``result``: ``pdca`` is null and ``checklist`` empty for a
    run without a PDCA record (a dry run)."""
    from chaoslab.report.pdca_record import checklist_to_list, pdca_to_dict  # it imports this module

    return {
        "run_id": result.run_id,
        "gameday": result.gameday,
        "target": result.target,
        "started_at": format_time(result.started_at),
        "ended_at": format_time(result.ended_at),
        "verdict": result.verdict.value,
        "steps": [step_to_dict(step) for step in result.steps],
        "interrupted": (
            {"signal": result.interrupted, "phase": result.interrupted_phase} if result.interrupted else None
        ),
        "remaining": list(result.remaining),  # faults that may remain after a failed cleanup
        "pdca": pdca_to_dict(result.pdca) if result.pdca is not None else None,
        "checklist": checklist_to_list(result.pdca.checklist) if result.pdca is not None else [],
        "silences": [silence_to_dict(s) for s in result.silences],
        "trace_id": result.trace_id,
    }


def silence_to_dict(silence: SilenceRecord) -> dict[str, Any]:
    """An Alertmanager silence the run created; ``expired_at`` null: it lapses at ``ends_at``."""
    return {
        "id": silence.id,
        "step": silence.step,
        "matchers": [m.describe() for m in silence.matchers],
        "created_at": format_time(silence.created_at),
        "ends_at": format_time(silence.ends_at),
        "expired_at": format_time(silence.expired_at),
        "renewals": silence.renewals,
        "error": silence.error,
    }


def run_document(result: RunResult, *, secrets: Iterable[str | None] = ()) -> dict[str, Any]:
    """The run.json document with every secret masked (chaoslab.redaction): what is written
    to disk, printed, and handed to the report renderers."""
    document: dict[str, Any] = redact(run_to_dict(result), secrets=secrets)
    return document


def write_run(result: RunResult, directory: Path, *, secrets: Iterable[str | None] = ()) -> Path:
    """Write ``directory/run.json`` atomically (a reader never sees half a file), redacted."""
    return write_document(run_document(result, secrets=secrets), directory)


def write_document(document: Mapping[str, Any], directory: Path) -> Path:
    """Write ``directory/run.json`` from its ``run_document`` (already redacted), atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RUN_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    logger.info("run record written to %s", path)
    return path
