"""The checklist ledger: lifecycle across runs, set by hand, schema versions, and writes that
are never lost (8 writers at once; a writer killed with SIGKILL)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chaoslab.errors import InvalidInputError, LedgerError
from chaoslab.pdca.ledger import (
    DB_FILE,
    MIGRATIONS,
    GroupOutcome,
    Judgement,
    Ledger,
    after_found,
    after_held,
    open_ledger,
)
from chaoslab.pdca_model import Finding, FindingKind, ItemStatus

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def finding(
    kind: FindingKind = FindingKind.SLO_BROKEN,
    *,
    alert: str | None = "CartErrors",
    experiment: str = "payment-pod-kill",
    service: str = "payment",
    text: str = "fix it.",
) -> Finding:
    return Finding(
        kind=kind,
        text=text,
        experiment=experiment,
        service=service,
        target="payment",
        owner="team-payments",
        alert=alert,
        evidence={"value": 0.31},
    )


def failed(*findings: Finding) -> GroupOutcome:
    return GroupOutcome(
        experiment="payment-pod-kill",
        target="payment",
        judgement=Judgement.FAILED,
        findings=findings or (finding(),),
    )


HELD = GroupOutcome(experiment="payment-pod-kill", target="payment", judgement=Judgement.HELD)
ERROR = GroupOutcome(experiment="payment-pod-kill", target="payment", judgement=Judgement.INCONCLUSIVE)
ITEM = "payment-pod-kill/payment/slo-broken"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return open_ledger(tmp_path)


def record(ledger: Ledger, run: int, *outcomes: GroupOutcome) -> list[str]:
    items = ledger.record_run(run_id=f"run-{run}", at=T0 + timedelta(minutes=run), outcomes=outcomes)
    return [f"{i.id}={i.status.value}" for i in items]


@pytest.mark.parametrize(
    ("before", "found", "held"),
    [
        (None, ItemStatus.OPEN, None),
        (ItemStatus.OPEN, ItemStatus.OPEN, ItemStatus.VERIFIED),
        (ItemStatus.VERIFIED, ItemStatus.REOPENED, ItemStatus.VERIFIED),
        (ItemStatus.REOPENED, ItemStatus.REOPENED, ItemStatus.VERIFIED),
        (ItemStatus.DONE, ItemStatus.REOPENED, ItemStatus.VERIFIED),
        (ItemStatus.ACCEPTED, ItemStatus.ACCEPTED, ItemStatus.ACCEPTED),
    ],
)
def test_lifecycle_table(before: ItemStatus | None, found: ItemStatus, held: ItemStatus | None) -> None:
    assert after_found(before) is found
    if before is not None:
        assert after_held(before) is held


def test_open_verified_reopened_across_runs(ledger: Ledger) -> None:
    assert record(ledger, 1, failed()) == [f"{ITEM}=open"]
    assert record(ledger, 2, failed()) == [f"{ITEM}=open"]
    assert record(ledger, 3, HELD) == [f"{ITEM}=verified"]
    assert record(ledger, 4, HELD) == []  # verified stays verified, nothing re-checked
    assert record(ledger, 5, failed()) == [f"{ITEM}=reopened"]
    item = ledger.get(ITEM)
    assert item is not None
    assert item.runs == ("run-1", "run-2", "run-5")
    assert (item.first_seen, item.last_seen) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=5))
    assert (item.owner, item.service, item.alert, item.evidence) == (
        "team-payments",
        "payment",
        "CartErrors",
        {"value": 0.31},
    )


def test_skipped_refused_and_error_steps_verify_and_reopen_nothing(ledger: Ledger) -> None:
    record(ledger, 1, failed())
    assert record(ledger, 2, ERROR) == []
    assert (
        record(
            ledger,
            3,
            GroupOutcome(
                experiment="payment-pod-kill",
                target="payment",
                judgement=Judgement.INCONCLUSIVE,
                findings=(finding(),),
            ),
        )
        == []
    )
    assert ledger.get(ITEM).status is ItemStatus.OPEN  # type: ignore[union-attr]
    # An error step only ever records that the experiment itself is wrong.
    wrong = finding(FindingKind.INJECTION_FAILED, alert=None)
    assert record(
        ledger,
        4,
        GroupOutcome(
            experiment="payment-pod-kill",
            target="payment",
            judgement=Judgement.INCONCLUSIVE,
            findings=(wrong,),
        ),
    ) == ["payment-pod-kill/payment/injection-failed=open"]


def test_a_held_run_verifies_only_what_it_did_not_find_again(ledger: Ledger) -> None:
    slow = finding(FindingKind.SLOW_RECOVERY, alert=None)
    record(ledger, 1, failed(finding(), slow))
    held_but_slow = GroupOutcome(
        experiment="payment-pod-kill", target="payment", judgement=Judgement.HELD, findings=(slow,)
    )
    assert sorted(record(ledger, 2, held_but_slow)) == [
        "payment-pod-kill/payment/slo-broken=verified",
        "payment-pod-kill/payment/slow-recovery=open",
    ]


def test_other_experiments_are_not_verified(ledger: Ledger) -> None:
    record(ledger, 1, failed())
    other = GroupOutcome(experiment="cart-delay", target="cart", judgement=Judgement.HELD)
    assert record(ledger, 2, other) == []
    assert ledger.get(ITEM).status is ItemStatus.OPEN  # type: ignore[union-attr]


def test_done_by_hand_then_verified_or_reopened(ledger: Ledger) -> None:
    record(ledger, 1, failed())
    done = ledger.set_status(ITEM, ItemStatus.DONE, note="two replicas since v2.3", at=T0)
    assert (done.status, done.note) == (ItemStatus.DONE, "two replicas since v2.3")
    assert ledger.rechecks(experiment="payment-pod-kill", target="payment") == [ITEM]
    assert record(ledger, 2, HELD) == [f"{ITEM}=verified"]
    ledger.set_status(ITEM, ItemStatus.DONE)
    assert record(ledger, 3, failed()) == [f"{ITEM}=reopened"]
    assert ledger.get(ITEM).note == "two replicas since v2.3"  # type: ignore[union-attr]


def test_accepted_is_a_known_risk_that_runs_do_not_change(ledger: Ledger) -> None:
    record(ledger, 1, failed())
    ledger.set_status(ITEM, ItemStatus.ACCEPTED, note="one replica until Q3")
    assert record(ledger, 2, failed()) == [f"{ITEM}=accepted"]
    assert record(ledger, 3, HELD) == []
    assert ledger.rechecks(experiment="payment-pod-kill", target="payment") == []


def test_set_refuses_unknown_ids_and_statuses_runs_own(ledger: Ledger) -> None:
    record(ledger, 1, failed())
    with pytest.raises(InvalidInputError, match=r"no checklist item 'payment-pod-kill/\S+' \(did you mean"):
        ledger.set_status("payment-pod-kill/payment/slo-brokn", ItemStatus.DONE)
    with pytest.raises(InvalidInputError, match="set by runs"):
        ledger.set_status(ITEM, ItemStatus.VERIFIED)


def test_listing_filters_by_status_and_service_reopened_first(ledger: Ledger) -> None:
    record(ledger, 1, failed(finding(), finding(FindingKind.ALERTING_GAP, service="cart")))
    record(ledger, 2, HELD)
    record(ledger, 3, failed(finding()))
    assert [(i.id, i.status.value) for i in ledger.items()] == [
        (ITEM, "reopened"),
        ("payment-pod-kill/cart/alerting-gap/CartErrors", "verified"),
    ]
    assert [i.id for i in ledger.items(statuses={ItemStatus.VERIFIED})] == [
        "payment-pod-kill/cart/alerting-gap/CartErrors"
    ]
    assert [i.service for i in ledger.items(service="payment")] == ["payment"]


def test_secrets_are_masked_before_they_are_stored(tmp_path: Path) -> None:
    token = "s3cr3t-token-value"
    with open_ledger(tmp_path, secrets=[token]) as ledger:
        leaky = finding(text=f"Prometheus answered 401 for Authorization: Bearer {token}.")
        record(ledger, 1, failed(leaky))
        ledger.set_status(ITEM, ItemStatus.ACCEPTED, note=f"token {token} rotated")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob(f"{DB_FILE}*"))
    assert token.encode() not in raw
    with open_ledger(tmp_path) as ledger:
        item = ledger.get(ITEM)
    assert item is not None
    assert "***" in item.text
    assert item.note == "token *** rotated"


def test_a_newer_schema_migrates_forward_and_an_older_chaoslab_refuses_it(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        record(ledger, 1, failed())
        assert ledger.version == len(MIGRATIONS)
    newer = (*MIGRATIONS, ("ALTER TABLE items ADD COLUMN ticket TEXT",))
    with Ledger(tmp_path / DB_FILE, migrations=newer) as ledger:
        assert ledger.version == len(MIGRATIONS) + 1
        assert ledger.get(ITEM) is not None  # the data survives the migration
    with pytest.raises(LedgerError, match="schema version 2; this chaoslab knows up to 1"):
        open_ledger(tmp_path)


def test_a_file_that_is_not_a_database_is_a_ledger_error(tmp_path: Path) -> None:
    (tmp_path / DB_FILE).write_text("not sqlite at all, " * 100)
    with pytest.raises(LedgerError, match="cannot open the checklist ledger"):
        open_ledger(tmp_path)


# --- never lose a write -----------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from chaoslab.pdca.ledger import GroupOutcome, Judgement, open_ledger
    from chaoslab.pdca_model import Finding, FindingKind

    reports, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    with open_ledger(reports) as ledger:
        n = 0
        while count < 0 or n < count:
            own = Finding(kind=FindingKind.BASELINE_NOT_MET, text="t.", experiment=f"exp-{name}",
                          service="svc", target="svc", alert=f"A{n}")
            shared = Finding(kind=FindingKind.SLO_BROKEN, text="t.", experiment="shared", service="svc",
                             target="svc")
            outcomes = [GroupOutcome(experiment=f"exp-{name}", target="svc", judgement=Judgement.FAILED,
                                     findings=(own,)),
                        GroupOutcome(experiment="shared", target="svc", judgement=Judgement.FAILED,
                                     findings=(shared,))]
            ledger.record_run(run_id=f"{name}-{n}", at=datetime.now(UTC), outcomes=outcomes)
            print(f"exp-{name}/svc/baseline-not-met/A{n}", flush=True)
            n += 1
""")


