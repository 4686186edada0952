"""run.json documents with a ``pdca`` record, as the PDCA contract shapes them, for the
report tests: the sample game day on the sandbox, where a held catalog delay, a held cart
delay, then a payment pod-kill breaks PaymentHighErrorRate and is halted, and the last step
is skipped by the gate. SLI series are sampled every second, before the fault to after
recovery, with the shapes the sandbox produces (a 10 s rate window smooths every edge).
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 12, 6, 10, 15, 0, tzinfo=UTC)
RUN_ID = "20261206T101500Z-3f2a"

ERR = (
    '(sum(rate(http_requests_total{{namespace="shop", service="{s}", code=~"5.."}}[10s])) or vector(0))\n'
    '  / sum(rate(http_requests_total{{namespace="shop", service="{s}"}}[10s]))'
)
P99 = (
    "histogram_quantile(0.99,\n  sum by (le) (rate(http_request_duration_seconds_bucket"
    '{{namespace="shop", service="{s}"}}[10s])))'
)
BURN = (
    '(sum(rate(http_requests_total{namespace="shop", code=~"5.."}[15s])) or vector(0))\n'
    '  / sum(rate(http_requests_total{namespace="shop"}[15s]))'
)

ITEM_PAYMENT = "payment-pod-kill/payment/slo-broken/PaymentHighErrorRate-3f2a9c1b"
ITEM_CART = "cart-delay/cart/slow-recovery/CartHighLatencyP99-91c0e2d4"
ITEM_CATALOG = "catalog-delay/catalog/coverage-gap/-5be1a7f0"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _alert(
    name: str, service: str | None, expr: str, op: str, threshold: float, severity: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "service": service,
        "expr": f"{expr}\n> {threshold:g}",
        "sli": expr,
        "op": op,
        "threshold": threshold,
        "for_s": 60.0,
        "severity": severity,
    }


def _hypothesis(service: str) -> list[dict[str, Any]]:
    alerts = []
    if service in ("cart", "payment"):
        name = service.capitalize()
        latency = 0.5 if service == "cart" else 1.0
        alerts += [
            _alert(f"{name}HighErrorRate", service, ERR.format(s=service), ">", 0.05, "page"),
            _alert(f"{name}HighLatencyP99", service, P99.format(s=service), ">", latency, "warning"),
        ]
    alerts.append(_alert("ShopAvailabilityBurn", None, BURN, ">", 0.10, "critical"))
    return alerts


def _series(start: float, shape: Any, *, before: int = 15, after: int = 45) -> list[list[float | None]]:
    """[unix seconds, value] every second from ``before`` s ahead of ``start`` (the injection)."""
    base = _at(start).timestamp()
    return [[base + t, shape(float(t))] for t in range(-before, after + 1)]


def _wiggle(t: float, scale: float) -> float:
    return scale * (1 + math.sin(t * 1.7) * 0.5 + math.sin(t * 0.37) * 0.3)


def _ramp_decay(t: float, *, peak: float, rise: float, hold: float, decay: float, lag: float = 0.0) -> float:
    """0 until ``lag``; up to ``peak`` in ``rise`` s; flat for ``hold`` s; back down in ``decay`` s."""
    t -= lag
    if t < 0:
        return 0.0
    if t < rise:
        return peak * t / rise
    if t < rise + hold:
        return peak
    return max(0.0, peak * (1 - (t - rise - hold) / decay))


def _step(
    name: str,
    service: str,
    tier: str,
    kind: str,
    action: str,
    mode: str,
    verdict: str,
    reason: str,
    start: float,
    end: float,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "experiment": name,
        "service": service,
        "tier": tier,
        "kind": kind,
        "action": action,
        "mode": mode,
        "value": None,
        "verdict": verdict,
        "reason": reason,
        "started_at": iso(_at(start)),
        "ended_at": iso(_at(end)),
        "halt": extra.get("halt"),
        "recovery_s": extra.get("recovery_s"),
        "hypothesis": {"before": [], "during": [], "after": []},
        "journal": f"journals/{name}.json",
    }


def _sli(alert: dict[str, Any], start: float, shape: Any) -> dict[str, Any]:
    pts = _series(start, shape)
    return {
        "alert": alert["alert"],
        "service": alert["service"],
        "query": alert["sli"],
        "op": alert["op"],
        "threshold": alert["threshold"],
        "step_s": 1.0,
        "start": iso(datetime.fromtimestamp(pts[0][0], UTC)),
        "end": iso(datetime.fromtimestamp(pts[-1][0], UTC)),
        "points": pts,
        "error": None,
    }


def _event(at: float, kind: str, text: str, pods: list[str] | None = None) -> dict[str, Any]:
    return {"at": iso(_at(at)), "kind": kind, "text": text, "pods": pods or []}


def _plan(
    name: str, service: str, tier: str, owner: str, fault: dict[str, Any], rechecks: list[str]
) -> dict[str, Any]:
    hyp = _hypothesis(service)
    return {
        "step": name,
        "experiment": name,
        "service": service,
        "tier": tier,
        "owner": owner,
        "fault": fault,
        "hypothesis": hyp,
        "halt_conditions": [
            f"{h['alert']} ({h['service'] or 'global'}): {' '.join(h['expr'].split())}" for h in hyp
        ],
        "expected": "the hypothesis holds",
        "rechecks": rechecks,
    }


def _item(
    item_id: str,
    experiment: str,
    service: str,
    owner: str,
    kind: str,
    alert: str | None,
    text: str,
    status: str,
    first: float,
    runs: list[str],
    evidence: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": item_id,
        "experiment": experiment,
        "service": service,
        "owner": owner,
        "kind": kind,
        "alert": alert,
        "text": text,
        "status": status,
        "note": None,
        "first_seen": iso(_at(first)),
        "last_seen": iso(_at(75)),
        "runs": runs,
        "evidence": evidence,
    }


def _catalog_step() -> tuple[dict[str, Any], ...]:
    inj, removed, recovered = 2.0, 22.1, 22.6
    step = _step(
        "catalog-delay",
        "catalog",
        "non-core",
        "NetworkChaos",
        "delay",
        "all",
        "held",
        "hypothesis held during the fault; recovered in 0.5s",
        0.0,
        23.0,
        recovery_s=0.5,
    )
    plan = _plan(
        "catalog-delay",
        "catalog",
        "non-core",
        "team-discovery",
        {
            "kind": "NetworkChaos",
            "action": "delay",
            "mode": "all",
            "value": None,
            "duration": "20s",
            "summary": "delay 300ms (jitter 20ms), all pods of catalog, 20s",
        },
        [ITEM_CATALOG],
    )
    do = {
        "step": "catalog-delay",
        "events": [
            _event(1.2, "baseline", "every SLO alert of the system is quiet"),
            _event(inj, "injected", "delay 300ms on 2 catalog pods", ["shop/catalog-0", "shop/catalog-1"]),
            _event(inj + 0.1, "hold", "holding 20s while the watcher checks 7 alerts every second"),
            _event(removed, "removed", "fault removed after its 20s"),
            _event(recovered, "recovered", "every alert of the hypothesis met again"),
        ],
    }
    burn = _hypothesis("catalog")[0]
    check = {
        "step": "catalog-delay",
        "verdict": "held",
        "reason": step["reason"],
        "fault_window": {"start": iso(_at(inj)), "end": iso(_at(removed))},
        "breach_at": None,
        "detected_at": None,
        "removed_at": iso(_at(removed)),
        "recovered_at": iso(_at(recovered)),
        "halt_latency_s": None,
        "recovery_s": 0.5,
        "recovery_target_s": 60.0,
        "slis": [_sli(burn, inj, lambda t: round(_wiggle(t, 0.004), 5))],
        "detection": [],
        "findings": [],
    }
    return step, plan, do, check


def _cart_step() -> tuple[dict[str, Any], ...]:
    inj, removed, recovered = 26.0, 46.1, 47.0
    step = _step(
        "cart-delay",
        "cart",
        "core",
        "NetworkChaos",
        "delay",
        "one",
        "held",
        "hypothesis held during the fault; recovered in 0.9s",
        24.0,
        47.5,
        recovery_s=0.9,
    )
    plan = _plan(
        "cart-delay",
        "cart",
        "core",
        "team-checkout",
        {
            "kind": "NetworkChaos",
            "action": "delay",
            "mode": "one",
            "value": None,
            "duration": "20s",
            "summary": "delay 100ms, one pod of cart, 20s",
        },
        [ITEM_CART],
    )
    do = {
        "step": "cart-delay",
        "events": [
            _event(25.1, "baseline", "every SLO alert of the system is quiet"),
            _event(inj, "injected", "delay 100ms on 1 cart pod", ["shop/cart-7d9f5-x2kq4"]),
            _event(removed, "removed", "fault removed after its 20s"),
            _event(recovered, "recovered", "every alert of the hypothesis met again"),
        ],
    }
    err, p99, burn = _hypothesis("cart")
    check = {
        "step": "cart-delay",
        "verdict": "held",
        "reason": step["reason"],
        "fault_window": {"start": iso(_at(inj)), "end": iso(_at(removed))},
        "breach_at": None,
        "detected_at": None,
        "removed_at": iso(_at(removed)),
        "recovered_at": iso(_at(recovered)),
        "halt_latency_s": None,
        "recovery_s": 0.9,
        "recovery_target_s": 60.0,
        "slis": [
            _sli(err, inj, lambda t: round(_wiggle(t, 0.002), 5)),
            _sli(
                p99,
                inj,
                lambda t: round(
                    0.06 + _ramp_decay(t, peak=0.19, rise=8, hold=12, decay=10) + _wiggle(t, 0.01), 4
                ),
            ),
            _sli(burn, inj, lambda t: round(_wiggle(t, 0.003), 5)),
        ],
        "detection": [],
        "findings": [],
    }
    return step, plan, do, check


# The payment pod-kill: seconds after the run's start.
INJ, BREACH, DETECTED, REMOVED, RECOVERED = 51.0, 52.6, 52.8, 52.9, 66.5


def _payment_step() -> tuple[dict[str, Any], ...]:
    breach, detected, removed = BREACH, DETECTED, REMOVED
    halt = {
        "condition": "PaymentHighErrorRate (payment)",
        "breach_at": iso(_at(breach)),
        "detected_at": iso(_at(detected)),
        "removed_at": iso(_at(removed)),
    }
    step = _step(
        "payment-pod-kill",
        "payment",
        "core",
        "PodChaos",
        "pod-kill",
        "one",
        "halted",
        "halted: PaymentHighErrorRate (payment) 0.31 > 0.05",
        48.0,
        72.0,
        halt=halt,
        recovery_s=13.6,
    )
    plan = _plan(
        "payment-pod-kill",
        "payment",
        "core",
        "team-payments",
        {
            "kind": "PodChaos",
            "action": "pod-kill",
            "mode": "one",
            "value": None,
            "duration": "20s",
            "summary": "pod-kill, one pod of payment, 20s",
        },
        [ITEM_PAYMENT],
    )
    return step, plan, _payment_do(), _payment_check(step)


def _payment_do() -> dict[str, Any]:
    inj, detected, removed, recovered = INJ, DETECTED, REMOVED, RECOVERED
    pod = "shop/payment-6c8f9-k7x2p"
    do = {
        "step": "payment-pod-kill",
        "events": [
            _event(50.2, "baseline", "every SLO alert of the system is quiet"),
            _event(inj, "injected", "pod-kill of 1 payment pod", [pod]),
            _event(detected, "halt", "PaymentHighErrorRate (payment): 0.31 > 0.05"),
            _event(removed, "removed", "fault removed 0.30s after the breach"),
            _event(53.4, "alert-pending", "PaymentHighErrorRate went pending"),
            _event(
                57.3,
                "pod-replaced",
                "payment-6c8f9-k7x2p replaced by payment-6c8f9-q4m8d",
                [pod, "shop/payment-6c8f9-q4m8d"],
            ),
            _event(64.9, "alert-resolved", "PaymentHighErrorRate resolved"),
            _event(recovered, "recovered", "every alert of the hypothesis met again 13.6s after the removal"),
        ],
    }
    return do


def _payment_check(step: dict[str, Any]) -> dict[str, Any]:
    inj, breach, detected, removed, recovered = INJ, BREACH, DETECTED, REMOVED, RECOVERED
    err, p99, burn = _hypothesis("payment")
    check = {
        "step": "payment-pod-kill",
        "verdict": "halted",
        "reason": step["reason"],
        "fault_window": {"start": iso(_at(inj)), "end": iso(_at(removed))},
        "breach_at": iso(_at(breach)),
        "detected_at": iso(_at(detected)),
        "removed_at": iso(_at(removed)),
        "recovered_at": iso(_at(recovered)),
        "halt_latency_s": 0.3,
        "recovery_s": 13.6,
        "recovery_target_s": 60.0,
        "slis": [
            _sli(err, inj, lambda t: round(_ramp_decay(t, peak=0.31, rise=3, hold=4, decay=8, lag=1), 4)),
            _sli(
                p99, inj, lambda t: round(0.08 + _ramp_decay(t, peak=0.4, rise=2, hold=5, decay=9, lag=1), 4)
            ),
            _sli(burn, inj, lambda t: round(_ramp_decay(t, peak=0.082, rise=4, hold=5, decay=12, lag=1), 4)),
        ],
        "detection": [
            {
                "alert": "PaymentHighErrorRate",
                "service": "payment",
                "for_s": 60.0,
                "pending_after_s": 0.8,
                "firing_after_s": None,
                "sli_breached_s": 12.1,
                "noticed": True,
            },
            {
                "alert": "PaymentHighLatencyP99",
                "service": "payment",
                "for_s": 60.0,
                "pending_after_s": None,
                "firing_after_s": None,
                "sli_breached_s": 0.0,
                "noticed": False,
            },
        ],
        "findings": [
            {
                "kind": "slo-broken",
                "text": "PaymentHighErrorRate (payment) reached 0.31 > 0.05 under a pod-kill of one "
                "payment pod",
            }
        ],
    }
    return check


def _skipped_step() -> tuple[dict[str, Any], ...]:
    reason = "gate stop: step payment-pod-kill halted"
    step = _step(
        "payment-delay", "payment", "core", "NetworkChaos", "delay", "one", "skipped", reason, 72.0, 72.0
    )
    step["started_at"] = step["ended_at"] = None
    plan = _plan(
        "payment-delay",
        "payment",
        "core",
        "team-payments",
        {
            "kind": "NetworkChaos",
            "action": "delay",
            "mode": "one",
            "value": None,
            "duration": "20s",
            "summary": "delay 200ms, one pod of payment, 20s",
        },
        [],
    )
    do = {"step": "payment-delay", "events": [_event(72.0, "skipped", reason)]}
    check = {
        "step": "payment-delay",
        "verdict": "skipped",
        "reason": reason,
        "fault_window": None,
        "breach_at": None,
        "detected_at": None,
        "removed_at": None,
        "recovered_at": None,
        "halt_latency_s": None,
        "recovery_s": None,
        "recovery_target_s": 60.0,
        "slis": [],
        "detection": [],
        "findings": [],
    }
    return step, plan, do, check


def _items() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    payment = _item(
        ITEM_PAYMENT,
        "payment-pod-kill",
        "payment",
        "team-payments",
        "slo-broken",
        "PaymentHighErrorRate",
        "A pod-kill of one payment pod broke PaymentHighErrorRate (payment): error ratio 0.31 > 0.05, "
        "halted 0.30s after the breach, recovered in 13.6s. Run more than one payment replica, add "
        "a PodDisruptionBudget, and retry in cart (its caller).",
        "open",
        52.6,
        [RUN_ID],
        {"value": 0.31, "threshold": 0.05, "halt_latency_s": 0.3},
    )
    cart = _item(
        ITEM_CART,
        "cart-delay",
        "cart",
        "team-checkout",
        "slow-recovery",
        "CartHighLatencyP99",
        "cart took 94.0s to recover from a 100ms delay (target 60s): cap the retries in frontend.",
        "verified",
        -86400.0 * 7,
        ["20261129T101500Z-9b1c", RUN_ID],
        {"recovery_s": 0.9},
    )
    catalog = _item(
        ITEM_CATALOG,
        "catalog-delay",
        "catalog",
        "team-discovery",
        "coverage-gap",
        None,
        "catalog has no SLO alert of its own; only ShopAvailabilityBurn (global) watches it.",
        "accepted",
        -86400.0 * 14,
        ["20261122T101500Z-71aa", "20261129T101500Z-9b1c", RUN_ID],
        {"alerts": ["ShopAvailabilityBurn"]},
    )
    catalog["note"] = "non-core; the frontend latency SLO covers catalog pages"
    return [payment, cart], [payment, cart, catalog]


def sample_gameday_run() -> dict[str, Any]:
    """The run.json document of the sample game day that found the payment weakness."""
    parts = [_catalog_step(), _cart_step(), _payment_step(), _skipped_step()]
    act, checklist = _items()
    return {
        "run_id": RUN_ID,
        "gameday": "shop-weekly",
        "target": "sandbox",
        "started_at": iso(T0),
        "ended_at": iso(_at(75)),
        "verdict": "halted",
        "steps": [p[0] for p in parts],
        "pdca": {
            "plan": [p[1] for p in parts],
            "do": [p[2] for p in parts],
            "check": [p[3] for p in parts],
            "act": act,
        },
        "checklist": checklist,
    }


def old_run() -> dict[str, Any]:
    """The same run as chaoslab 0.1 wrote it: no ``pdca``, no ``checklist``."""
    run = copy.deepcopy(sample_gameday_run())
    del run["pdca"], run["checklist"]
    return run


def run_at(run_id: str, started: datetime, verdicts: dict[str, str]) -> dict[str, Any]:
    """A minimal run.json of another run: one step per experiment with the given verdicts."""
    steps = [
        {
            "experiment": name,
            "service": name.split("-")[0],
            "tier": "core",
            "kind": "PodChaos",
            "action": "pod-kill",
            "mode": "one",
            "value": None,
            "verdict": verdict,
            "reason": verdict,
            "started_at": iso(started),
            "ended_at": iso(started),
            "halt": None,
            "recovery_s": None,
            "hypothesis": {"before": [], "during": [], "after": []},
            "journal": None,
        }
        for name, verdict in verdicts.items()
    ]
    order = ("halted", "deviated", "baseline-not-met", "error", "held", "skipped")
    worst = next((v for v in order if v in verdicts.values()), "held")
    return {
        "run_id": run_id,
        "gameday": "shop-weekly",
        "target": "sandbox",
        "started_at": iso(started),
        "ended_at": iso(started + timedelta(minutes=2)),
        "verdict": worst,
        "steps": steps,
    }
