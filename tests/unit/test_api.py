"""The typed Python API: everything a user needs is importable from ``chaoslab``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import chaoslab
from chaoslab import (
    Delay,
    Experiment,
    Mode,
    NetworkAction,
    NetworkChaos,
    PodAction,
    PodChaos,
    Tier,
    build_manifest,
    build_plan,
    experiment_gameday,
    load_catalog,
    plan_to_dict,
)

CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "catalog.yaml"


@pytest.mark.parametrize("name", chaoslab.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(chaoslab, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = chaoslab.no_such_thing  # type: ignore[attr-defined]


def test_an_experiment_written_in_python_plans_and_renders() -> None:
    catalog = load_catalog(CATALOG)
    delay = NetworkChaos(action=NetworkAction.DELAY, mode=Mode.ONE, duration="30s",
                         delay=Delay(latency="200ms"))
    plan = build_plan(experiment_gameday(Experiment(name="payment-delay", service="payment", fault=delay),
                                         catalog))

    [step] = plan.steps
    assert (step.service.name, step.service.tier) == ("payment", Tier.CORE)
    assert plan_to_dict(plan)["stages"][0]["steps"][0]["action"] == "delay"
    manifest = build_manifest(name=step.name, service=step.service, fault=step.fault,
                              experiment="payment-delay")
    assert manifest["spec"]["duration"] == "30s"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "chaoslab"


def test_python_game_day_runs_non_core_first() -> None:
    catalog = load_catalog(CATALOG)
    kill = PodChaos(action=PodAction.POD_KILL, mode=Mode.ONE, duration="20s")
    experiments = tuple(Experiment(name=f"{svc}-kill", service=svc, fault=kill)
                        for svc in ("payment", "catalog", "cart", "recommendation"))
    gameday = chaoslab.GameDay(name="py", catalog=catalog, experiments=experiments)
    assert [s.service.name for s in build_plan(gameday).steps] == ["catalog", "recommendation",
                                                                    "payment", "cart"]


def test_importing_chaoslab_stays_light() -> None:
    """`chaoslab --help` must start fast: the package import pulls in no heavy library."""
    code = ("import sys, chaoslab; heavy = [m for m in ('yaml', 'requests', 'kubernetes', 'chaoslib', "
            "'rich', 'promql_parser') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
