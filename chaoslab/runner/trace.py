"""A step's timeline as the runner saw it: injected (with the pods hit), hold, halt,
removed, recovered, and pods restarted or replaced. Pure: built from what the step's
session recorded; the PDCA record adds the alerts' transitions from Prometheus.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chaoslab.model import HaltRecord, PodAction, Step

if TYPE_CHECKING:
    from chaoslab.pdca_model import TimelineEvent

logger = logging.getLogger(__name__)


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _pods(output: Mapping[str, Any] | None) -> tuple[str, ...]:
    pods = (output or {}).get("pods")
    return tuple(str(p) for p in pods) if isinstance(pods, list) else ()


def _names(refs: Sequence[str]) -> set[str]:
    return {ref.rsplit("/", 1)[-1] for ref in refs}


def step_events(
    step: Step, *, marks: Sequence[tuple[str, datetime]], inject_output: Mapping[str, Any] | None,
    injected: bool, halt: HaltRecord | None, removed_at: datetime | None,
    recovery_s: float | None, recovery_reason: str, ended_at: datetime,
    pods_before: Sequence[str], pods_after: Sequence[str] | None,
) -> tuple[TimelineEvent, ...]:
    """The step's events in time order (see the module docstring)."""
    # Imported when a step ends, not when the run starts: the record's types are not needed
    # to inject (chaoslab.app.execution loads them while the fault is held).
    from chaoslab.pdca_model import EventKind, TimelineEvent

    seen = dict(reversed(marks))  # each phase's first entry
    fault = step.fault
    events: list[TimelineEvent] = []
    if "baseline" in seen:
        met = "every SLO alert quiet before the fault" if injected else "steady-state hypothesis checked"
        events.append(TimelineEvent(at=seen["baseline"], kind=EventKind.BASELINE, text=f"baseline: {met}"))
    hit = _pods(inject_output)
    if injected:
        at = _time((inject_output or {}).get("injected_at")) or seen.get("inject") or ended_at
        where = ", ".join(hit) if hit else f"{step.service.name}"
        events.append(TimelineEvent(at=at, kind=EventKind.INJECTED, pods=hit,
                                    text=f"{fault.kind.value} {fault.action.value} injected into {where}"))
        events += _pod_events(step, hit=hit, at=at, removed_at=removed_at, before=pods_before,
                              after=pods_after, ended_at=ended_at)
    if "hold" in seen and injected:
        events.append(TimelineEvent(at=seen["hold"], kind=EventKind.HOLD,
                                    text=f"holding the fault for up to {fault.duration}"))
    if halt is not None:
        events.append(TimelineEvent(at=halt.detected_at, kind=EventKind.HALT, text=f"halt: {halt.condition}"))
    if removed_at is not None and injected:
        events.append(TimelineEvent(at=removed_at, kind=EventKind.REMOVED, text="fault removed"))
    if removed_at is not None and recovery_s is not None:
        events.append(TimelineEvent(at=removed_at + timedelta(seconds=recovery_s), kind=EventKind.RECOVERED,
                                    text=f"every SLO held again {recovery_s:.1f}s after the removal"))
    elif injected and recovery_reason:
        events.append(TimelineEvent(at=ended_at, kind=EventKind.NOT_RECOVERED, text=recovery_reason))
    return tuple(sorted(events, key=lambda e: e.at))


def _pod_events(
    step: Step, *, hit: tuple[str, ...], at: datetime, removed_at: datetime | None,
    before: Sequence[str], after: Sequence[str] | None, ended_at: datetime,
) -> list[TimelineEvent]:
    """Pods restarted in place (container-kill at injection, pod-failure at removal) or
    replaced by new ones (pod-kill: pods running after the step that were not before)."""
    from chaoslab.pdca_model import EventKind, TimelineEvent

    action = step.fault.action
    if action is PodAction.CONTAINER_KILL and hit:
        return [TimelineEvent(at=at, kind=EventKind.POD_RESTARTED, pods=hit,
                              text=f"{', '.join(hit)} restarted in place (container killed)")]
    if action is PodAction.POD_FAILURE and hit and removed_at is not None:
        return [TimelineEvent(at=removed_at, kind=EventKind.POD_RESTARTED, pods=hit,
                              text=f"{', '.join(hit)} running again after the failure")]
    if action is PodAction.POD_KILL and after is not None:
        new = sorted(set(after) - set(before))
        if new:
            gone = sorted(_names(hit) - _names(after))
            old = f"{', '.join(gone)} replaced by " if gone else "new pods: "
            names = ", ".join(sorted(_names(new)))
            return [TimelineEvent(at=ended_at, kind=EventKind.POD_REPLACED, pods=tuple(new),
                                  text=f"{old}{names} (seen by the end of the step)")]
    return []
