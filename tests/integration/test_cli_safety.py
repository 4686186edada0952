"""A game day whose own safety rules refuse one of its explicit steps is invalid input:
`validate`, `plan` and `run` exit 2 with one line naming the file, the field, the step and
the rule, before anything is injected. A matrix leaves services outside the allowed
namespaces out, and `plan` says which and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.files import (
    SHOP_SERVICES,
    experiment_doc,
    gameday_doc,
    network,
    pod,
    run_cli,
    shop,
    write,
)

LEDGER = {
    "name": "ledger",
    "namespace": "bank",
    "tier": "core",
    "selector": {"labelSelectors": {"app": "ledger"}},
}


def _base(tmp_path: Path) -> Path:
    base = shop(tmp_path, [*SHOP_SERVICES, LEDGER])
    write(base / "exp" / "1-payment.yaml", experiment_doc("payment-kill", fault=pod()))
    write(base / "exp" / "2-ledger.yaml", experiment_doc("ledger-delay", service="ledger", fault=network()))
    return base


COMMANDS = [("validate",), ("plan",), ("run", "--yes", "--target", "sandbox")]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_an_explicit_step_outside_the_allowed_namespaces_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    path = write(
        _base(tmp_path) / "gameday.yaml", gameday_doc("guarded", safety={"allowNamespaces": ["shop"]})
    )
    code, out, err = run_cli(capsys, *command, path)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert f"{path}: spec.experiments: step ledger-delay (exp/2-ledger.yaml) is refused" in err
    assert "namespace bank is not in safety.allowNamespaces (shop)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_ramp_level_over_max_percent_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    base = shop(tmp_path)
    write(base / "exp" / "kill.yaml", experiment_doc("payment-kill", fault=pod()))
    ramp = [{"mode": "one"}, {"mode": "fixed-percent", "value": "50"}]
    path = write(base / "gameday.yaml", gameday_doc("ramped", safety={"maxPercent": 40}, blastRadius=ramp))
    code, _, err = run_cli(capsys, *command, path)
    assert code == 2
    assert f"{path}: spec.blastRadius[1]: step payment-kill-r2 (exp/kill.yaml) is refused" in err
    assert "over safety.maxPercent 40%" in err


def test_a_matrix_leaves_out_services_outside_the_allowed_namespaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = shop(tmp_path, [*SHOP_SERVICES, LEDGER])
    matrix = {"services": ["cart", "ledger"], "faults": [{"name": "slow", **network()}]}
    path = write(
        base / "gameday.yaml",
        gameday_doc("matrix", experiments=(), matrix=matrix, safety={"allowNamespaces": ["shop"]}),
    )
    assert run_cli(capsys, "validate", path)[0] == 0
    code, out, _ = run_cli(capsys, "plan", "--format", "json", path)
    plan = json.loads(out)
    assert code == 0
    assert [s["step"] for stage in plan["stages"] for s in stage["steps"]] == ["cart-slow"]
    assert plan["excluded"] == ["ledger: namespace bank is not in safety.allowNamespaces (shop)"]
    code, out, _ = run_cli(capsys, "plan", path)
    assert code == 0
    assert out.splitlines()[-1] == (
        "left out of the matrix: ledger: namespace bank is not in safety.allowNamespaces (shop)"
    )


def test_a_matrix_fault_over_max_percent_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = {
        "services": ["cart"],
        "faults": [{"name": "fast", **pod()}, {"name": "wide", **network(mode="all")}],
    }
    path = write(
        shop(tmp_path) / "gameday.yaml",
        gameday_doc("matrix", experiments=(), matrix=matrix, safety={"maxPercent": 50}),
    )
    code, _, err = run_cli(capsys, "plan", path)
    assert code == 2
    assert f"{path}: spec.matrix.faults[1]: step cart-wide is refused" in err
