"""A step's timeline from what its session recorded: phases, pods hit, halt, removal,
recovery, and pods restarted or replaced by action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chaoslab.model import (
    Experiment,
    HaltRecord,
    Mode,
    PodAction,
    PodChaos,
    Selector,
    Service,
    Step,
    Tier,
)
from chaoslab.pdca_model import EventKind
from chaoslab.runner.trace import step_events

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
PAYMENT = Service(name="payment", namespace="shop", tier=Tier.CORE,
                  selector=Selector(label_selectors={"app": "payment"}))


def step(action: PodAction) -> Step:
    fault = PodChaos(action=action, mode=Mode.ONE, duration="20s", container_names=("app",))
    return Step(name="s", experiment=Experiment(name="s", service="payment", fault=fault), service=PAYMENT)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


MARKS = [("baseline", at(0)), ("inject", at(1)), ("hold", at(2)), ("remove", at(4)), ("verify", at(5))]
OUTPUT = {"pods": ["shop/payment-aaaaa"], "injected_at": at(1.5).isoformat()}


@pytest.mark.parametrize(
    ("action", "after", "expected"),
    [
        (PodAction.POD_KILL, ("shop/payment-bbbbb",),
         (EventKind.POD_REPLACED, at(30), ("shop/payment-bbbbb",))),
        (PodAction.CONTAINER_KILL, None, (EventKind.POD_RESTARTED, at(1.5), ("shop/payment-aaaaa",))),
        (PodAction.POD_FAILURE, None, (EventKind.POD_RESTARTED, at(3.2), ("shop/payment-aaaaa",))),
    ],
)
def test_pods_restarted_or_replaced_by_action(
    action: PodAction, after: tuple[str, ...] | None, expected: tuple[EventKind, datetime, tuple[str, ...]]
) -> None:
    halt = HaltRecord(condition="CartErrors (cart)", detected_at=at(3), removed_at=at(3.2), breach_at=at(2.9))
    events = step_events(
        step(action), marks=MARKS, inject_output=OUTPUT, injected=True, halt=halt, removed_at=at(3.2),
        recovery_s=6.8, recovery_reason="", ended_at=at(30), pods_before=("shop/payment-aaaaa",),
        pods_after=after,
    )  # fmt: skip
    kinds = [e.kind for e in events]
    assert kinds[:2] == [EventKind.BASELINE, EventKind.INJECTED]
    assert [e.at for e in events] == sorted(e.at for e in events)
    (pod,) = [e for e in events if e.kind in (EventKind.POD_REPLACED, EventKind.POD_RESTARTED)]
    assert (pod.kind, pod.at, pod.pods) == expected
    injected = events[1]
    assert (injected.at, injected.pods) == (at(1.5), ("shop/payment-aaaaa",))
    assert [e.kind for e in events if e.kind in (EventKind.HALT, EventKind.REMOVED, EventKind.RECOVERED)] == [
        EventKind.HALT, EventKind.REMOVED, EventKind.RECOVERED]
    recovered = next(e for e in events if e.kind is EventKind.RECOVERED)
    assert recovered.at == at(10)


def test_a_pod_kill_replacement_names_the_pod_it_replaced() -> None:
    events = step_events(
        step(PodAction.POD_KILL), marks=MARKS, inject_output=OUTPUT, injected=True, halt=None,
        removed_at=at(22), recovery_s=0.1, recovery_reason="", ended_at=at(23),
        pods_before=("shop/payment-aaaaa", "shop/payment-ccccc"),
        pods_after=("shop/payment-ccccc", "shop/payment-bbbbb"),
    )  # fmt: skip
    replaced = next(e for e in events if e.kind is EventKind.POD_REPLACED)
    assert replaced.text == "payment-aaaaa replaced by payment-bbbbb (seen by the end of the step)"


def test_not_recovered_and_nothing_injected() -> None:
    events = step_events(
        step(PodAction.POD_KILL), marks=MARKS[:1], inject_output=None, injected=False, halt=None,
        removed_at=None, recovery_s=None, recovery_reason="", ended_at=at(1), pods_before=(), pods_after=None,
    )  # fmt: skip
    assert [e.kind for e in events] == [EventKind.BASELINE]
    stuck = step_events(
        step(PodAction.POD_KILL), marks=MARKS, inject_output=OUTPUT, injected=True, halt=None,
        removed_at=at(22), recovery_s=None, recovery_reason="hypothesis not met 120s after removal",
        ended_at=at(142), pods_before=(), pods_after=None,
    )  # fmt: skip
    assert stuck[-1].kind is EventKind.NOT_RECOVERED
    assert stuck[-1].text == "hypothesis not met 120s after removal"
