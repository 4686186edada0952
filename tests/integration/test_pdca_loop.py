"""The PDCA loop end to end on the sandbox, as a user sees it:

1. the shop as it ships (one payment replica, no retry in cart): a payment pod-kill breaks
   the checkout, and `chaoslab checklist` shows an open item for payment, owned by its
   catalog owner, that says what to do;
2. the shop with the fix (experiments/sandbox-fixed.yaml): the same item is verified;
3. the weak shop again: the item is reopened.

The game day is the shipped catalog and payment pod-kill experiment (held 6 s instead of
20 s), judged by error-ratio SLOs with 5 s windows. The first run also carries a
Prometheus bearer token, which must not reach any file the run writes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.gameday import (
    SERVICES,
    cli_env,
    describe,
    error_ratio,
    poll,
    run_cli,
    service_ratio,
    slo_rules,
)
from tests.support.prometheus import instant
from tests.support.sandbox import REPO, RunningSandbox, sandbox_up

pytestmark = [pytest.mark.sandbox, pytest.mark.prometheus, pytest.mark.timeout(480)]

ITEM = "payment-pod-kill/payment/slo-broken"
TOKEN = "chaoslab-test-token-7f3a9c2e41d8"
RULES = yaml.safe_dump(slo_rules())


def _gameday(directory: Path) -> Path:
    (directory / "exp").mkdir(parents=True)
    (directory / "rules").mkdir()
    shutil.copy(REPO / "experiments" / "catalog.yaml", directory / "catalog.yaml")
    (directory / "rules" / "slo.yaml").write_text(RULES)
    experiment = yaml.safe_load((REPO / "experiments" / "exp" / "payment-pod-kill.yaml").read_text())
    experiment["spec"]["fault"]["podChaos"]["duration"] = "6s"
    (directory / "exp" / "payment-pod-kill.yaml").write_text(yaml.safe_dump(experiment))
    gameday = {
        "apiVersion": "chaoslab/v1",
        "kind": "GameDay",
        "metadata": {"name": "pdca-loop"},
        "spec": {
            "catalog": "catalog.yaml",
            "rules": ["rules/slo.yaml"],
            "experiments": ["exp/payment-pod-kill.yaml"],
            "recoveryTimeout": "40s",
        },
    }
    path = directory / "gameday.yaml"
    path.write_text(yaml.safe_dump(gameday))
    return path


def _healthy(box: RunningSandbox) -> None:
    """No fault, every replica ready, and every SLO's error ratio back at 0."""
    box.settle(timeout=60)
    exprs = [f"{error_ratio()} == 0", *(f"{service_ratio(name)} == 0" for name, _tier in SERVICES)]
    url = box.state.prometheus_url
    poll(lambda: all(instant(url, e) for e in exprs), timeout=90, what="every SLO back at 0", interval=0.25)


def _run(box: RunningSandbox, gameday: Path, reports: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        ["run", "--target", "sandbox", "--yes", "--reports", str(reports), str(gameday)],
        env=cli_env(CHAOSLAB_SANDBOX_DIR=str(box.state_dir), **env),
        cwd=gameday.parent,
    )


def _checklist(reports: Path, *args: str) -> list[dict[str, Any]]:
    result = run_cli(
        ["checklist", "--reports", str(reports), "--format", "json", *args], env=cli_env(), cwd=reports.parent
    )
    assert result.returncode == 0, describe(result)
    return list(json.loads(result.stdout))


def _latest_run(reports: Path) -> dict[str, Any]:
    return dict(json.loads(sorted(reports.glob("*/run.json"))[-1].read_text()))


def _item(items: list[dict[str, Any]], item_id: str = ITEM) -> dict[str, Any]:
    found = [i for i in items if i["id"] == item_id]
    assert found, f"{item_id} not in {[i['id'] for i in items]}"
    return found[0]


