"""run.json's ``pdca`` and ``checklist`` keys: ``PdcaRecord`` and ``ChecklistItem`` ↔ dicts.

The shape is a contract (docs/running.md): timestamps are ISO-8601 UTC with a ``Z``,
numbers may be null (NaN and infinities become null), keys are only ever added.
``*_from_dict`` read a run.json back, so that a run can be re-rendered from its record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from chaoslab.model import Verdict
from chaoslab.pdca_model import (
    ChecklistItem,
    Detection,
    EventKind,
    FaultSummary,
    FaultWindow,
    Finding,
    FindingKind,
    ItemStatus,
    PdcaRecord,
    PlannedAlert,
    SliSeries,
    StepCheck,
    StepPlan,
    StepTimeline,
    TimelineEvent,
)
from chaoslab.report.record import format_time, parse_time


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None, tuples as lists: what strict JSON holds."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _num(value: float | None, digits: int = 3) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _at(value: Any) -> datetime:
    moment = parse_time(value)
    if moment is None:
        raise ValueError("a timestamp is missing")
    return moment


# --- to dicts -------------------------------------------------------------------------------


def item_to_dict(item: ChecklistItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "experiment": item.experiment,
        "service": item.service,
        "owner": item.owner,
        "kind": item.kind.value,
        "alert": item.alert,
        "text": item.text,
        "status": item.status.value,
        "note": item.note,
        "first_seen": format_time(item.first_seen),
        "last_seen": format_time(item.last_seen),
        "runs": list(item.runs),
        "evidence": json_safe(dict(item.evidence)),
    }


def _plan(plan: StepPlan) -> dict[str, Any]:
    f = plan.fault
    return {
        "step": plan.step,
        "experiment": plan.experiment,
        "service": plan.service,
        "tier": plan.tier,
        "owner": plan.owner,
        "fault": {
            "kind": f.kind,
            "action": f.action,
            "mode": f.mode,
            "value": f.value,
            "duration": f.duration,
            "summary": f.summary,
        },
        "hypothesis": [
            {
                "alert": a.alert,
                "service": a.service,
                "expr": a.expr,
                "sli": a.sli,
                "op": a.op,
                "threshold": _num(a.threshold, 9),
                "for_s": _num(a.for_s),
                "severity": a.severity,
            }
            for a in plan.hypothesis
        ],
        "halt_conditions": list(plan.halt_conditions),
        "expected": plan.expected,
        "rechecks": list(plan.rechecks),
    }


def _timeline(timeline: StepTimeline) -> dict[str, Any]:
    return {
        "step": timeline.step,
        "events": [
            {"at": format_time(e.at), "kind": e.kind.value, "text": e.text, "pods": list(e.pods)}
            for e in timeline.events
        ],
    }


def _sli(s: SliSeries) -> dict[str, Any]:
    return {
        "alert": s.alert,
        "service": s.service,
        "query": s.query,
        "op": s.op,
        "threshold": _num(s.threshold, 9),
        "step_s": s.step_s,
        "start": format_time(s.start),
        "end": format_time(s.end),
        "points": [[ts, _num(v, 9)] for ts, v in s.points],
        "error": s.error,
    }


def _detection(d: Detection) -> dict[str, Any]:
    return {
        "alert": d.alert,
        "service": d.service,
        "for_s": _num(d.for_s),
        "pending_after_s": _num(d.pending_after_s),
        "firing_after_s": _num(d.firing_after_s),
        "sli_breached_s": _num(d.sli_breached_s),
        "noticed": d.noticed,
    }


def _check(c: StepCheck) -> dict[str, Any]:
    return {
        "step": c.step,
        "verdict": c.verdict.value,
        "reason": c.reason,
        "fault_window": {"start": format_time(c.fault_window.start), "end": format_time(c.fault_window.end)},
        "breach_at": format_time(c.breach_at),
        "detected_at": format_time(c.detected_at),
        "removed_at": format_time(c.removed_at),
        "recovered_at": format_time(c.recovered_at),
        "halt_latency_s": _num(c.halt_latency_s),
        "recovery_s": _num(c.recovery_s),
        "recovery_target_s": _num(c.recovery_target_s),
        "slis": [_sli(s) for s in c.slis],
        "detection": [_detection(d) for d in c.detection],
        "findings": [{"kind": f.kind.value, "text": f.text} for f in c.findings],
    }


def pdca_to_dict(record: PdcaRecord) -> dict[str, Any]:
    """run.json's ``pdca`` (the checklist goes to its own top-level key: ``checklist_to_list``)."""
    return {
        "plan": [_plan(p) for p in record.plan],
        "do": [_timeline(t) for t in record.do],
        "check": [_check(c) for c in record.check],
        "act": [item_to_dict(i) for i in record.act],
    }


