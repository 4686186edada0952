"""`chaoslab validate` and `chaoslab plan` end to end: the sample files, several files
at once, the plan table and JSON, help texts, and the real console entry points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.files import (
    EXPERIMENTS_DIR,
    REPO_ROOT,
    experiment_doc,
    gameday_doc,
    network,
    pod,
    run_cli,
    shop,
    write,
)


def _gameday(base: Path, **spec: object) -> Path:
    shop(base)
    write(base / "exp" / "1-payment.yaml", experiment_doc("payment-kill", fault=pod()))
    write(
        base / "exp" / "2-recommendation.yaml",
        experiment_doc("recommendation-delay", service="recommendation", fault=network(mode="all")),
    )
    return write(base / "gameday.yaml", gameday_doc("shop-test", **spec))


def test_the_sample_files_validate(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [
        EXPERIMENTS_DIR / "catalog.yaml",
        EXPERIMENTS_DIR / "gameday.yaml",
        *sorted((EXPERIMENTS_DIR / "exp").glob("*.yaml")),
    ]
    code, out, err = run_cli(capsys, "validate", *paths)
    assert (code, err) == (0, "")
    assert f"ok  {EXPERIMENTS_DIR / 'gameday.yaml'} (GameDay shop-weekly)" in out.splitlines()
    assert len(out.splitlines()) == len(paths)


def test_the_sample_gameday_plans_non_core_first(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "plan", "--format", "json", EXPERIMENTS_DIR / "gameday.yaml")
    plan = json.loads(out)
    assert code == 0
    assert plan["gameday"] == "shop-weekly"
    assert [stage["tier"] for stage in plan["stages"]] == ["non-core", "core"]
    assert all(step["refused"] is None for stage in plan["stages"] for step in stage["steps"])


def test_validate_reports_every_file_and_fails_if_one_is_bad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(shop(tmp_path) / "good.yaml", experiment_doc("good"))
    bad = write(tmp_path / "bad.yaml", experiment_doc("bad", fault=network(duration=None)))
    code, out, err = run_cli(capsys, "validate", bad, good, tmp_path / "catalog.yaml")
    assert code == 2
    assert out.splitlines() == [
        f"ok  {good} (Experiment good)",
        f"ok  {tmp_path / 'catalog.yaml'} (Catalog shop)",
    ]
    assert err.startswith(f"{bad}:")
    assert "spec.fault.networkChaos.duration: is required" in err


def test_plan_json_has_the_contract_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _gameday(
        tmp_path,
        blastRadius=[{"mode": "one"}, {"mode": "all"}],
        matrix={"services": ["cart"], "faults": [{"name": "slow", **network()}]},
    )
    code, out, _ = run_cli(capsys, "plan", "--format", "json", path)
    plan = json.loads(out)
    assert code == 0
    assert plan["gameday"] == "shop-test"
    steps = {stage["tier"]: [s["step"] for s in stage["steps"]] for stage in plan["stages"]}
    assert steps == {
        "non-core": ["recommendation-delay-r1", "recommendation-delay-r2"],
        "core": ["payment-kill-r1", "payment-kill-r2", "cart-slow-r1", "cart-slow-r2"],
    }
    contract = {"experiment", "service", "namespace", "kind", "action", "mode", "value", "duration"}
    for stage in plan["stages"]:
        for step in stage["steps"]:
            assert contract <= step.keys()
            assert step["refused"] is None
    assert plan["excluded"] == []


def test_plan_table_is_for_people(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _gameday(
        tmp_path,
        window={"days": ["sat"], "from": "10:00", "to": "12:00", "timezone": "UTC"},
    )
    code, out, _ = run_cli(capsys, "plan", path)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("game day shop-test: 2 steps in 2 stages; gate stop; ")
    assert "the run window sat 10:00-12:00 UTC" in lines[0]
    assert lines[1].split() == ["stage", "#", "step", "service", "fault", "mode", "duration", "refused"]
    assert lines[2].split() == [
        "non-core",
        "1",
        "recommendation-delay",
        "recommendation",
        "(shop)",
        "NetworkChaos/delay",
        "all",
        "20s",
    ]
    assert lines[3].split() == [
        "core",
        "2",
        "payment-kill",
        "payment",
        "(shop)",
        "PodChaos/pod-kill",
        "one",
        "20s",
    ]


def test_plan_of_a_single_experiment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        shop(tmp_path) / "exp" / "kill.yaml", experiment_doc("payment-kill", fault=pod(mode="fixed", value=2))
    )
    code, out, _ = run_cli(capsys, "plan", "--format", "json", path)
    assert code == 0
    assert json.loads(out)["stages"] == [
        {
            "tier": "core",
            "steps": [
                {
                    "experiment": "payment-kill",
                    "service": "payment",
                    "namespace": "shop",
                    "kind": "PodChaos",
                    "action": "pod-kill",
                    "mode": "fixed",
                    "value": "2",
                    "duration": "20s",
                    "step": "payment-kill",
                    "level": 0,
                    "refused": None,
                }
            ],
        }
    ]


def test_plan_refuses_a_catalog_and_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = shop(tmp_path) / "catalog.yaml"
    code, _, err = run_cli(capsys, "plan", catalog)
    assert code == 2
    assert f"{catalog}:2: kind: a Catalog has no plan" in err
    bad = _gameday(tmp_path, gate="maybe")
    code, _, err = run_cli(capsys, "plan", bad)
    assert code == 2
    assert "spec.gate: must be one of stop, continue" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_help_has_a_description_and_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, command, "--help")
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "examples:" in out
    assert f"chaoslab {command} experiments/" in out
    assert "exit codes:" in out


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def test_python_m_chaoslab_validate_bad_input_has_no_traceback(tmp_path: Path) -> None:
    bad = write(shop(tmp_path) / "bad.yaml", experiment_doc("bad", fault=network(delay={"latency": "fast"})))
    done = subprocess.run(
        [sys.executable, "-m", "chaoslab", "validate", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"{bad}:")
    assert "spec.fault.networkChaos.delay.latency" in done.stderr
    assert "Traceback" not in done.stderr


def test_console_script_plans(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "chaoslab"
    command = [str(script)] if script.exists() else [shutil.which("chaoslab") or "chaoslab"]
    path = _gameday(tmp_path)
    done = subprocess.run(
        [*command, "plan", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["gameday"] == "shop-test"