def test_weak_then_fixed_then_weak_opens_verifies_and_reopens_the_same_item(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    work = tmp_path_factory.mktemp("loop")
    gameday = _gameday(work / "gameday")
    reports = work / "reports"
    with sandbox_up(tmp_path_factory.mktemp("weak"), rules=RULES) as weak:
        _healthy(weak)
        first = _run(weak, gameday, reports, CHAOSLAB_PROMETHEUS_TOKEN=TOKEN)
        assert first.returncode == 1, describe(first)
        summary = [line for line in first.stdout.splitlines() if line.startswith("checklist: ")]
        assert len(summary) == 1, describe(first)
        assert " open " in summary[0]
        assert summary[0].endswith(f"(chaoslab checklist --reports {reports})")
        _check_first_run(reports)
        _check_no_secret_written(reports)

        with sandbox_up(
            tmp_path_factory.mktemp("fixed"), config=REPO / "experiments" / "sandbox-fixed.yaml", rules=RULES
        ) as fixed:
            _healthy(fixed)
            second = _run(fixed, gameday, reports)
        assert second.returncode == 0, describe(second)
        run = _latest_run(reports)
        assert ITEM in run["pdca"]["plan"][0]["rechecks"]
        assert _item(run["pdca"]["act"])["status"] == "verified"
        assert _item(_checklist(reports, "--status", "all"))["status"] == "verified"
        assert _checklist(reports, "--service", "payment") == []  # nothing open any more

        _healthy(weak)
        third = _run(weak, gameday, reports)
        assert third.returncode == 1, describe(third)
        reopened = _item(_checklist(reports))
        assert reopened["status"] == "reopened"
        assert len(reopened["runs"]) == 2  # the two runs that found it
        assert _item(_latest_run(reports)["checklist"])["status"] == "reopened"


def _check_first_run(reports: Path) -> None:
    item = _item(_checklist(reports))
    assert (item["status"], item["service"], item["owner"], item["kind"]) == (
        "open",
        "payment",
        "team-payments",
        "slo-broken",
    )
    assert "more than one payment replica" in item["text"]
    assert "PodDisruptionBudget" in item["text"]
    assert "cart" in item["text"]  # the service whose SLO broke
    assert item["evidence"]["value"] > item["evidence"]["threshold"]
    markdown = run_cli(["checklist", "--reports", str(reports), "--format", "md"], env=cli_env(), cwd=reports)
    assert "- [ ] **payment** (team-payments), slo-broken, open: " in markdown.stdout
    run = _latest_run(reports)
    pdca = run["pdca"]
    assert pdca["plan"][0]["owner"] == "team-payments"
    assert pdca["plan"][0]["rechecks"] == []
    kinds = [e["kind"] for e in pdca["do"][0]["events"]]
    for kind in ("baseline", "injected", "halt", "removed", "recovered", "pod-replaced"):
        assert kind in kinds, kinds
    injected = next(e for e in pdca["do"][0]["events"] if e["kind"] == "injected")
    assert len(injected["pods"]) == 1
    assert "payment" in injected["pods"][0]
    check = pdca["check"][0]
    assert check["verdict"] == "halted"
    assert check["halt_latency_s"] is not None
    assert check["halt_latency_s"] >= 0
    assert check["fault_window"]["start"] <= check["removed_at"] <= check["recovered_at"]
    cart = next(s for s in check["slis"] if s["alert"] == "CartErrors")
    assert cart["error"] is None
    assert any(v is not None and v > cart["threshold"] for _ts, v in cart["points"])  # the breach, charted
    assert "slo-broken" in [f["kind"] for f in check["findings"]]
    assert ITEM in [i["id"] for i in pdca["act"]]
    assert _item(run["checklist"])["status"] == "open"


def _check_no_secret_written(reports: Path) -> None:
    """The token went to Prometheus with every probe (as a Chaos Toolkit secret) and is in
    no file: run.json, report.md, the journals, the ledger."""
    files = [p for p in reports.rglob("*") if p.is_file()]
    assert any(p.name == "chaoslab.db" for p in files)
    leaks = [str(p) for p in files if TOKEN.encode() in p.read_bytes()]
    assert leaks == []
    journal = json.loads(next(reports.glob("*/journals/*.json")).read_text())
    assert journal["experiment"]["secrets"] == {"prometheus": {"prometheus_token": "***"}}
