"""Act: the rules that turn what a step showed into checklist items. Pure.

Each rule is a small function from a step's evidence to findings; ``RULES`` lists them
as a table a reader can review (kind, when it applies, what it asks for). A finding's
item id is stable across runs: it is made of the experiment, the service, the kind and,
for the kinds about one alert, the alert; never of the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaoslab.model import Verdict
from chaoslab.pdca_model import Detection, Finding, FindingKind

BREACHED = frozenset({Verdict.HALTED, Verdict.DEVIATED})

# What makes a service tolerate a fault, by Chaos Mesh action. {hit}: the service the
# fault hit; {caller}: the service whose SLO broke (its caller, as far as the run shows).
ADVICE: Mapping[str, str] = {
    "pod-kill": "Run more than one {hit} replica, add a PodDisruptionBudget for {hit}, "
                "and retry failed calls to {hit} in {caller}.",
    "pod-failure": "Run more than one {hit} replica with a readiness probe so a stuck pod leaves "
                   "the endpoints, add a PodDisruptionBudget for {hit}, and retry failed calls to "
                   "{hit} in {caller}.",
    "container-kill": "Run more than one {hit} replica, make {hit} start fast, and retry failed calls "
                      "to {hit} in {caller}.",
    "delay": "Give {caller} a timeout shorter than its own SLO for calls to {hit}, and a fallback "
             "(cached or degraded answer) when {hit} is slow.",
    "loss": "Retry calls to {hit} in {caller} with backoff and jitter, with a timeout per attempt, "
            "behind a circuit breaker.",
    "partition": "Retry calls to {hit} in {caller} with backoff, behind a circuit breaker with a "
                 "fallback, so {caller} degrades instead of failing when {hit} is unreachable.",
    "corrupt": "Retry calls to {hit} in {caller} with backoff, behind a circuit breaker.",
    "duplicate": "Make {hit}'s handlers idempotent so repeated packets or requests do no harm.",
    "bandwidth": "Shrink what {hit} sends (compression, pagination), give {caller} timeouts and a "
                 "fallback for slow transfers, and give {hit} more network capacity.",
    "netem": "Give {caller} timeouts, and retries with backoff behind a circuit breaker, for calls "
             "to {hit}.",
}
DEFAULT_ADVICE = ("Make {caller} tolerate this failure of {hit}: timeouts, retries with backoff, "
                  "and redundancy.")


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokenSlo:
    """An alert whose condition held during or after the fault, with its worst value."""

    alert: str
    service: str | None  # None: a global alert
    value: float | None = None
    op: str | None = None
    threshold: float | None = None

    @property
    def label(self) -> str:
        return self.alert if self.service is None else f"{self.alert} ({self.service})"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnmetCheck:
    """An alert that was not quiet before anything was injected."""

    alert: str
    service: str | None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepEvidence:
    """Everything the rules look at for one step."""

    experiment: str
    service: str  # the service the fault hit
    owners: Mapping[str, str | None]
    action: str  # pod-kill, delay, ...
    scope: str  # "one payment pod"
    detail: str = ""  # "200ms ±50ms" for a delay
    duration: str
    verdict: Verdict
    refusal: str | None = None
    inject_error: str | None = None
    broken: tuple[BrokenSlo, ...] = ()  # the first one is the breach that halted, when there was one
    baseline_unmet: tuple[UnmetCheck, ...] = ()
    detection: tuple[Detection, ...] = ()
    own_alerts: tuple[str, ...] = ()  # alerts bound to the service hit (globals excluded)
    halt_latency_s: float | None = None
    recovery_s: float | None = None
    recovered: bool | None = None
    recovery_target_s: float = 60.0
    recovery_timeout_s: float = 120.0
    slack_s: float = 2.0  # how far past an alert's `for:` it may take to fire (evaluation interval)


# Kinds that are about one alert: their ids carry it. The others are about the service
# under the fault, whichever alert caught it first in a given run (that may vary from run
# to run), so their ids do not.
ALERT_KEYED = frozenset({FindingKind.ALERTING_GAP, FindingKind.BASELINE_NOT_MET})


def item_id(*, experiment: str, service: str, kind: FindingKind, alert: str | None = None) -> str:
    """``<experiment>/<service>/<kind>[/<alert>]``: the same finding gets the same id in every run."""
    parts = [experiment, service, kind.value]
    if alert and kind in ALERT_KEYED:
        parts.append(alert)
    return "/".join(parts)


def finding_id(finding: Finding) -> str:
    return item_id(experiment=finding.experiment, service=finding.service, kind=finding.kind,
                   alert=finding.alert)


POD_ACTIONS = frozenset({"pod-kill", "pod-failure", "container-kill"})


def fault_phrase(ev: StepEvidence) -> str:
    """``pod-kill of one payment pod``, ``delay (200ms) on every catalog pod``."""
    detail = f" ({ev.detail})" if ev.detail else ""
    joint = "of" if ev.action in POD_ACTIONS else "on"
    return f"{ev.action}{detail} {joint} {ev.scope}"


def _breach_text(slo: BrokenSlo) -> str:
    if slo.value is None or math.isnan(slo.value):
        return f"{slo.label} (no data: the SLI vanished)"
    if slo.op is None or slo.threshold is None:
        return f"{slo.label}: {slo.value:.3g}"
    return f"{slo.label}: {slo.value:.3g} {slo.op} {slo.threshold:g}"


def _overshoot(slo: BrokenSlo) -> float:
    """How many times past its threshold a breach went (0 when not known)."""
    value, threshold = slo.value, slo.threshold
    if value is None or threshold is None or math.isnan(value) or value <= 0 or threshold <= 0:
        return 0.0
    return value / threshold if slo.op in (">", ">=") else threshold / value


def _finding(ev: StepEvidence, kind: FindingKind, text: str, *, service: str | None = None,
             alert: str | None = None, evidence: Mapping[str, Any] | None = None) -> Finding:
    owner_of = service or ev.service
    return Finding(kind=kind, text=text, experiment=ev.experiment, service=owner_of, target=ev.service,
                   owner=ev.owners.get(owner_of), alert=alert,
                   evidence={"target": ev.service, "verdict": ev.verdict.value, **(evidence or {})})


# --- the rules ----------------------------------------------------------------------------


def slo_broken(ev: StepEvidence) -> list[Finding]:
    """An SLO broke under the fault: make the services involved tolerate it."""
    if ev.verdict not in BREACHED or not ev.broken:
        return []
    first = ev.broken[0]
    # The caller is a guess (the catalog has no call graph): the other service whose SLO
    # broke the furthest past its threshold.
    others = sorted((b for b in ev.broken if b.service and b.service != ev.service),
                    key=_overshoot, reverse=True)
    caller = others[0].service if others else f"{ev.service}'s callers"
    where = ", ".join(_breach_text(b) for b in ev.broken)
    halted = f", halted {ev.halt_latency_s:.2f}s after the breach" if ev.halt_latency_s is not None else ""
    advice = ADVICE.get(ev.action, DEFAULT_ADVICE).format(hit=ev.service, caller=caller)
    text = f"A {fault_phrase(ev)} broke {where}{halted}. {advice}"
    evidence = {"alerts": [b.alert for b in ev.broken],
                "services": sorted({b.service or "" for b in ev.broken}),
                "value": first.value, "threshold": first.threshold, "op": first.op,
                "halt_latency_s": ev.halt_latency_s, "recovery_s": ev.recovery_s, "fault": ev.action}
    return [_finding(ev, FindingKind.SLO_BROKEN, text, alert=first.alert, evidence=evidence)]


def slow_recovery(ev: StepEvidence) -> list[Finding]:
    """The system held again, but later than the game day's ``recoveryTarget`` (or never)."""
    if ev.recovered is False:
        took = f"did not hold again within {ev.recovery_timeout_s:g}s"
    elif ev.recovery_s is not None and ev.recovery_s > ev.recovery_target_s:
        took = f"took {ev.recovery_s:.1f}s to hold again"
    else:
        return []
    text = (f"After a {fault_phrase(ev)} the system {took} (target {ev.recovery_target_s:g}s). "
            f"Make {ev.service} come back faster: quicker start-up and readiness, spare replicas, and "
            f"callers that stop backing off once it is healthy.")
    evidence = {"recovery_s": ev.recovery_s, "recovery_target_s": ev.recovery_target_s, "fault": ev.action}
    return [_finding(ev, FindingKind.SLOW_RECOVERY, text, evidence=evidence)]