def checklist_to_list(items: Sequence[ChecklistItem]) -> list[dict[str, Any]]:
    return [item_to_dict(i) for i in items]


# --- from dicts ------------------------------------------------------------------------------


def item_from_dict(doc: Mapping[str, Any]) -> ChecklistItem:
    return ChecklistItem(
        id=doc["id"],
        experiment=doc["experiment"],
        service=doc["service"],
        owner=doc.get("owner"),
        kind=FindingKind(doc["kind"]),
        alert=doc.get("alert"),
        text=doc["text"],
        status=ItemStatus(doc["status"]),
        note=doc.get("note"),
        first_seen=_at(doc["first_seen"]),
        last_seen=_at(doc["last_seen"]),
        runs=tuple(doc.get("runs") or ()),
        evidence=dict(doc.get("evidence") or {}),
    )


def _plan_from(doc: Mapping[str, Any]) -> StepPlan:
    f = doc["fault"]
    return StepPlan(
        step=doc["step"],
        experiment=doc["experiment"],
        service=doc["service"],
        tier=doc["tier"],
        owner=doc.get("owner"),
        fault=FaultSummary(
            kind=f["kind"],
            action=f["action"],
            mode=f["mode"],
            value=f.get("value"),
            duration=f["duration"],
            summary=f["summary"],
        ),
        hypothesis=tuple(
            PlannedAlert(
                alert=a["alert"],
                service=a.get("service"),
                expr=a["expr"],
                sli=a["sli"],
                op=a.get("op"),
                threshold=a.get("threshold"),
                for_s=a.get("for_s") or 0.0,
                severity=a.get("severity"),
            )
            for a in doc.get("hypothesis") or ()
        ),
        halt_conditions=tuple(doc.get("halt_conditions") or ()),
        expected=doc.get("expected", ""),
        rechecks=tuple(doc.get("rechecks") or ()),
    )


def _timeline_from(doc: Mapping[str, Any]) -> StepTimeline:
    return StepTimeline(
        step=doc["step"],
        events=tuple(
            TimelineEvent(
                at=_at(e["at"]), kind=EventKind(e["kind"]), text=e["text"], pods=tuple(e.get("pods") or ())
            )
            for e in doc.get("events") or ()
        ),
    )


def _check_from(doc: Mapping[str, Any]) -> StepCheck:
    window = doc.get("fault_window") or {}
    return StepCheck(
        step=doc["step"],
        verdict=Verdict(doc["verdict"]),
        reason=doc.get("reason", ""),
        fault_window=FaultWindow(start=parse_time(window.get("start")), end=parse_time(window.get("end"))),
        breach_at=parse_time(doc.get("breach_at")),
        detected_at=parse_time(doc.get("detected_at")),
        removed_at=parse_time(doc.get("removed_at")),
        recovered_at=parse_time(doc.get("recovered_at")),
        halt_latency_s=doc.get("halt_latency_s"),
        recovery_s=doc.get("recovery_s"),
        recovery_target_s=doc.get("recovery_target_s"),
        slis=tuple(
            SliSeries(
                alert=s["alert"],
                service=s.get("service"),
                query=s["query"],
                op=s.get("op"),
                threshold=s.get("threshold"),
                step_s=s["step_s"],
                start=_at(s["start"]),
                end=_at(s["end"]),
                points=tuple((p[0], p[1]) for p in s.get("points") or ()),
                error=s.get("error"),
            )
            for s in doc.get("slis") or ()
        ),
        detection=tuple(
            Detection(
                alert=d["alert"],
                service=d.get("service"),
                for_s=d.get("for_s") or 0.0,
                pending_after_s=d.get("pending_after_s"),
                firing_after_s=d.get("firing_after_s"),
                sli_breached_s=d.get("sli_breached_s") or 0.0,
                noticed=bool(d.get("noticed")),
            )
            for d in doc.get("detection") or ()
        ),
        findings=tuple(
            Finding(kind=FindingKind(f["kind"]), text=f["text"]) for f in doc.get("findings") or ()
        ),
    )


def pdca_from_dict(pdca: Mapping[str, Any], checklist: Sequence[Mapping[str, Any]] = ()) -> PdcaRecord:
    """A run.json's ``pdca`` (and ``checklist``) as typed values. Raises KeyError or
    ValueError for a document that is not one."""
    return PdcaRecord(
        plan=tuple(_plan_from(p) for p in pdca.get("plan") or ()),
        do=tuple(_timeline_from(t) for t in pdca.get("do") or ()),
        check=tuple(_check_from(c) for c in pdca.get("check") or ()),
        act=tuple(item_from_dict(i) for i in pdca.get("act") or ()),
        checklist=tuple(item_from_dict(i) for i in checklist),
    )
