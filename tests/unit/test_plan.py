"""The plan: tier order, experiment order, the blast-radius ramp, the matrix, safety
refusals, run windows and the JSON contract."""

from __future__ import annotations

import json
import re
import time as clock
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from chaoslab.errors import PlanError
from chaoslab.loader import load_experiment, load_gameday
from chaoslab.model import (
    Catalog,
    Delay,
    Direction,
    Experiment,
    GameDay,
    Matrix,
    MatrixFault,
    Mode,
    NetworkAction,
    NetworkChaos,
    NetworkTarget,
    PodAction,
    PodChaos,
    RampLevel,
    Safety,
    Selector,
    Service,
    Tier,
    Window,
)
from chaoslab.plan import build_plan, experiment_gameday, plan_to_dict, window_allows
from tests.support.files import experiment_doc, gameday_doc, pod, shop, write

KILL = PodChaos(action=PodAction.POD_KILL, mode=Mode.ONE, duration="20s")
DELAY = NetworkChaos(action=NetworkAction.DELAY, mode=Mode.ALL, duration="30s", delay=Delay(latency="200ms"))


def svc(name: str, tier: Tier = Tier.NON_CORE, namespace: str = "shop") -> Service:
    return Service(
        name=name,
        namespace=namespace,
        tier=tier,
        selector=Selector(namespaces=(namespace,), label_selectors={"app": name}),
    )


SHOP = Catalog(
    name="shop",
    services=(
        svc("frontend", Tier.CORE),
        svc("catalog"),
        svc("recommendation"),
        svc("cart", Tier.CORE),
        svc("payment", Tier.CORE),
    ),
)


def exp(name: str, service: str, fault: NetworkChaos | PodChaos = KILL) -> Experiment:
    return Experiment(name=name, fault=fault, service=service)


def gameday(*experiments: Experiment, catalog: Catalog = SHOP, **fields: object) -> GameDay:
    return GameDay(name="weekly", catalog=catalog, experiments=experiments, **fields)  # type: ignore[arg-type]


def names(gd: GameDay) -> list[tuple[str, list[str]]]:
    return [(stage.tier.label, [step.name for step in stage.steps]) for stage in build_plan(gd).stages]


def test_non_core_stage_runs_before_core_in_experiment_order() -> None:
    plan = gameday(
        exp("pay", "payment"), exp("rec", "recommendation"), exp("cart", "cart"), exp("cat", "catalog")
    )
    assert names(plan) == [("non-core", ["rec", "cat"]), ("core", ["pay", "cart"])]


def test_empty_stages_are_left_out() -> None:
    assert names(gameday(exp("pay", "payment"))) == [("core", ["pay"])]
    assert names(gameday(exp("cat", "catalog"))) == [("non-core", ["cat"])]


def test_inline_targets_are_staged_by_their_tier() -> None:
    inline = Experiment(name="issuer", fault=KILL, target=svc("issuer", Tier.NON_CORE, "cards"))
    plan = build_plan(gameday(exp("pay", "payment"), inline))
    assert [(s.tier, s.steps[0].service.namespace) for s in plan.stages] == [
        (Tier.NON_CORE, "cards"),
        (Tier.CORE, "shop"),
    ]


def test_ramp_expands_each_experiment_with_its_levels_together() -> None:
    ramp = (
        RampLevel(mode=Mode.ONE),
        RampLevel(mode=Mode.FIXED_PERCENT, value="50"),
        RampLevel(mode=Mode.ALL),
    )
    plan = build_plan(gameday(exp("cat", "catalog"), exp("rec", "recommendation", DELAY), blast_radius=ramp))
    steps = plan.steps
    assert [s.name for s in steps] == ["cat-r1", "cat-r2", "cat-r3", "rec-r1", "rec-r2", "rec-r3"]
    assert [(s.fault.mode, s.fault.value, s.level) for s in steps[3:]] == [
        (Mode.ONE, None, 0),
        (Mode.FIXED_PERCENT, "50", 1),
        (Mode.ALL, None, 2),
    ]
    assert {s.experiment.name for s in steps[:3]} == {"cat"}  # the experiment keeps its name
    assert steps[3].fault.delay == DELAY.delay  # only mode and value change