def alerting_gap(ev: StepEvidence) -> list[Finding]:
    """An SLI was past its threshold longer than the alert's ``for:``, and the alert never fired."""
    found = []
    for d in ev.detection:
        if d.firing_after_s is not None or d.sli_breached_s <= 0 or d.sli_breached_s < d.for_s + ev.slack_s:
            continue
        service = d.service or ev.service
        text = (f"{d.alert} ({d.service or 'global'}) never fired although its SLI was past the threshold "
                f"for {d.sli_breached_s:.0f}s (for: {d.for_s:g}s) during a {fault_phrase(ev)}. "
                f"Check that the alert's expression, labels and evaluation reach the SLI, and that its "
                f"`for:` is shorter than the breaches that matter.")
        evidence = {"sli_breached_s": d.sli_breached_s, "for_s": d.for_s,
                    "pending_after_s": d.pending_after_s}
        found.append(_finding(ev, FindingKind.ALERTING_GAP, text, service=service, alert=d.alert,
                              evidence=evidence))
    return found


def coverage_gap(ev: StepEvidence) -> list[Finding]:
    """The breach was caught only by another service's or a global alert: none of the hit
    service's own alerts went pending or firing."""
    if ev.verdict not in BREACHED or not ev.broken:
        return []
    own = set(ev.own_alerts)
    if any(d.noticed for d in ev.detection if d.alert in own and d.service == ev.service):
        return []
    caught = ", ".join(b.label for b in ev.broken)
    has = (f"none of {ev.service}'s alerts ({', '.join(sorted(own))})" if own
           else f"{ev.service} has no alert that")
    text = (f"A {fault_phrase(ev)} was caught only by {caught}: {has} went pending or firing. "
            f"Add an alert for {ev.service} that sees this failure, {_signal(ev.action)}.")
    evidence = {"caught_by": [b.alert for b in ev.broken], "own_alerts": sorted(own), "fault": ev.action}
    return [_finding(ev, FindingKind.COVERAGE_GAP, text, evidence=evidence)]


