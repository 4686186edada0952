"""Pod readiness: the `readiness` switches in game day and experiment files, and what a
comparison of two views of a service's pods finds (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoslab.loader import load_experiment, load_gameday
from chaoslab.model import PodState
from chaoslab.plan import build_plan
from chaoslab.runner.readiness import compare, describe_pod, readiness_enabled
from tests.support.files import assert_rejected, experiment_doc, gameday_doc, pod, shop, write


def _pod(name: str, *, ready: bool = True, phase: str = "Running", restarts: int = 0,
         reason: str = "") -> PodState:
    return PodState(name=name, namespace="shop", phase=phase, ready=ready, restarts=restarts, reason=reason)


def _files(tmp_path: Path, *, experiment: bool | None, gameday: bool | None) -> Path:
    shop(tmp_path)
    extra = {} if experiment is None else {"readiness": experiment}
    write(tmp_path / "exp" / "payment-kill.yaml", experiment_doc("payment-kill", fault=pod(), **extra))
    write(tmp_path / "exp" / "catalog-delay.yaml", experiment_doc("catalog-delay", service="catalog"))
    spec = {} if gameday is None else {"readiness": gameday}
    return write(tmp_path / "gameday.yaml", gameday_doc(**spec))


@pytest.mark.parametrize(
    ("experiment", "gameday", "payment", "catalog"),
    [
        (None, None, True, True),  # on by default
        (None, False, False, False),
        (False, None, False, True),  # the experiment's own setting wins
        (True, False, True, False),
    ],
)
def test_readiness_is_the_experiments_setting_else_the_gamedays(
    tmp_path: Path, experiment: bool | None, gameday: bool | None, payment: bool, catalog: bool
) -> None:
    day = load_gameday(_files(tmp_path, experiment=experiment, gameday=gameday))
    steps = {s.name: s for s in build_plan(day).steps}
    assert readiness_enabled(steps["payment-kill"], day) is payment
    assert readiness_enabled(steps["catalog-delay"], day) is catalog


def test_a_lone_experiment_may_turn_readiness_off(tmp_path: Path) -> None:
    shop(tmp_path)
    path = write(tmp_path / "exp.yaml", experiment_doc(readiness=False))
    assert load_experiment(path).readiness is False


@pytest.mark.parametrize("kind", ["gameday", "experiment"])
def test_readiness_must_be_a_boolean(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    shop(tmp_path)
    if kind == "gameday":
        write(tmp_path / "exp" / "e.yaml", experiment_doc())
        path = write(tmp_path / "gameday.yaml", gameday_doc(readiness="yes"))
    else:
        path = write(tmp_path / "exp.yaml", experiment_doc(readiness="sometimes"))
    assert_rejected(capsys, path, "spec.readiness", "must be true or false")


def test_compare_finds_restarts_replacements_and_new_pods() -> None:
    before = [_pod("a"), _pod("b"), _pod("c", restarts=2)]
    after = [_pod("a", restarts=1), _pod("c", restarts=2), _pod("d", ready=False)]
    report = compare(before, after)
    assert report.restarted == ("shop/a",)
    assert report.replaced == ("shop/b",)
    assert report.added == ("shop/d",)
    assert report.before == tuple(before)
    assert report.after == tuple(after)


@pytest.mark.parametrize(
    ("state", "text"),
    [
        (_pod("a", ready=False, reason="app: CrashLoopBackOff"),
         "shop/a is Running but not Ready (app: CrashLoopBackOff)"),
        (_pod("a", ready=False, phase="Pending"), "shop/a is Pending, not Ready"),
    ],
)
def test_a_pod_that_does_not_serve_is_named_with_why(state: PodState, text: str) -> None:
    assert not state.serving
    assert describe_pod(state) == text
