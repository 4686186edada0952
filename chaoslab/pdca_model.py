"""The PDCA record of a run as typed, frozen values: Plan, Do, Check, Act, and the
checklist items that live across runs. No I/O.

These sit beside ``chaoslab.model`` (``RunResult.pdca`` carries a ``PdcaRecord``) so that
every layer can name them; the logic that builds them lives in ``chaoslab.pdca`` and their
JSON form in ``chaoslab.report.pdca_record``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from chaoslab.model import Verdict


class ItemStatus(StrEnum):
    """Where a checklist item stands. ``accepted`` and ``done`` are set by people."""

    OPEN = "open"
    VERIFIED = "verified"
    REOPENED = "reopened"
    ACCEPTED = "accepted"
    DONE = "done"


class FindingKind(StrEnum):
    SLO_BROKEN = "slo-broken"
    SLOW_RECOVERY = "slow-recovery"
    ALERTING_GAP = "alerting-gap"
    COVERAGE_GAP = "coverage-gap"
    BASELINE_NOT_MET = "baseline-not-met"
    INJECTION_FAILED = "injection-failed"


class EventKind(StrEnum):
    BASELINE = "baseline"
    INJECTED = "injected"
    HOLD = "hold"
    HALT = "halt"
    REMOVED = "removed"
    RECOVERED = "recovered"
    NOT_RECOVERED = "not-recovered"
    POD_RESTARTED = "pod-restarted"
    POD_REPLACED = "pod-replaced"
    ALERT_PENDING = "alert-pending"
    ALERT_FIRING = "alert-firing"
    ALERT_RESOLVED = "alert-resolved"
    SKIPPED = "skipped"
    REFUSED = "refused"
    ERROR = "error"


# --- plan ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSummary:
    kind: str  # NetworkChaos | PodChaos
    action: str
    mode: str
    value: str | None
    duration: str
    summary: str  # "pod-kill, one pod of payment, 20s"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedAlert:
    """One alert of a step's hypothesis: its condition split into SLI, operator, threshold."""

    alert: str
    service: str | None  # None: a global alert
    expr: str
    sli: str  # the left-hand side of the comparison, or the whole expression
    op: str | None = None
    threshold: float | None = None
    for_s: float = 0.0
    severity: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepPlan:
    step: str
    experiment: str
    service: str
    tier: str
    owner: str | None
    fault: FaultSummary
    hypothesis: tuple[PlannedAlert, ...] = ()
    halt_conditions: tuple[str, ...] = ()
    expected: str = "the hypothesis holds"
    rechecks: tuple[str, ...] = ()  # ids of open, reopened or done items this step re-checks


# --- do --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEvent:
    at: datetime
    kind: EventKind
    text: str
    pods: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StepTimeline:
    step: str
    events: tuple[TimelineEvent, ...] = ()


# --- check -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SliSeries:
    """An SLI over a step, from one Prometheus range query. A point's value is None where
    Prometheus answered NaN or infinity; ``error`` says why there are no points."""

    alert: str
    service: str | None
    query: str
    op: str | None
    threshold: float | None
    step_s: float
    start: datetime
    end: datetime
    points: tuple[tuple[float, float | None], ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Detection:
    """Whether an alert noticed the breach: when it went pending and firing, measured from
    the breach, and how long its SLI was past the threshold."""

    alert: str
    service: str | None
    for_s: float
    pending_after_s: float | None = None
    firing_after_s: float | None = None
    sli_breached_s: float = 0.0
    noticed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """What a rule found in a step: the seed of a checklist item.

    ``service`` is the service the item is for (its owner acts on it), ``target`` the
    service the experiment ran on (a later held run there verifies the item)."""

    kind: FindingKind
    text: str
    experiment: str = ""
    service: str = ""
    target: str = ""
    owner: str | None = None
    alert: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultWindow:
    start: datetime | None = None
    end: datetime | None = None  # None: never removed


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCheck:
    step: str
    verdict: Verdict
    reason: str = ""
    fault_window: FaultWindow = field(default_factory=FaultWindow)
    breach_at: datetime | None = None
    detected_at: datetime | None = None
    removed_at: datetime | None = None
    recovered_at: datetime | None = None
    halt_latency_s: float | None = None
    recovery_s: float | None = None
    recovery_target_s: float | None = None
    slis: tuple[SliSeries, ...] = ()
    detection: tuple[Detection, ...] = ()
    findings: tuple[Finding, ...] = ()


# --- act and the checklist ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChecklistItem:
    id: str
    experiment: str
    service: str
    owner: str | None
    kind: FindingKind
    alert: str | None
    text: str
    status: ItemStatus
    first_seen: datetime
    last_seen: datetime
    note: str | None = None
    runs: tuple[str, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PdcaRecord:
    """A run's Plan-Do-Check-Act record. ``act`` holds the items this run opened, saw
    again, verified or reopened; ``checklist`` the whole checklist after the run."""

    plan: tuple[StepPlan, ...] = ()
    do: tuple[StepTimeline, ...] = ()
    check: tuple[StepCheck, ...] = ()
    act: tuple[ChecklistItem, ...] = ()
    checklist: tuple[ChecklistItem, ...] = ()