def _signal(action: str) -> str:
    """What an alert should watch to notice this kind of fault."""
    if action in ("delay", "bandwidth"):
        return "e.g. on its latency as its callers see it (a p99 of their calls to it)"
    return "e.g. on errors its callers get or on its traffic dropping to zero (absent or zero request rate)"


def baseline_not_met(ev: StepEvidence) -> list[Finding]:
    """The system was unhealthy before any fault: fix that first."""
    if ev.verdict is not Verdict.BASELINE_NOT_MET:
        return []
    found = []
    for check in ev.baseline_unmet:
        service = check.service or ev.service
        text = (f"Before {ev.experiment} injected anything, {check.alert} ({check.service or 'global'}) "
                f"was not quiet: {check.reason}. The system was unhealthy before any fault: fix that "
                f"first, then run {ev.experiment} again.")
        found.append(_finding(ev, FindingKind.BASELINE_NOT_MET, text, service=service, alert=check.alert,
                              evidence={"reason": check.reason}))
    return found


def injection_failed(ev: StepEvidence) -> list[Finding]:
    """The fault was refused by the safety rules or could not be injected: the experiment is wrong."""
    why = ev.refusal or ev.inject_error
    if why is None:
        return []
    what = "was refused" if ev.refusal else "could not be injected"
    text = (f"The {fault_phrase(ev)} ({ev.experiment}) {what}: {why}. The experiment itself "
            f"needs fixing: its selector must match running pods, and its mode and namespace must "
            f"pass the game day's safety rules.")
    return [_finding(ev, FindingKind.INJECTION_FAILED, text, evidence={"error": why, "fault": ev.action})]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    kind: FindingKind
    when: str
    asks: str
    find: Callable[[StepEvidence], list[Finding]]


RULES: tuple[Rule, ...] = (
    Rule(kind=FindingKind.SLO_BROKEN, when="a step halted or deviated: an SLO broke under the fault",
         asks="make the services involved tolerate the fault (advice by fault action)", find=slo_broken),
    Rule(kind=FindingKind.SLOW_RECOVERY, when="recovery took longer than the game day's recoveryTarget",
         asks="make the service come back faster", find=slow_recovery),
    Rule(kind=FindingKind.ALERTING_GAP,
         when="an SLI was breached longer than its alert's for: and it never fired",
         asks="fix the alert", find=alerting_gap),
    Rule(kind=FindingKind.COVERAGE_GAP, when="a breach none of the hit service's own alerts noticed",
         asks="add an alert for the hit service", find=coverage_gap),
    Rule(kind=FindingKind.BASELINE_NOT_MET, when="an alert was not quiet before anything was injected",
         asks="fix the unhealthy service first", find=baseline_not_met),
    Rule(kind=FindingKind.INJECTION_FAILED, when="the fault was refused or could not be injected",
         asks="fix the experiment", find=injection_failed),
)


def find_all(ev: StepEvidence, rules: Sequence[Rule] = RULES) -> tuple[Finding, ...]:
    """Every finding of every rule for one step, in the table's order."""
    return tuple(finding for rule in rules for finding in rule.find(ev))
