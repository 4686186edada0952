"""run.json, JUnit XML and report.md, from a RunResult."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chaoslab.model import (
    ChaosKind,
    HaltRecord,
    HypothesisCheck,
    Mode,
    RunResult,
    StepResult,
    Tier,
    Verdict,
)
from chaoslab.report.junit import render_junit, write_junit
from chaoslab.report.markdown import render_markdown, write_markdown
from chaoslab.report.record import format_time, run_to_dict, write_run

T0 = datetime(2026, 11, 27, 10, 15, 0, tzinfo=UTC)
STEP_KEYS = {
    "experiment",
    "service",
    "tier",
    "kind",
    "action",
    "mode",
    "value",
    "verdict",
    "reason",
    "started_at",
    "ended_at",
    "halt",
    "recovery_s",
    "hypothesis",
    "journal",
    "guards",
    "failed_attempts",
    "pods",  # added with pod readiness (None when it was not checked)
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sample_run() -> RunResult:
    check = HypothesisCheck(
        alert="CartHighErrorRate",
        service="cart",
        met=False,
        state="pending",
        condition_true=True,
        value=0.31,
        threshold=0.05,
        margin=-0.26,
        reason="condition true: 0.31 > 0.05",
        at=at(31),
    )
    steps = (
        StepResult(
            step="catalog-delay",
            experiment="catalog-delay",
            service="catalog",
            tier=Tier.NON_CORE,
            kind=ChaosKind.NETWORK_CHAOS,
            action="delay",
            mode=Mode.ALL,
            verdict=Verdict.HELD,
            reason="hypothesis held during the fault; recovered in 0.2s",
            started_at=at(0),
            ended_at=at(21),
            recovery_s=0.2345,
            journal="journals/catalog-delay.json",
        ),
        StepResult(
            step="payment-pod-kill",
            experiment="payment-pod-kill",
            service="payment",
            tier=Tier.CORE,
            kind=ChaosKind.POD_CHAOS,
            action="pod-kill",
            mode=Mode.FIXED_PERCENT,
            value="50",
            verdict=Verdict.HALTED,
            reason='halted: CartHighErrorRate (cart) <breach> & "quotes"',
            started_at=at(22),
            ended_at=at(45),
            halt=HaltRecord(
                condition="CartHighErrorRate (cart)",
                breach_at=at(30.5),
                detected_at=at(31),
                removed_at=at(31.2),
            ),
            recovery_s=12.0,
            before=(),
            during=(check,),
            journal="journals/payment-pod-kill.json",
        ),
        StepResult(
            step="cart-delay",
            experiment="cart-delay",
            service="cart",
            tier=Tier.CORE,
            kind=ChaosKind.NETWORK_CHAOS,
            action="delay",
            mode=Mode.ONE,
            verdict=Verdict.SKIPPED,
            reason="gate stop: step payment-pod-kill halted",
        ),
        StepResult(
            step="frontend-kill",
            experiment="frontend-kill",
            service="frontend",
            tier=Tier.CORE,
            kind=ChaosKind.POD_CHAOS,
            action="pod-kill",
            mode=Mode.ONE,
            verdict=Verdict.ERROR,
            reason="interrupted by SIGTERM",
        ),
    )
    return RunResult(
        run_id="20261127T101500Z-3f2a",
        gameday="shop-weekly",
        target="sandbox",
        started_at=T0,
        ended_at=at(60),
        verdict=Verdict.ERROR,
        steps=steps,
    )


def test_timestamps_are_iso_8601_utc() -> None:
    assert format_time(T0) == "2026-11-27T10:15:00.000Z"
    local = datetime(2026, 11, 27, 18, 15, tzinfo=UTC).astimezone()
    assert format_time(local) == "2026-11-27T18:15:00.000Z"
    assert format_time(None) is None


def test_run_json_follows_the_contract(tmp_path: Path) -> None:
    path = write_run(sample_run(), tmp_path / "20261127T101500Z-3f2a")
    doc = json.loads(path.read_text())
    assert set(doc) == {"run_id", "gameday", "target", "started_at", "ended_at", "verdict", "steps",
                        "interrupted", "remaining", "pdca", "checklist",
                        "silences", "trace_id"}
    assert doc["interrupted"] is None
    assert doc["run_id"] == "20261127T101500Z-3f2a"
    assert doc["verdict"] == "error"
    assert [set(s) for s in doc["steps"]] == [STEP_KEYS] * 4
    held, halted, skipped, _error = doc["steps"]
    assert held["halt"] is None
    assert held["recovery_s"] == 0.234
    assert held["tier"] == "non-core"
    assert held["kind"] == "NetworkChaos"
    assert halted["halt"] == {
        "condition": "CartHighErrorRate (cart)",
        "breach_at": "2026-11-27T10:15:30.500Z",
        "detected_at": "2026-11-27T10:15:31.000Z",
        "removed_at": "2026-11-27T10:15:31.200Z",
    }
    assert halted["value"] == "50"
    assert halted["mode"] == "fixed-percent"
    assert set(halted["hypothesis"]) == {"before", "during", "after"}
    assert halted["hypothesis"]["during"][0]["alert"] == "CartHighErrorRate"
    assert halted["hypothesis"]["during"][0]["met"] is False
    assert skipped["started_at"] is None
    assert skipped["journal"] is None
    for stamp in (doc["started_at"], halted["started_at"], halted["halt"]["removed_at"]):
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0)


def test_run_json_is_written_atomically(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    write_run(sample_run(), directory)
    assert sorted(p.name for p in directory.iterdir()) == ["run.json"]


@pytest.mark.parametrize(
    ("name", "child", "kind"),
    [
        ("catalog-delay", None, None),
        ("payment-pod-kill", "failure", "halted"),
        ("cart-delay", "skipped", None),
        ("frontend-kill", "error", "error"),
    ],
)
def test_junit_has_one_test_case_per_step(name: str, child: str | None, kind: str | None) -> None:
    root = ET.fromstring(render_junit(sample_run()))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "4"
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "1", "1")
    case = next(c for c in suite.iter("testcase") if c.get("name") == name)
    assert case.get("classname", "").startswith("shop-weekly.")
    children = list(case)
    if child is None:
        assert children == []
    else:
        assert [c.tag for c in children] == [child]
        if kind is not None:
            assert children[0].get("type") == kind
        assert children[0].get("message")


def test_junit_escapes_and_writes_a_file(tmp_path: Path) -> None:
    path = write_junit(sample_run(), tmp_path / "out" / "junit.xml")
    root = ET.parse(path).getroot()
    failure = root.find(".//failure")
    assert failure is not None
    assert '<breach> & "quotes"' in (failure.get("message") or "")


def test_junit_stays_well_formed_with_control_characters_in_reasons() -> None:
    """Reasons quote other systems' errors, colours and control characters included: the
    XML must still parse (ElementTree writes them raw otherwise)."""
    run = sample_run()
    noisy = "\x1b[31mtc: RTNETLINK answers\x1b[0m: \x00file\x07 exists\x1b"
    steps = (dataclasses.replace(run.steps[3], reason=noisy), *run.steps[:3])
    root = ET.fromstring(render_junit(dataclasses.replace(run, steps=steps, gameday="shop\x01weekly")))
    error = root.find(".//error")
    assert error is not None
    assert error.get("message") == "tc: RTNETLINK answers: file exists"
    assert "RTNETLINK" in (error.text or "")


def test_junit_suite_attributes_follow_the_junit_schema() -> None:
    suite = ET.fromstring(render_junit(sample_run())).find("testsuite")
    assert suite is not None
    # xs:dateTime without a zone (the JUnit XSD pattern), in UTC; id is the suite's index.
    assert suite.get("timestamp") == "2026-11-27T10:15:00"
    assert re.fullmatch(r"\d+", suite.get("id") or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run_id"] == "20261127T101500Z-3f2a"


def test_markdown_report_has_the_verdict_table_and_the_halt(tmp_path: Path) -> None:
    text = render_markdown(run_to_dict(sample_run()))
    assert text.startswith("# Game day `shop-weekly` — error")
    assert "| payment-pod-kill | payment | core | PodChaos pod-kill (fixed-percent 50) | **halted** |" in text
    assert "0.70s from breach to removal" in text
    assert "\\|" not in text.split("## Halts")[0].split("| reason |")[0]
    path = write_markdown(sample_run(), tmp_path)
    assert path.name == "report.md"
    assert path.read_text() == text


def test_record_round_trips_through_json() -> None:
    doc = run_to_dict(sample_run())
    assert json.loads(json.dumps(doc)) == doc
