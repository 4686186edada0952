"""Guard alerts, pure: judged by their state in Prometheus, as their authors designed them.

A guard is an alert bound to no catalog service that the game day treats as global
(``GuardPolicy``). Its raw condition is never evaluated: infrastructure alerts carry
long ``for:`` because their conditions flap, and many have no series by design (no RAID,
no volumes), which Prometheus treats as "not firing". So:

- ``firing`` blocks the baseline and halts a fault, unless ``guards.ignore`` matches
  the alert (by name, or by labels of the firing instance): then it is recorded as
  ignored while firing;
- ``pending`` is recorded, never a halt;
- not listed by Prometheus (inactive, or no data) is not firing.

Every guard is judged from the one ``/api/v1/alerts`` answer a check already has, so
their number adds no query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from chaoslab.model import AlertFilter, AlertState, GuardPolicy, HypothesisCheck

ALERTS_METRIC = "ALERTS"


def judge_guard(
    alert: str,
    states: Sequence[AlertState],
    *,
    ignore: Sequence[AlertFilter] = (),
    service: str | None = None,
    at: datetime | None = None,
) -> HypothesisCheck:
    """One guard's check from the alerts Prometheus reported."""
    instances = [s for s in states if s.name == alert]
    policy = GuardPolicy(ignore=tuple(ignore))
    firing = [s for s in instances if s.state == "firing"]
    halting = [s for s in firing if not policy.ignores(alert, s.labels)]
    if halting:
        state, met, ignored = "firing", False, False
        reason = f"guard alert {alert} is firing{_since(halting)}"
    elif firing:
        state, met, ignored = "firing", True, True
        reason = f"guard alert {alert} is firing, ignored (guards.ignore)"
    elif any(s.state == "pending" for s in instances):
        state, met, ignored = "pending", True, False
        reason = f"guard alert {alert} is pending (recorded; only firing halts)"
    else:
        state, met, ignored = "inactive", True, False
        reason = f"guard alert {alert} is not firing"
    return HypothesisCheck(alert=alert, service=service, met=met, state=state, reason=reason, at=at,
                           guard=True, ignored=ignored)


def states_by_name(states: Sequence[AlertState]) -> dict[str, list[AlertState]]:
    """The alerts answer grouped by alert name, so that judging N guards stays linear."""
    grouped: dict[str, list[AlertState]] = {}
    for item in states:
        grouped.setdefault(item.name, []).append(item)
    return grouped


def _since(instances: Iterable[AlertState]) -> str:
    started = [s.active_at for s in instances if s.active_at is not None]
    return f" (active since {min(started).strftime('%H:%M:%S')} UTC)" if started else ""


def firing_selector(alert: str) -> str:
    """The PromQL series that is 1 while ``alert`` fires (to date a guard's breach)."""
    escaped = alert.replace("\\", "\\\\").replace('"', '\\"')
    return f'{ALERTS_METRIC}{{alertname="{escaped}", alertstate="firing"}}'


def ignore_hint(alerts: Sequence[str]) -> str:
    """The exact YAML that would ignore ``alerts``, for a message."""
    return f"guards: {{ignore: [{', '.join(alerts)}]}}"


def blocked_message(checks: Sequence[HypothesisCheck]) -> str:
    """Why firing guards block the baseline, and how to ignore one."""
    names = list(dict.fromkeys(c.alert for c in checks))
    noun = "alert is" if len(names) == 1 else "alerts are"
    return (
        f"guard {noun} firing: {', '.join(names)} (bound to no service, judged by their state in "
        f"Prometheus); if one is known noise, add it to spec.guards.ignore of the game day or "
        f"the catalog, e.g. `{ignore_hint(names[:1])}`"
    )
