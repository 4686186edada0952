"""The Act rules, as a table: one row per finding kind, with the evidence that triggers
it and the evidence that does not."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chaoslab.model import Verdict
from chaoslab.pdca.findings import (
    ADVICE,
    RULES,
    BrokenSlo,
    StepEvidence,
    UnmetCheck,
    find_all,
    finding_id,
    item_id,
)
from chaoslab.pdca_model import Detection, FindingKind

OWNERS = {"payment": "team-payments", "cart": "team-checkout", "frontend": "team-web"}
CART_BROKE = BrokenSlo(alert="CartErrors", service="cart", value=0.31, op=">", threshold=0.05)


def evidence(**changes: Any) -> StepEvidence:
    """A payment pod-kill that held: no rule fires on it."""
    base = StepEvidence(
        experiment="payment-pod-kill",
        service="payment",
        owners=OWNERS,
        action="pod-kill",
        scope="one payment pod",
        duration="20s",
        verdict=Verdict.HELD,
        own_alerts=("PaymentErrors",),
        recovery_s=3.0,
        recovered=True,
        recovery_target_s=60.0,
        detection=(Detection(alert="PaymentErrors", service="payment", for_s=60.0),),
    )
    return dataclasses.replace(base, **changes)


NOTICED = Detection(
    alert="PaymentErrors",
    service="payment",
    for_s=60.0,
    pending_after_s=1.0,
    sli_breached_s=8.0,
    noticed=True,
)

# kind, evidence that triggers it, evidence that does not (a near miss)
TABLE: list[tuple[FindingKind, StepEvidence, StepEvidence]] = [
    (
        FindingKind.SLO_BROKEN,
        evidence(verdict=Verdict.HALTED, broken=(CART_BROKE,), halt_latency_s=0.21, detection=(NOTICED,)),
        evidence(verdict=Verdict.HELD, broken=(), detection=(NOTICED,)),
    ),
    (
        FindingKind.SLOW_RECOVERY,
        evidence(recovery_s=75.0),
        evidence(recovery_s=59.0),
    ),
    (
        FindingKind.ALERTING_GAP,
        evidence(
            detection=(
                Detection(
                    alert="PaymentErrors",
                    service="payment",
                    for_s=10.0,
                    sli_breached_s=25.0,
                    pending_after_s=1.0,
                ),
            )
        ),
        evidence(
            detection=(
                Detection(
                    alert="PaymentErrors",
                    service="payment",
                    for_s=10.0,
                    sli_breached_s=25.0,
                    pending_after_s=1.0,
                    firing_after_s=11.0,
                    noticed=True,
                ),
            )
        ),
    ),
    (
        FindingKind.COVERAGE_GAP,
        evidence(verdict=Verdict.HALTED, broken=(CART_BROKE,), recovery_s=3.0),
        evidence(verdict=Verdict.HALTED, broken=(CART_BROKE,), detection=(NOTICED,)),
    ),
    (
        FindingKind.BASELINE_NOT_MET,
        evidence(
            verdict=Verdict.BASELINE_NOT_MET,
            recovery_s=None,
            recovered=None,
            baseline_unmet=(UnmetCheck(alert="CartErrors", service="cart", reason="0.2 > 0.05"),),
        ),
        evidence(verdict=Verdict.HELD),
    ),
    (
        FindingKind.INJECTION_FAILED,
        evidence(
            verdict=Verdict.ERROR,
            recovery_s=None,
            recovered=None,
            inject_error="preflight: no running pod matches app=paymnt",
        ),
        evidence(verdict=Verdict.ERROR, recovery_s=None, recovered=None),
    ),
]


def test_the_table_has_one_row_per_finding_kind_and_one_rule_each() -> None:
    assert [row[0] for row in TABLE] == list(FindingKind)
    assert [rule.kind for rule in RULES] == list(FindingKind)


@pytest.mark.parametrize(("kind", "triggers", "near_miss"), TABLE, ids=[k.value for k, _, _ in TABLE])
def test_each_rule_fires_on_its_evidence_and_not_on_the_near_miss(
    kind: FindingKind, triggers: StepEvidence, near_miss: StepEvidence
) -> None:
    rule = next(r for r in RULES if r.kind is kind)
    found = rule.find(triggers)
    assert [f.kind for f in found] == [kind]
    assert rule.find(near_miss) == []
    finding = found[0]
    assert finding.experiment == "payment-pod-kill"
    assert finding.target == "payment"
    assert finding.owner == OWNERS.get(finding.service)
    assert finding.text.endswith(".")
    assert "payment" in finding.text


def test_a_held_step_with_a_quick_recovery_finds_nothing() -> None:
    assert find_all(evidence()) == ()


def test_slo_broken_names_the_service_hit_and_the_service_whose_slo_broke_with_the_numbers() -> None:
    ev = evidence(verdict=Verdict.HALTED, broken=(CART_BROKE,), halt_latency_s=0.21, detection=(NOTICED,))
    (finding,) = [f for f in find_all(ev) if f.kind is FindingKind.SLO_BROKEN]
    assert finding.service == "payment"
    assert finding.owner == "team-payments"
    assert "CartErrors (cart): 0.31 > 0.05" in finding.text
    assert "halted 0.21s after the breach" in finding.text
    assert "more than one payment replica" in finding.text
    assert "retry failed calls to payment in cart" in finding.text
    assert finding.evidence["value"] == 0.31
    assert finding.evidence["threshold"] == 0.05


@pytest.mark.parametrize(
    ("action", "words"),
    [
        ("pod-kill", "PodDisruptionBudget"),
        ("pod-failure", "readiness probe"),
        ("container-kill", "start fast"),
        ("delay", "timeout"),
        ("loss", "backoff"),
        ("partition", "circuit breaker"),
        ("bandwidth", "compression"),
    ],
)
def test_slo_broken_advice_fits_the_fault(action: str, words: str) -> None:
    ev = evidence(action=action, verdict=Verdict.HALTED, broken=(CART_BROKE,))
    (finding,) = [f for f in find_all(ev) if f.kind is FindingKind.SLO_BROKEN]
    assert words in finding.text
    assert "cart" in finding.text
    assert ADVICE[action].format(hit="payment", caller="cart") in finding.text


def test_the_caller_named_is_the_service_whose_slo_broke_furthest() -> None:
    frontend = BrokenSlo(alert="FrontendLatency", service="frontend", value=1.2, op=">", threshold=1.0)
    cart = BrokenSlo(alert="CartLatency", service="cart", value=1.5, op=">", threshold=0.5)
    ev = evidence(verdict=Verdict.HALTED, broken=(frontend, cart))
    (finding,) = [f for f in find_all(ev) if f.kind is FindingKind.SLO_BROKEN]
    assert "retry failed calls to payment in cart." in finding.text
    assert finding.alert == "FrontendLatency"  # the breach that halted comes first


def test_a_deviated_step_that_lost_its_sli_says_no_data() -> None:
    vanished = BrokenSlo(alert="PaymentErrors", service="payment", value=None, op=">", threshold=0.05)
    ev = evidence(verdict=Verdict.DEVIATED, broken=(vanished,), recovered=False, recovery_s=None)
    kinds = {f.kind for f in find_all(ev)}
    assert kinds == {FindingKind.SLO_BROKEN, FindingKind.SLOW_RECOVERY, FindingKind.COVERAGE_GAP}
    text = next(f.text for f in find_all(ev) if f.kind is FindingKind.SLO_BROKEN)
    assert "PaymentErrors (payment) (no data" in text
    assert "payment's callers" in text  # no other service broke: the callers are not known


def test_alerting_gap_is_owned_by_the_service_of_the_silent_alert() -> None:
    silent = Detection(alert="CartErrors", service="cart", for_s=5.0, sli_breached_s=30.0)
    (finding,) = find_all(evidence(detection=(silent,)))
    assert (finding.kind, finding.service, finding.owner, finding.alert) == (
        FindingKind.ALERTING_GAP,
        "cart",
        "team-checkout",
        "CartErrors",
    )
    assert finding_id(finding) == "payment-pod-kill/cart/alerting-gap/CartErrors"


def test_a_breach_shorter_than_for_plus_an_evaluation_is_no_alerting_gap() -> None:
    short = Detection(alert="CartErrors", service="cart", for_s=5.0, sli_breached_s=6.0)
    assert find_all(evidence(detection=(short,), slack_s=2.0)) == ()


@pytest.mark.parametrize(
    ("action", "words"), [("delay", "latency"), ("pod-kill", "traffic dropping to zero")]
)
def test_coverage_gap_advice_fits_the_fault(action: str, words: str) -> None:
    ev = evidence(action=action, verdict=Verdict.HALTED, broken=(CART_BROKE,))
    (gap,) = [f for f in find_all(ev) if f.kind is FindingKind.COVERAGE_GAP]
    assert words in gap.text
    assert "caught only by CartErrors (cart)" in gap.text


def test_refused_steps_find_a_wrong_experiment() -> None:
    ev = evidence(verdict=Verdict.SKIPPED, refusal="namespace kube-system is not allowed", recovery_s=None)
    (finding,) = find_all(ev)
    assert finding.kind is FindingKind.INJECTION_FAILED
    assert "was refused" in finding.text


def test_ids_are_made_of_experiment_service_kind_and_only_for_alert_kinds_the_alert() -> None:
    assert item_id(experiment="e", service="s", kind=FindingKind.SLO_BROKEN, alert="A") == "e/s/slo-broken"
    assert item_id(experiment="e", service="s", kind=FindingKind.BASELINE_NOT_MET, alert="A") == (
        "e/s/baseline-not-met/A"
    )
    first = find_all(evidence(verdict=Verdict.HALTED, broken=(CART_BROKE,), halt_latency_s=0.2))
    other = BrokenSlo(alert="ShopBurn", service=None, value=0.4, op=">", threshold=0.2)
    again = find_all(evidence(verdict=Verdict.HALTED, broken=(other, CART_BROKE), halt_latency_s=0.9))
    assert [finding_id(f) for f in first] == [finding_id(f) for f in again]