def test_a_one_level_ramp_keeps_the_step_name() -> None:
    plan = build_plan(gameday(exp("cat", "catalog"), blast_radius=(RampLevel(mode=Mode.FIXED, value="2"),)))
    assert [(s.name, s.fault.mode, s.fault.value) for s in plan.steps] == [("cat", Mode.FIXED, "2")]


def test_matrix_crosses_catalog_services_with_faults_after_the_experiments() -> None:
    matrix = Matrix(faults=(MatrixFault(name="kill", fault=KILL), MatrixFault(name="slow", fault=DELAY)))
    plan = build_plan(gameday(exp("pay", "payment"), matrix=matrix))
    assert names(gameday(exp("pay", "payment"), matrix=matrix)) == [
        ("non-core", ["catalog-kill", "catalog-slow", "recommendation-kill", "recommendation-slow"]),
        (
            "core",
            [
                "pay",
                "frontend-kill",
                "frontend-slow",
                "cart-kill",
                "cart-slow",
                "payment-kill",
                "payment-slow",
            ],
        ),
    ]
    step = plan.stages[0].steps[1]
    assert (step.experiment.name, step.experiment.service, step.fault) == ("catalog-slow", "catalog", DELAY)


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        (Tier.NON_CORE, ["catalog-kill", "recommendation-kill"]),
        (Tier.CORE, ["frontend-kill", "cart-kill", "payment-kill"]),
        (("payment", "catalog"), ["catalog-kill", "payment-kill"]),  # catalog order, not list order
    ],
)
def test_matrix_service_selection(services: Tier | tuple[str, ...], expected: list[str]) -> None:
    matrix = Matrix(faults=(MatrixFault(name="kill", fault=KILL),), services=services)
    assert [s.name for s in build_plan(gameday(matrix=matrix)).steps] == expected


def test_matrix_with_ramp_and_a_narrowing_selector() -> None:
    narrowed = replace(KILL, selector=Selector(label_selectors={"track": "canary"}))
    matrix = Matrix(faults=(MatrixFault(name="kill", fault=narrowed),), services=("cart",))
    ramp = (RampLevel(mode=Mode.ONE), RampLevel(mode=Mode.ALL))
    steps = build_plan(gameday(matrix=matrix, blast_radius=ramp)).steps
    assert [s.name for s in steps] == ["cart-kill-r1", "cart-kill-r2"]
    assert steps[0].service.selector.label_selectors == {"app": "cart", "track": "canary"}


PERCENT = {
    Mode.ONE: None,
    Mode.FIXED: "3",
    Mode.FIXED_PERCENT: "60",
    Mode.RANDOM_MAX_PERCENT: "40",
    Mode.ALL: None,
}


@pytest.mark.parametrize(
    ("mode", "max_percent", "refused"),
    [
        (Mode.ONE, 10, False),
        (Mode.FIXED, 10, False),  # a count of pods, not a percentage
        (Mode.FIXED_PERCENT, 60, False),
        (Mode.FIXED_PERCENT, 50, True),
        (Mode.RANDOM_MAX_PERCENT, 40, False),
        (Mode.RANDOM_MAX_PERCENT, 39, True),
        (Mode.ALL, 100, False),
        (Mode.ALL, 99, True),
    ],
)
def test_max_percent_refuses_steps_that_select_too_much(mode: Mode, max_percent: int, refused: bool) -> None:
    fault = replace(KILL, mode=mode, value=PERCENT[mode])
    step = build_plan(gameday(exp("cat", "catalog", fault), safety=Safety(max_percent=max_percent))).steps[0]
    assert (step.refusal is not None) == refused
    if refused:
        assert f"over safety.maxPercent {max_percent}%" in str(step.refusal)


def test_max_percent_ignores_the_network_target_mode() -> None:
    target = NetworkTarget(selector=Selector(), mode=Mode.ALL)
    fault = replace(DELAY, mode=Mode.ONE, direction=Direction.BOTH, target=target)
    assert (
        build_plan(gameday(exp("cat", "catalog", fault), safety=Safety(max_percent=10))).steps[0].refusal
        is None
    )


