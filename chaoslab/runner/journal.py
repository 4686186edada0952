"""Reading a step's Chaos Toolkit journal, pure: the probe outputs become hypothesis
checks, and the activity records tell what was injected, held and removed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from chaoslab.model import HypothesisCheck
from chaoslab.redaction import redact
from chaoslab.watch import Condition

logger = logging.getLogger(__name__)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _at(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def probe_checks(
    state: Mapping[str, Any] | None, conditions: Sequence[Condition] = ()
) -> tuple[HypothesisCheck, ...]:
    """The checks recorded in one ``steady_states`` entry (before or after)."""
    if not isinstance(state, Mapping):
        return ()
    services = {c.alert: c.service for c in conditions}
    checks = []
    for run in state.get("probes") or []:
        output = run.get("output") if isinstance(run, Mapping) else None
        arguments = (run.get("activity") or {}).get("provider", {}).get("arguments", {}) if run else {}
        alert = str((output or {}).get("alert") or arguments.get("alert") or "?")
        if isinstance(output, Mapping) and output.get("kind") == "guards":
            checks.extend(_guard_checks(output, at=_at(run.get("end"))))
            continue
        if not isinstance(output, Mapping):
            reason = "; ".join(run.get("exception") or []).strip() or "the probe returned nothing"
            checks.append(HypothesisCheck(alert=alert, service=services.get(alert), met=False, reason=reason,
                                          no_data=True, at=_at(run.get("end"))))
            continue
        checks.append(HypothesisCheck(
            alert=alert,
            service=services.get(alert),
            met=output.get("verdict") == "met" and run.get("tolerance_met") is not False,
            state=None if output.get("state") in (None, "unknown") else str(output.get("state")),
            condition_true=output.get("condition_true"),
            value=_number(output.get("value")),
            threshold=_number(output.get("threshold")),
            margin=_number(output.get("margin")),
            reason=str(output.get("reason") or ""),
            no_data=output.get("condition_true") is None,
            at=_at(run.get("end")),
        ))
    return tuple(checks)


def _guard_checks(output: Mapping[str, Any], *, at: datetime | None) -> list[HypothesisCheck]:
    """The one guards probe's output (``guards_quiet``): a check per guard alert."""
    found = []
    for row in output.get("checks") or []:
        if not isinstance(row, Mapping):
            continue
        state = row.get("state")
        found.append(HypothesisCheck(
            alert=str(row.get("alert") or "?"), met=row.get("met") is True,
            state=None if state in (None, "unknown") else str(state), reason=str(row.get("reason") or ""),
            no_data=state in (None, "unknown"), at=at, guard=True, ignored=row.get("ignored") is True,
        ))
    return found


def steady_state(journal: Mapping[str, Any], phase: str) -> Mapping[str, Any] | None:
    states = journal.get("steady_states") or {}
    state = states.get(phase)
    return state if isinstance(state, Mapping) else None


def baseline_met(journal: Mapping[str, Any]) -> bool | None:
    """Whether the hypothesis held before the method (None: not evaluated)."""
    state = steady_state(journal, "before")
    return None if state is None else state.get("steady_state_met")


def method_error(journal: Mapping[str, Any]) -> str | None:
    """The first failed method activity, as a one-line reason."""
    for run in journal.get("run") or []:
        if isinstance(run, Mapping) and run.get("status") == "failed":
            name = (run.get("activity") or {}).get("name", "?")
            lines = run.get("exception") or []
            text = lines[-1].strip() if lines else "failed"
            return f"{name}: {text.removeprefix('chaoslib.exceptions.ActivityFailed: ')}"
    return None


def write_journal(journal: Mapping[str, Any], path: Path, *, secrets: Iterable[str | None] = ()) -> None:
    """Write the journal with every secret masked (its experiment's ``secrets`` block, tokens,
    ``secrets`` values anywhere in its text): see chaoslab.redaction."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # default=str: a provider may return values JSON does not know (datetimes); the journal
    # is a record, and losing a type beats losing the file.
    text = json.dumps(redact(dict(journal), secrets=secrets), indent=2, default=str)
    path.write_text(text + "\n", encoding="utf-8")
    logger.debug("journal written to %s", path)
