"""The recovery's first check is asked as the rollback removes the fault (``FirstCheck``),
while the step's experiment ends and the backend is asked what remains, and
``wait_for_recovery`` takes its answers instead of asking again."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import chaoslab
from chaoslab.halt import reset_halt
from chaoslab.model import AlertRule, AlertState, FaultHandle, GameDay
from chaoslab.runner import run_plan
from chaoslab.runner.recovery import FirstCheck, wait_for_recovery
from chaoslab.runner.signals import SignalWatch
from chaoslab.settings import load_settings
from chaoslab.watch import Condition, build_conditions
from tests.fakes.memory import MemoryBackend, ScriptedMetrics

RULE = AlertRule(name="CartErrors", expr='sum(rate(errors{service="cart"}[10s])) > 0.05', for_s=0.0,
                 labels={"service": "cart"})


@pytest.fixture(autouse=True)
def _clean_halt() -> Iterator[None]:
    reset_halt()
    yield
    reset_halt()


def _conditions() -> Sequence[Condition]:
    cart = chaoslab.service("cart", namespace="shop", tier="non-core", labels={"app": "cart"})
    return build_conditions(cart, (RULE,), chaoslab.catalog("shop", [cart]))


def test_the_first_check_asked_for_this_removal_is_the_recovery_s_first() -> None:
    metrics = ScriptedMetrics()
    conditions = _conditions()
    removed = datetime.now(UTC)
    first = FirstCheck(metrics, conditions)
    first.start(removed)
    first.start(removed)  # once
    answered = first.answered()
    assert answered is not None
    asked = metrics.queries

    recovery = wait_for_recovery(metrics, conditions, since=removed, timeout=5.0, interval=0.5,
                                 stop=threading.Event(), first=first)

    assert recovery.recovered
    assert metrics.queries == asked  # nothing asked again
    assert recovery.checks == answered[0]
    assert recovery.seconds == pytest.approx((answered[1] - removed).total_seconds())


def test_a_first_check_for_another_removal_or_one_not_met_is_asked_again() -> None:
    metrics = ScriptedMetrics()
    conditions = _conditions()
    earlier = datetime.now(UTC) - timedelta(seconds=1)
    first = FirstCheck(metrics, conditions)
    first.start(earlier)
    first.answered()
    asked = metrics.queries
    later = datetime.now(UTC)  # the fault was removed again after what remained was found

    recovery = wait_for_recovery(metrics, conditions, since=later, timeout=5.0, interval=0.5,
                                 stop=threading.Event(), first=first)
    assert recovery.recovered
    assert metrics.queries > asked

    metrics.values["cart"] = 1.0  # still broken when first checked: the wait goes on
    broken = FirstCheck(metrics, conditions)
    broken.start(later)
    broken.answered()
    metrics.values["cart"] = 0.0
    recovery = wait_for_recovery(metrics, conditions, since=later, timeout=5.0, interval=0.1,
                                 stop=threading.Event(), first=broken)
    assert recovery.recovered
    assert all(c.met for c in recovery.checks)


class _Alerts(ScriptedMetrics):
    """Tells when the alerts are asked after the fault's removal."""

    def __init__(self) -> None:
        super().__init__()
        self.removed = threading.Event()
        self.asked_after_removal = threading.Event()

    def alerts(self) -> Sequence[AlertState]:
        if self.removed.is_set():
            self.asked_after_removal.set()
        return super().alerts()


class _Remembers(MemoryBackend):
    """Waits, when asked what remains of the run, for the recovery's first check to have
    been asked (at most 10 s): a first check asked only after that listing would wait it out."""

    def __init__(self, metrics: _Alerts) -> None:
        super().__init__()
        self.metrics = metrics
        self.waited: list[bool] = []

    def remove(self, handle: FaultHandle, *, timeout: float, force: bool = False) -> None:
        super().remove(handle, timeout=timeout, force=force)
        self.metrics.removed.set()

    def list_faults(self, *, run_id: str | None = None, namespace: str | None = None) -> list[FaultHandle]:
        if run_id is not None and self.metrics.removed.is_set() and not self.waited:
            self.waited.append(self.metrics.asked_after_removal.wait(timeout=10.0))
        return super().list_faults(run_id=run_id, namespace=namespace)


def test_a_run_asks_the_first_check_before_it_asks_what_remains(tmp_path: Path) -> None:
    cart = chaoslab.service("cart", namespace="shop", tier="non-core", labels={"app": "cart"})
    catalog = chaoslab.catalog("shop", [cart])
    fault = chaoslab.network_delay(latency="100ms", duration="1s")
    plan = chaoslab.to_plan(GameDay(name="first", catalog=catalog, experiments=(
        chaoslab.experiment("cart-delay", service="cart", fault=fault, catalog=catalog),
    )))
    metrics = _Alerts()
    backend = _Remembers(metrics)
    settings = load_settings(env={}, overrides={"reports_dir": tmp_path, "remove_timeout_s": 1.0})

    result = run_plan(plan, settings=settings, backend=backend, metrics=metrics, rules=(RULE,),
                      signals=SignalWatch())

    (step,) = result.steps
    assert step.verdict.value == "held"
    assert step.recovery_s is not None
    assert backend.waited == [True]  # the first check was under way before the listing