def test_ramp_levels_are_refused_one_by_one() -> None:
    ramp = (
        RampLevel(mode=Mode.ONE),
        RampLevel(mode=Mode.FIXED_PERCENT, value="50"),
        RampLevel(mode=Mode.ALL),
    )
    steps = build_plan(gameday(exp("cat", "catalog"), blast_radius=ramp, safety=Safety(max_percent=50))).steps
    assert [s.refusal is None for s in steps] == [True, True, False]


def test_allow_namespaces_refuses_other_namespaces() -> None:
    other = Catalog(name="c", services=(*SHOP.services, svc("ledger", Tier.CORE, "bank")))
    plan = build_plan(
        gameday(
            exp("pay", "payment"),
            exp("led", "ledger"),
            catalog=other,
            safety=Safety(allow_namespaces=("shop",)),
        )
    )
    assert next(s.refusal for s in plan.steps) is None
    assert plan.steps[1].refusal == "namespace bank is not in safety.allowNamespaces (shop)"


def test_allow_namespaces_covers_targets_that_get_injected() -> None:
    target = NetworkTarget(selector=Selector(namespaces=("db",)), mode=Mode.ONE)
    safety = Safety(allow_namespaces=("shop",))
    both = build_plan(
        gameday(exp("a", "cart", replace(DELAY, direction=Direction.BOTH, target=target)), safety=safety)
    ).steps[0]
    to = build_plan(gameday(exp("a", "cart", replace(DELAY, target=target)), safety=safety)).steps[0]
    assert "target namespace db" in str(both.refusal)
    assert to.refusal is None


def test_matrix_steps_in_kube_system_need_allow_kube_system() -> None:
    catalog = Catalog(name="c", services=(svc("cart", Tier.CORE), svc("coredns", Tier.CORE, "kube-system")))
    matrix = Matrix(faults=(MatrixFault(name="kill", fault=KILL),))
    refused = build_plan(gameday(matrix=matrix, catalog=catalog)).steps
    assert [s.refusal is None for s in refused] == [True, False]
    assert "kube-system" in str(refused[1].refusal)
    assert "allowKubeSystem" in str(refused[1].refusal)
    allowed = build_plan(gameday(matrix=matrix, catalog=catalog, safety=Safety(allow_kube_system=True))).steps
    assert all(s.refusal is None for s in allowed)


def test_single_experiment_plan(tmp_path: Path) -> None:
    catalog_dir = shop(tmp_path)
    experiment = load_experiment(write(catalog_dir / "e.yaml", experiment_doc("payment-kill", fault=pod())))
    plan = build_plan(experiment_gameday(experiment, SHOP))
    assert plan.gameday.name == "payment-kill"
    assert [(s.tier, [x.name for x in s.steps]) for s in plan.stages] == [(Tier.CORE, ["payment-kill"])]


def test_plan_json_contract(tmp_path: Path) -> None:
    base = shop(tmp_path)
    write(base / "exp" / "a.yaml", experiment_doc("catalog-kill", service="catalog", fault=pod()))
    write(base / "exp" / "b.yaml", experiment_doc("payment-delay"))
    path = write(
        base / "gameday.yaml",
        gameday_doc(
            "shop-weekly",
            blastRadius=[{"mode": "one"}, {"mode": "fixed-percent", "value": "50"}],
            safety={"maxPercent": 25},
        ),
    )
    data = json.loads(json.dumps(plan_to_dict(build_plan(load_gameday(path)))))
    assert data["gameday"] == "shop-weekly"
    assert [s["tier"] for s in data["stages"]] == ["non-core", "core"]
    first, second = data["stages"][0]["steps"]
    assert first == {
        "experiment": "catalog-kill",
        "service": "catalog",
        "namespace": "shop",
        "kind": "PodChaos",
        "action": "pod-kill",
        "mode": "one",
        "value": None,
        "duration": "20s",
        "step": "catalog-kill-r1",
        "level": 0,
        "refused": None,
    }
    assert (second["mode"], second["value"], second["step"]) == ("fixed-percent", "50", "catalog-kill-r2")
    assert "over safety.maxPercent 25%" in second["refused"]
    assert data["stages"][1]["steps"][0]["kind"] == "NetworkChaos"


