"""The fix for the shop's built-in weakness, verified: with ``experiments/sandbox-fixed.yaml``
(two payment replicas, two retries in cart) a payment pod-kill is tolerated."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from chaoslab.model import EXPERIMENT_LABEL
from tests.support.sandbox import REPO, RunningSandbox, attempt, sandbox_up

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def resilient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    fix = REPO / "experiments" / "sandbox-fixed.yaml"
    with sandbox_up(tmp_path_factory.mktemp("sandbox"), config=fix) as running:
        running.settle()
        yield running


def test_a_payment_pod_kill_is_tolerated_with_the_fix(resilient: RunningSandbox) -> None:
    before = {p["name"] for p in resilient.pods("payment")}
    assert len(before) == 2
    manifest = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos",
                "metadata": {"name": "payment-kill", "namespace": "shop",
                             "labels": {EXPERIMENT_LABEL: "payment-kill"}},
                "spec": {"action": "pod-kill", "mode": "one", "gracePeriod": 0,
                         "selector": {"labelSelectors": {"app": "payment"}}}}
    handle = resilient.backend.apply_manifest(manifest)
    resilient.backend.wait_injected(handle, timeout=10)

    def replaced() -> bool:
        pods = resilient.pods("payment")
        return len(pods) == 2 and all(p["ready"] for p in pods) and {p["name"] for p in pods} != before

    # Checkout keeps working from the kill until the replacement is ready, and a bit after.
    outcomes = []
    deadline = time.monotonic() + 30
    while not replaced() and time.monotonic() < deadline:
        outcomes.append(attempt(resilient.service("frontend"), timeout=5.0))
    outcomes += [attempt(resilient.service("frontend"), timeout=5.0) for _ in range(10)]
    assert replaced()
    assert len(outcomes) > 20
    assert set(outcomes) == {200}, {o: outcomes.count(o) for o in set(outcomes)}
    assert resilient.alert_state("CheckoutErrors") == "inactive"
    resilient.backend.remove(handle, timeout=10)
    assert resilient.backend.list_faults() == []
