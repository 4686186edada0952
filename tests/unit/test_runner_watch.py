"""The SLO watcher, the halt conditions and the removal watchdog, against a scripted
metrics source and an in-memory chaos backend.

Both implement a port in memory: they stand in for Prometheus and for Kubernetes (external
systems), not for chaoslab code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from chaoslab.halt import halt_reason, halt_requested, hold, reset_halt
from chaoslab.model import (
    AlertRule,
    AlertState,
    Catalog,
    Selector,
    Service,
    Tier,
)
from chaoslab.runner.journal import probe_checks
from chaoslab.runner.watchdog import RemovalWatchdog
from chaoslab.watch import (
    BREACH_ALERT_STATE,
    BREACH_CONDITION,
    BREACH_NO_DATA,
    Condition,
    Watcher,
    build_conditions,
    evaluate,
    first_breach,
)
from tests.fakes.memory import MemoryBackend, ScriptedMetrics

RATIO = 'sum(rate(errors{service="%s"}[10s])) / sum(rate(total{service="%s"}[10s]))'


def svc(name: str, tier: Tier = Tier.CORE, alerts: tuple[str, ...] = ()) -> Service:
    return Service(
        name=name,
        namespace="shop",
        tier=tier,
        selector=Selector(label_selectors={"app": name}),
        alerts=alerts,
    )


def rule(name: str, service: str | None, *, severity: str = "page", threshold: float = 0.05) -> AlertRule:
    expr = RATIO % (service, service) if service else "sum(rate(errors[15s])) / sum(rate(total[15s]))"
    labels = {"severity": severity, **({"service": service} if service else {})}
    return AlertRule(name=name, expr=f"{expr} > {threshold}", for_s=60.0, labels=labels)


CATALOG = Catalog(
    name="shop", services=(svc("frontend"), svc("catalog", Tier.NON_CORE), svc("cart"), svc("payment"))
)
RULES = (
    rule("FrontendErrors", "frontend"),
    rule("CartErrors", "cart"),
    rule("PaymentErrors", "payment"),
    rule("ShopBurn", None, severity="critical"),
    rule("ShopInfo", None, severity="info"),  # neither bound nor global: not watched
)


@pytest.fixture(autouse=True)
def _clean_halt() -> None:
    reset_halt()


def test_conditions_cover_the_target_the_global_alerts_and_every_other_service() -> None:
    conditions = build_conditions(CATALOG.get("payment") or svc("payment"), RULES, CATALOG)
    names = [c.alert for c in conditions]
    assert names[:2] == ["PaymentErrors", "ShopBurn"]  # the target's own hypothesis first
    assert set(names) == {"PaymentErrors", "ShopBurn", "FrontendErrors", "CartErrors"}
    assert len(names) == len(set(names))
    own = {c.alert for c in conditions if c.target}
    assert own == {"PaymentErrors", "ShopBurn"}
    assert next(c for c in conditions if c.alert == "CartErrors").service == "cart"


def test_conditions_without_a_catalog_count_every_paging_alert() -> None:
    conditions = build_conditions(svc("payment"), RULES, None)
    assert {c.alert for c in conditions} == {"PaymentErrors", "ShopBurn", "FrontendErrors", "CartErrors"}


def test_a_healthy_system_passes_every_check() -> None:
    metrics = ScriptedMetrics()
    conditions = build_conditions(svc("payment"), RULES, CATALOG)
    checks = evaluate(metrics, conditions)
    assert all(c.met for c in checks)
    assert first_breach(conditions, checks) is None


@pytest.mark.parametrize(
    ("values", "states", "down", "alert", "kind"),
    [
        ({"cart": 0.4}, [], False, "CartErrors", BREACH_CONDITION),
        (
            {},
            [AlertState(name="FrontendErrors", state="pending")],
            False,
            "FrontendErrors",
            BREACH_ALERT_STATE,
        ),
        ({}, [], True, "PaymentErrors", BREACH_NO_DATA),
    ],
)
def test_first_breach(
    values: dict[str, float], states: list[AlertState], down: bool, alert: str, kind: str
) -> None:
    metrics = ScriptedMetrics()
    metrics.values, metrics.states, metrics.down = values, states, down
    conditions = build_conditions(svc("payment"), RULES, CATALOG)
    breach = first_breach(conditions, evaluate(metrics, conditions))
    assert breach is not None
    assert (breach.condition.alert, breach.kind) == (alert, kind)


def test_watcher_halts_the_hold_on_a_breach_of_another_service() -> None:
    metrics = ScriptedMetrics()
    seen = []
    watcher = Watcher(
        metrics, build_conditions(svc("payment"), RULES, CATALOG), interval=0.05, on_breach=seen.append
    )
    watcher.start()
    try:
        threading.Timer(0.3, lambda: metrics.values.update(cart=0.5)).start()
        result = hold("30s")
    finally:
        watcher.stop(wait=5.0)
    assert result["interrupted"] is True
    assert result["held_s"] < 10.0  # ended by the halt, not by the 30 s duration
    breach = watcher.breach
    assert breach is not None
    assert breach.condition.label == "CartErrors (cart)"
    assert seen == [breach]
    assert halt_requested()
    assert "CartErrors" in (halt_reason() or "")
    assert watcher.latest()


def test_watcher_treats_an_unreachable_prometheus_as_a_breach() -> None:
    metrics = ScriptedMetrics()
    watcher = Watcher(metrics, build_conditions(svc("catalog", Tier.NON_CORE), RULES, CATALOG), interval=0.05)
    with watcher:
        metrics.down = True
        assert hold("30s")["interrupted"] is True
    assert watcher.breach is not None
    assert watcher.breach.kind == BREACH_NO_DATA


def test_watcher_stops_without_a_halt_and_does_not_spin() -> None:
    metrics = ScriptedMetrics()
    conditions = build_conditions(svc("payment"), RULES, CATALOG)
    watcher = Watcher(metrics, conditions, interval=0.1)
    watcher.start()
    time.sleep(0.55)  # a fixed span to count evaluations in, not a wait for a condition
    watcher.stop(wait=5.0)
    assert watcher.breach is None
    assert not halt_requested()
    assert 1 <= watcher.evaluations <= 10  # about 6 at 0.1 s; a busy loop would do thousands


def test_the_first_evaluation_waits_first_after_and_a_stop_meanwhile_ends_the_watch() -> None:
    metrics = ScriptedMetrics()
    conditions = build_conditions(svc("payment"), RULES, CATALOG)
    watcher = Watcher(metrics, conditions, interval=0.05, first_after=0.3)
    started = time.monotonic()
    watcher.start()
    deadline = started + 30.0
    while metrics.queries == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert metrics.queries > 0
    assert time.monotonic() - started >= 0.29  # not asked before first_after (timer slack aside)
    watcher.stop(wait=5.0)

    idle = ScriptedMetrics()
    waiting = Watcher(idle, conditions, interval=0.05, first_after=60.0)
    waiting.start()
    began = time.monotonic()
    waiting.stop(wait=5.0)
    assert time.monotonic() - began < 5.0  # the stop ended the wait for the first evaluation
    assert (idle.queries, waiting.evaluations) == (0, 0)


def test_probe_outputs_become_checks() -> None:
    state = {
        "steady_state_met": False,
        "probes": [
            {
                "activity": {"provider": {"arguments": {"alert": "CartErrors"}}},
                "status": "succeeded",
                "tolerance_met": False,
                "end": "2026-11-27T10:15:00+00:00",
                "output": {
                    "alert": "CartErrors",
                    "verdict": "not-met",
                    "state": "pending",
                    "condition_true": True,
                    "value": 0.3,
                    "threshold": 0.05,
                    "margin": -0.25,
                    "reason": "condition true",
                },
            },
            {
                "activity": {"provider": {"arguments": {"alert": "ShopBurn"}}},
                "status": "failed",
                "exception": ["ActivityFailed: boom\n"],
                "output": None,
            },
        ],
    }
    conditions = (Condition(alert="CartErrors", expr="x > 1", service="cart"),)
    cart, burn = probe_checks(state, conditions)
    assert (cart.alert, cart.service, cart.met, cart.margin, cart.state) == (
        "CartErrors",
        "cart",
        False,
        -0.25,
        "pending",
    )
    assert (burn.alert, burn.met, burn.no_data) == ("ShopBurn", False, True)
    assert "boom" in burn.reason

    assert probe_checks(None) == ()


def _poll(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def test_the_watchdog_removes_the_faults_when_a_stop_is_not_followed_by_the_rollback() -> None:
    """A signal or a breach while the main thread is stuck (a slow injection): the faults of
    this run go at once, also one created after the first sweep; other runs' stay."""
    backend = MemoryBackend()
    backend.add("catalog-delay-3f2a", "run-a")
    backend.add("other-run", "run-b")
    reason: list[str] = []
    watchdog = RemovalWatchdog(
        backend, run_id="run-a", timeout=5.0, stop_reason=lambda: reason[0] if reason else None
    )
    watchdog.start()
    try:
        reason.append("SIGINT received")
        assert _poll(lambda: "catalog-delay-3f2a" not in backend.faults)
        backend.add("created-late", "run-a")
        assert _poll(lambda: "created-late" not in backend.faults)
    finally:
        watchdog.join(timeout=10)
    assert watchdog.acted == "SIGINT received"
    assert watchdog.removed[0] == "networkchaos/catalog-delay-3f2a in shop"
    assert watchdog.removed_at is not None
    assert list(backend.faults) == ["other-run"]


def test_the_watchdog_leaves_the_removal_to_a_rollback_that_starts_in_time() -> None:
    backend = MemoryBackend()
    backend.add("catalog-delay-3f2a", "run-a")
    stopped = threading.Event()
    # A grace far longer than the test: the rollback (stop()) always comes first.
    watchdog = RemovalWatchdog(
        backend, run_id="run-a", timeout=5.0, grace=60.0,
        stop_reason=lambda: "halt: CartErrors" if stopped.is_set() else None,
    )
    watchdog.start()
    stopped.set()
    watchdog.stop()
    watchdog.join(timeout=10)
    assert watchdog.acted is None
    assert list(backend.faults) == ["catalog-delay-3f2a"]