WEEKDAYS = Window(
    days=("mon", "tue", "wed", "thu", "fri"), start=time(10), end=time(16), timezone="Asia/Shanghai"
)
OVERNIGHT = Window(days=("fri",), start=time(22), end=time(2), timezone="Europe/Paris")
SHANGHAI = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("window", "now", "inside"),
    [
        (WEEKDAYS, datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI), True),  # Thursday, at the start
        (WEEKDAYS, datetime(2026, 11, 26, 15, 59, tzinfo=SHANGHAI), True),
        (WEEKDAYS, datetime(2026, 11, 26, 16, 0, tzinfo=SHANGHAI), False),  # the end is excluded
        (WEEKDAYS, datetime(2026, 11, 26, 9, 59, tzinfo=SHANGHAI), False),
        (WEEKDAYS, datetime(2026, 11, 28, 11, 0, tzinfo=SHANGHAI), False),  # Saturday
        (WEEKDAYS, datetime(2026, 11, 26, 3, 0, tzinfo=UTC), True),  # 11:00 in Shanghai
        (WEEKDAYS, datetime(2026, 11, 27, 23, 0, tzinfo=UTC), False),  # Saturday 07:00 in Shanghai
        (OVERNIGHT, datetime(2026, 11, 27, 23, 30, tzinfo=UTC), True),  # Saturday 00:30 in Paris, from Friday
        (OVERNIGHT, datetime(2026, 11, 27, 21, 0, tzinfo=UTC), True),  # Friday 22:00 in Paris
        (OVERNIGHT, datetime(2026, 11, 28, 1, 0, tzinfo=UTC), False),  # Saturday 02:00 in Paris
        (OVERNIGHT, datetime(2026, 11, 26, 23, 30, tzinfo=UTC), False),  # Friday 00:30: Thursday's night
        (None, datetime(2026, 11, 28, 3, 0, tzinfo=UTC), True),
    ],
)
def test_window_allows(window: Window | None, now: datetime, inside: bool) -> None:
    allowed, reason = window_allows(window, now)
    assert allowed is inside
    assert reason.startswith("no run window" if window is None else "inside" if inside else "outside")


def test_window_reason_and_naive_time() -> None:
    _, reason = window_allows(WEEKDAYS, datetime(2026, 11, 28, 3, 0, tzinfo=UTC))
    assert reason == "outside the run window mon,tue,wed,thu,fri 10:00-16:00 Asia/Shanghai (now sat 11:00)"
    with pytest.raises(ValueError, match="timezone-aware"):
        window_allows(WEEKDAYS, datetime(2026, 11, 28, 3, 0))  # noqa: DTZ001 - the point of the test


def test_plans_a_5000_service_matrix_quickly() -> None:
    services = tuple(svc(f"svc-{i:04d}", Tier(i % 2)) for i in range(5000))
    faults = (
        MatrixFault(name="kill", fault=KILL),
        MatrixFault(name="slow", fault=DELAY),
        MatrixFault(name="fail", fault=replace(KILL, action=PodAction.POD_FAILURE)),
    )
    started = clock.perf_counter()
    plan = build_plan(gameday(catalog=Catalog(name="big", services=services), matrix=Matrix(faults=faults)))
    elapsed = clock.perf_counter() - started
    assert len(plan.steps) == 15000
    assert plan.stages[0].steps[0].name == "svc-0000-kill"
    assert elapsed < 20, f"planning took {elapsed:.1f}s (goal 2 s)"  # 10x the goal: catches a hang only


def test_a_matrix_selector_conflict_built_in_code_is_a_plan_error() -> None:
    conflicting = replace(KILL, selector=Selector(label_selectors={"app": "other"}))
    matrix = Matrix(faults=(MatrixFault(name="kill", fault=conflicting),), services=("cart",))
    with pytest.raises(PlanError, match=re.escape("matrix fault kill on service cart: labelSelectors.app")):
        build_plan(gameday(matrix=matrix))
