"""`chaoslab checklist` and `chaoslab checklist set` as a user runs them (subprocess), on a
ledger that runs wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chaoslab.pdca.ledger import GroupOutcome, Judgement, open_ledger
from chaoslab.pdca_model import Finding, FindingKind
from tests.support.gameday import cli_env

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
SLO = "payment-pod-kill/payment/slo-broken"
GAP = "cart-delay/cart/alerting-gap/CartLatency"


def chaoslab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoslab", *args],
        cwd=cwd,
        env=cli_env(),
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


def checklist(reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``chaoslab checklist ARGS --reports REPORTS``."""
    return chaoslab("checklist", *args, "--reports", str(reports), cwd=reports.parent)


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    slo = Finding(
        kind=FindingKind.SLO_BROKEN,
        text="Run more than one payment replica.",
        experiment="payment-pod-kill",
        service="payment",
        target="payment",
        owner="team-payments",
        alert="CartErrors",
    )
    gap = Finding(
        kind=FindingKind.ALERTING_GAP,
        text="CartLatency never fired.",
        experiment="cart-delay",
        service="cart",
        target="cart",
        owner="team-checkout",
        alert="CartLatency",
    )
    with open_ledger(folder) as ledger:
        ledger.record_run(
            run_id="r1",
            at=T0,
            outcomes=[
                GroupOutcome(experiment="payment-pod-kill", target="payment", judgement=Judgement.FAILED,
                             findings=(slo,)),
                GroupOutcome(experiment="cart-delay", target="cart", judgement=Judgement.FAILED,
                             findings=(gap,)),
            ],
        )
        ledger.record_run(
            run_id="r2",
            at=T0 + timedelta(hours=1),
            outcomes=[GroupOutcome(experiment="cart-delay", target="cart", judgement=Judgement.HELD)],
        )
    return folder


def test_default_listing_is_open_and_reopened_items_with_their_text(reports: Path) -> None:
    result = checklist(reports)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"1 item (open, reopened) in {reports}"
    assert lines[1].split() == ["status", "service", "owner", "kind", "runs", "id"]
    assert lines[2].split() == ["open", "payment", "team-payments", "slo-broken", "1", SLO]
    assert lines[3].strip() == "Run more than one payment replica."


def test_json_is_the_list_of_items_of_the_contract(reports: Path) -> None:
    result = checklist(reports, "--status", "all", "--format", "json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert [(i["id"], i["status"]) for i in items] == [(SLO, "open"), (GAP, "verified")]
    assert set(items[0]) == {
        "id", "experiment", "service", "owner", "kind", "alert", "text", "status", "note",
        "first_seen", "last_seen", "runs", "evidence",
    }  # fmt: skip
    assert items[0]["first_seen"] == "2026-12-06T10:00:00.000Z"
    assert items[0]["runs"] == ["r1"]


def test_markdown_is_ready_for_an_issue_tracker(reports: Path) -> None:
    result = checklist(reports, "--status", "all", "--format", "md")
    assert result.stdout.splitlines() == [
        f"- [ ] **payment** (team-payments), slo-broken, open: Run more than one payment replica. `{SLO}`",
        f"- [x] **cart** (team-checkout), alerting-gap, verified: CartLatency never fired. `{GAP}`",
    ]


def test_filters_by_service_and_status(reports: Path) -> None:
    only_cart = checklist(reports, "--service", "cart", "--status", "verified", "--format", "json")
    assert [i["id"] for i in json.loads(only_cart.stdout)] == [GAP]
    none = checklist(reports, "--service", "cart")
    assert none.stdout.splitlines() == [f"0 items of cart (open, reopened) in {reports}"]


def test_set_done_with_a_note_then_listed_as_done(reports: Path) -> None:
    result = checklist(reports, "set", SLO, "--status", "done", "--note", "two replicas")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{SLO}: done (two replicas)"
    listed = checklist(reports, "--status", "done", "--format", "json")
    (item,) = json.loads(listed.stdout)
    assert (item["status"], item["note"]) == ("done", "two replicas")


def test_reports_from_the_environment(reports: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaoslab", "checklist", "--format", "json"],
        cwd=REPO,
        env=cli_env(CHAOSLAB_REPORTS_DIR=str(reports)),
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert [i["id"] for i in json.loads(result.stdout)] == [SLO]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "payment-pod-kill/payment/slo-brokn", "--status", "done"], "no checklist item"),
        (["set", SLO, "--status", "verified"], "invalid choice"),
        (["set", SLO], "--status"),
        (["--status", "closed"], "invalid choice"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(reports: Path, args: list[str], message: str) -> None:
    result = checklist(reports, *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_id_names_the_ledger_and_suggests(reports: Path) -> None:
    result = checklist(reports, "set", "payment-pod-kill/payment/slo-brokn", "--status", "done")
    assert result.stderr.strip() == (
        f"chaoslab: {reports / 'chaoslab.db'}: ID: no checklist item 'payment-pod-kill/payment/slo-brokn' "
        f"(did you mean '{SLO}'?)"
    )


def test_no_ledger_yet(tmp_path: Path) -> None:
    none = tmp_path / "none"
    listed = checklist(none)
    assert (listed.returncode, listed.stdout.strip()) == (0, f"0 items (open, reopened) in {none}")
    assert not none.exists()  # listing creates nothing
    setting = checklist(none, "set", SLO, "--status", "done")
    assert setting.returncode == 2
    assert "no run has written a checklist" in setting.stderr


def test_help_has_examples_and_says_what_is_listed_by_default(tmp_path: Path) -> None:
    result = chaoslab("checklist", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "the open and reopened items are listed" in result.stdout
    assert "chaoslab checklist set payment-pod-kill/payment/slo-broken --status done" in result.stdout
    assert "exit codes:" in result.stdout
    setter = chaoslab("checklist", "set", "--help", cwd=tmp_path)
    assert "accepted" in setter.stdout
