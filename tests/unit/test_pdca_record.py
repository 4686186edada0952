"""The PDCA record: built from a plan and a run result (steps that never injected need no
Prometheus), and its JSON form (run.json ``pdca``/``checklist``), which reads back."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from chaoslab.model import (
    AlertRule,
    Catalog,
    ChaosKind,
    Delay,
    Experiment,
    GameDay,
    HypothesisCheck,
    Mode,
    NetworkAction,
    NetworkChaos,
    PodAction,
    PodChaos,
    RunResult,
    Safety,
    Selector,
    Service,
    StepResult,
    Tier,
    Verdict,
)
from chaoslab.pdca.collect import collect_run
from chaoslab.pdca.ledger import Judgement
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
from chaoslab.plan import build_plan
from chaoslab.report.pdca_record import checklist_to_list, pdca_from_dict, pdca_to_dict
from chaoslab.report.record import run_document, run_to_dict

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def svc(name: str, tier: Tier, owner: str) -> Service:
    return Service(
        name=name,
        namespace="shop",
        tier=tier,
        owner=owner,
        selector=Selector(namespaces=("shop",), label_selectors={"app": name}),
    )


CATALOG = Catalog(
    name="shop",
    services=(
        svc("catalog", Tier.NON_CORE, "team-discovery"),
        svc("cart", Tier.CORE, "team-checkout"),
        svc("payment", Tier.CORE, "team-payments"),
    ),
)
RULES = (
    AlertRule(
        name="CartErrors",
        expr='sum(rate(errors{service="cart"}[5s])) > 0.05',
        for_s=60.0,
        labels={"severity": "page", "service": "cart"},
    ),
    AlertRule(
        name="PaymentErrors",
        expr='sum(rate(errors{service="payment"}[5s])) > 0.05',
        for_s=60.0,
        labels={"severity": "page", "service": "payment"},
    ),
    AlertRule(name="CatalogUp", expr='up{job="catalog"} == 0', labels={"severity": "warning"}),
)
KILL = PodChaos(action=PodAction.POD_KILL, mode=Mode.ONE, duration="20s")


def _plan() -> tuple[GameDay, list[StepResult]]:
    gameday = GameDay(
        name="day",
        catalog=CATALOG,
        safety=Safety(allow_namespaces=("shop",), max_percent=50),
        experiments=(
            Experiment(
                name="catalog-delay",
                service="catalog",
                fault=NetworkChaos(
                    action=NetworkAction.DELAY, mode=Mode.ALL, duration="10s", delay=Delay(latency="300ms")
                ),
            ),
            Experiment(name="cart-kill", service="cart", fault=KILL),
            Experiment(name="payment-kill", service="payment", fault=KILL),
        ),
    )
    unmet = HypothesisCheck(
        alert="CartErrors",
        service="cart",
        met=False,
        value=0.2,
        threshold=0.05,
        reason="condition true: 0.2 > 0.05",
    )

    def result(name: str, service: str, verdict: Verdict, **extra: object) -> StepResult:
        return StepResult(
            step=name,
            experiment=name,
            service=service,
            tier=Tier.CORE,
            kind=ChaosKind.POD_CHAOS,
            action="pod-kill",
            mode=Mode.ONE,
            verdict=verdict,
            **extra,
        )  # type: ignore[arg-type]

    steps = [
        result("catalog-delay", "catalog", Verdict.SKIPPED, reason="refused by safety rules: mode all"),
        result(
            "cart-kill",
            "cart",
            Verdict.BASELINE_NOT_MET,
            reason="baseline not met",
            before=(unmet,),
            started_at=T0,
            ended_at=T0 + timedelta(seconds=1),
        ),
        result(
            "payment-kill",
            "payment",
            Verdict.ERROR,
            reason="injection failed: preflight: no pod",
            inject_error="preflight: no running pod matches app=payment",
            started_at=T0 + timedelta(seconds=2),
            ended_at=T0 + timedelta(seconds=3),
        ),
    ]
    return gameday, steps


def test_a_run_that_never_injected_has_its_plan_timeline_and_findings_without_prometheus() -> None:
    gameday, steps = _plan()
    plan = build_plan(gameday)
    assert plan.steps[0].refusal  # catalog-delay hits every pod: more than 50 %
    run = RunResult(
        run_id="r1",
        gameday="day",
        target="sandbox",
        started_at=T0,
        ended_at=T0 + timedelta(seconds=4),
        verdict=Verdict.ERROR,
        steps=tuple(steps),
    )
    record, outcomes = collect_run(
        plan,
        run,
        rules=RULES,
        metrics=None,
        rechecks=lambda e, s: [f"{e}/{s}/slo-broken"] if e == "cart-kill" else [],
    )
    by_step = {p.step: p for p in record.plan}
    cart = by_step["cart-kill"]
    assert (cart.owner, cart.fault.summary, cart.rechecks) == (
        "team-checkout",
        "pod-kill, one cart pod, 20s",
        ("cart-kill/cart/slo-broken",),
    )
    (alert,) = cart.hypothesis
    assert (alert.alert, alert.sli, alert.op, alert.threshold, alert.for_s) == (
        "CartErrors",
        'sum(rate(errors{service="cart"}[5s]))',
        ">",
        0.05,
        60.0,
    )
    assert by_step["catalog-delay"].fault.summary == "delay 300ms, every catalog pod, 10s"
    assert [[e.kind for e in t.events] for t in record.do] == [
        [EventKind.REFUSED],
        [EventKind.BASELINE],
        [EventKind.ERROR],
    ]
    kinds = [[f.kind for f in c.findings] for c in record.check]
    assert kinds == [
        [FindingKind.INJECTION_FAILED],
        [FindingKind.BASELINE_NOT_MET],
        [FindingKind.INJECTION_FAILED],
    ]
    assert all(c.slis == () for c in record.check)
    assert [(o.experiment, o.judgement) for o in outcomes] == [
        ("catalog-delay", Judgement.INCONCLUSIVE),
        ("cart-kill", Judgement.FAILED),
        ("payment-kill", Judgement.INCONCLUSIVE),
    ]
    baseline = record.check[1].findings[0]
    assert "CartErrors (cart) was not quiet: condition true: 0.2 > 0.05" in baseline.text


def _record() -> PdcaRecord:
    item = ChecklistItem(
        id="payment-kill/payment/slo-broken",
        experiment="payment-kill",
        service="payment",
        owner="team-payments",
        kind=FindingKind.SLO_BROKEN,
        alert="CartErrors",
        text="Run more than one payment replica.",
        status=ItemStatus.OPEN,
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=5),
        runs=("r1", "r2"),
        evidence={"value": 0.31, "threshold": 0.05, "nan": math.nan},
    )
    return PdcaRecord(
        plan=(
            StepPlan(
                step="payment-kill",
                experiment="payment-kill",
                service="payment",
                tier="core",
                owner="team-payments",
                fault=FaultSummary(
                    kind="PodChaos",
                    action="pod-kill",
                    mode="one",
                    value=None,
                    duration="20s",
                    summary="pod-kill, one payment pod, 20s",
                ),
                hypothesis=(
                    PlannedAlert(
                        alert="PaymentErrors",
                        service="payment",
                        expr="x > 0.05",
                        sli="x",
                        op=">",
                        threshold=0.05,
                        for_s=60.0,
                        severity="page",
                    ),
                ),
                halt_conditions=("PaymentErrors (payment): x > 0.05",),
                rechecks=(item.id,),
            ),
        ),
        do=(
            StepTimeline(
                step="payment-kill",
                events=(
                    TimelineEvent(
                        at=T0, kind=EventKind.INJECTED, text="pod-kill injected", pods=("shop/payment-1a2b3",)
                    ),
                    TimelineEvent(at=T0 + timedelta(seconds=1), kind=EventKind.REMOVED, text="fault removed"),
                ),
            ),
        ),
        check=(
            StepCheck(
                step="payment-kill",
                verdict=Verdict.HALTED,
                reason="SLO breached",
                fault_window=FaultWindow(start=T0, end=T0 + timedelta(seconds=1)),
                breach_at=T0 + timedelta(seconds=0.8),
                detected_at=T0 + timedelta(seconds=0.9),
                removed_at=T0 + timedelta(seconds=1),
                recovered_at=T0 + timedelta(seconds=5.2),
                halt_latency_s=0.2,
                recovery_s=4.2,
                recovery_target_s=60.0,
                slis=(
                    SliSeries(
                        alert="CartErrors",
                        service="cart",
                        query="x",
                        op=">",
                        threshold=0.05,
                        step_s=1.0,
                        start=T0 - timedelta(seconds=15),
                        end=T0 + timedelta(seconds=10),
                        points=((1733479200.0, 0.0), (1733479201.0, 0.31), (1733479202.0, None)),
                    ),
                ),
                detection=(
                    Detection(
                        alert="CartErrors",
                        service="cart",
                        for_s=60.0,
                        pending_after_s=1.0,
                        sli_breached_s=8.0,
                        noticed=True,
                    ),
                ),
                findings=(Finding(kind=FindingKind.SLO_BROKEN, text="Run more than one payment replica."),),
            ),
        ),
        act=(item,),
        checklist=(item,),
    )


def test_the_pdca_document_is_strict_json_and_reads_back() -> None:
    record = _record()
    doc = pdca_to_dict(record)
    checklist = checklist_to_list(record.checklist)
    text = json.dumps({"pdca": doc, "checklist": checklist}, allow_nan=False)  # NaN became null
    loaded = json.loads(text)
    again = pdca_from_dict(loaded["pdca"], loaded["checklist"])
    assert pdca_to_dict(again) == loaded["pdca"]
    assert checklist_to_list(again.checklist) == loaded["checklist"]
    assert again.plan == record.plan
    assert again.do == record.do
    assert again.check[0].slis == record.check[0].slis
    assert loaded["checklist"][0]["evidence"]["nan"] is None
    assert loaded["pdca"]["check"][0]["fault_window"] == {
        "start": "2026-12-06T10:00:00.000Z",
        "end": "2026-12-06T10:00:01.000Z",
    }


def test_the_contract_keys() -> None:
    doc = pdca_to_dict(_record())
    assert set(doc) == {"plan", "do", "check", "act"}
    assert set(doc["plan"][0]) == {
        "step",
        "experiment",
        "service",
        "tier",
        "owner",
        "fault",
        "hypothesis",
        "halt_conditions",
        "expected",
        "rechecks",
    }
    assert set(doc["do"][0]["events"][0]) == {"at", "kind", "text", "pods"}
    assert set(doc["check"][0]) == {
        "step",
        "verdict",
        "reason",
        "fault_window",
        "breach_at",
        "detected_at",
        "removed_at",
        "recovered_at",
        "halt_latency_s",
        "recovery_s",
        "recovery_target_s",
        "slis",
        "detection",
        "findings",
    }
    assert set(doc["check"][0]["slis"][0]) == {
        "alert",
        "service",
        "query",
        "op",
        "threshold",
        "step_s",
        "start",
        "end",
        "points",
        "error",
    }
    assert set(doc["check"][0]["detection"][0]) == {
        "alert",
        "service",
        "for_s",
        "pending_after_s",
        "firing_after_s",
        "sli_breached_s",
        "noticed",
    }
    assert set(doc["act"][0]) == {
        "id",
        "experiment",
        "service",
        "owner",
        "kind",
        "alert",
        "text",
        "status",
        "note",
        "first_seen",
        "last_seen",
        "runs",
        "evidence",
    }


def test_run_document_masks_secrets_everywhere() -> None:
    token = "tok-9c1e55aa0b"
    leaky = StepResult(
        step="s",
        experiment="s",
        service="payment",
        tier=Tier.CORE,
        kind=ChaosKind.POD_CHAOS,
        action="pod-kill",
        mode=Mode.ONE,
        verdict=Verdict.ERROR,
        reason=f"Prometheus at http://ops:{token}@prom:9090 answered 401 (Authorization: Bearer {token})",
    )
    run = RunResult(
        run_id="r",
        gameday="d",
        target="sandbox",
        started_at=T0,
        ended_at=T0,
        verdict=Verdict.ERROR,
        steps=(leaky,),
        pdca=_record(),
    )
    assert token in json.dumps(run_to_dict(run))
    doc = run_document(run, secrets=[token])
    assert token not in json.dumps(doc)
    assert "http://ops:***@prom:9090" in doc["steps"][0]["reason"]
    assert doc["checklist"][0]["id"] == "payment-kill/payment/slo-broken"