def _writer(reports: Path, name: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(reports), name, str(count)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_eight_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    per_writer = 15
    writers = [_writer(tmp_path, f"w{i}", per_writer) for i in range(8)]
    outputs = [w.communicate(timeout=240) for w in writers]
    assert [w.returncode for w in writers] == [0] * 8, [err for _, err in outputs]
    with open_ledger(tmp_path) as ledger:
        ids = {item.id for item in ledger.items()}
        shared = ledger.get("shared/svc/slo-broken")
    expected = {f"exp-w{i}/svc/baseline-not-met/A{n}" for i in range(8) for n in range(per_writer)}
    assert expected <= ids
    assert len(ids) == len(expected) + 1
    assert shared is not None
    assert sorted(shared.runs) == sorted(f"w{i}-{n}" for i in range(8) for n in range(per_writer))


def test_a_writer_killed_mid_write_leaves_a_ledger_with_every_committed_item(tmp_path: Path) -> None:
    writer = _writer(tmp_path, "k", -1)
    committed: list[str] = []
    try:
        assert writer.stdout is not None
        deadline = time.monotonic() + 120
        while len(committed) < 25 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            committed.append(line.strip())
        assert len(committed) >= 25, writer.stderr.read() if writer.stderr else ""
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    with sqlite3.connect(tmp_path / DB_FILE) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with open_ledger(tmp_path) as ledger:
        ids = {item.id for item in ledger.items()}
    assert set(committed) <= ids
