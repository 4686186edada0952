"""Pure rules of a run: run ids, step verdicts, the run verdict, gates and the exit codes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from chaoslab.cli import exitcodes
from chaoslab.cli.run import exit_code
from chaoslab.model import ChaosKind, Gate, Mode, RunResult, StepResult, Tier, Verdict
from chaoslab.runner.outcome import Outcome, decide
from chaoslab.runner.verdict import (
    RUN_ID_PATTERN,
    aggregate_verdict,
    new_run_id,
    skip_reason,
    stage_stop_reason,
    stop_reason,
    unused_run_id,
)
from chaoslab.watch import BREACH_ALERT_STATE, BREACH_CONDITION, BREACH_NO_DATA

T0 = datetime(2026, 11, 27, 10, 15, 0, tzinfo=UTC)


def step(
    name: str = "s", verdict: Verdict = Verdict.HELD, tier: Tier = Tier.NON_CORE, reason: str = ""
) -> StepResult:
    return StepResult(
        step=name,
        experiment=name,
        service="catalog",
        tier=tier,
        kind=ChaosKind.NETWORK_CHAOS,
        action="delay",
        mode=Mode.ONE,
        verdict=verdict,
        reason=reason,
    )


def run(*steps: StepResult, remaining: tuple[str, ...] = (), interrupted: str | None = None) -> RunResult:
    return RunResult(
        run_id="20261127T101500Z-3f2a",
        gameday="g",
        target="sandbox",
        started_at=T0,
        ended_at=T0,
        verdict=aggregate_verdict(steps),
        steps=steps,
        remaining=remaining,
        interrupted=interrupted,
    )


def test_run_id_is_a_sortable_utc_timestamp_with_four_hex_digits() -> None:
    run_id = new_run_id(T0)
    assert RUN_ID_PATTERN.match(run_id)
    assert run_id.startswith("20261127T101500Z-")
    later = new_run_id(datetime(2026, 11, 27, 10, 15, 1, tzinfo=UTC))
    assert sorted([later, run_id]) == [run_id, later]


def test_run_ids_differ_within_one_second() -> None:
    assert len({new_run_id(T0) for _ in range(50)}) > 1


def test_a_run_id_already_used_is_never_reused() -> None:
    """Two runs in the same second: the second must not write into the first one's folder."""
    asked: list[str] = []

    def taken(candidate: str) -> bool:
        asked.append(candidate)
        return len(asked) <= 3  # the first three candidates have a report folder already

    run_id = unused_run_id(taken, T0)
    assert len(asked) == 4
    assert run_id == asked[-1]
    assert RUN_ID_PATTERN.match(run_id)


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ((), Verdict.SKIPPED),
        ((Verdict.SKIPPED, Verdict.SKIPPED), Verdict.SKIPPED),
        ((Verdict.HELD, Verdict.SKIPPED), Verdict.HELD),
        ((Verdict.HELD, Verdict.BASELINE_NOT_MET), Verdict.BASELINE_NOT_MET),
        ((Verdict.HELD, Verdict.DEVIATED, Verdict.BASELINE_NOT_MET), Verdict.DEVIATED),
        ((Verdict.HALTED, Verdict.DEVIATED, Verdict.SKIPPED), Verdict.HALTED),
        ((Verdict.HALTED, Verdict.ERROR), Verdict.ERROR),
    ],
)
def test_the_run_verdict_is_the_worst_step_verdict(verdicts: tuple[Verdict, ...], expected: Verdict) -> None:
    assert aggregate_verdict([step(f"s{i}", v) for i, v in enumerate(verdicts)]) is expected


@pytest.mark.parametrize(
    ("verdict", "gate", "stops"),
    [
        (Verdict.HELD, Gate.STOP, False),
        (Verdict.SKIPPED, Gate.STOP, False),
        (Verdict.DEVIATED, Gate.STOP, True),
        (Verdict.HALTED, Gate.STOP, True),
        (Verdict.BASELINE_NOT_MET, Gate.STOP, True),
        (Verdict.ERROR, Gate.STOP, True),
        (Verdict.HALTED, Gate.CONTINUE, False),
        (Verdict.BASELINE_NOT_MET, Gate.CONTINUE, False),
        (Verdict.ERROR, Gate.CONTINUE, True),  # the system could not be driven: never carry on
    ],
)
def test_gate(verdict: Verdict, gate: Gate, stops: bool) -> None:
    reason = stop_reason(step("catalog-delay", verdict), gate=gate)
    assert (reason is not None) is stops
    if reason:
        assert "catalog-delay" in reason


def test_a_non_core_failure_never_reaches_core_even_with_gate_continue() -> None:
    results = [step("catalog-delay", Verdict.HELD), step("recommendation-delay", Verdict.DEVIATED)]
    reason = stage_stop_reason(results, tier=Tier.NON_CORE)
    assert reason is not None
    assert "recommendation-delay" in reason
    assert (
        stage_stop_reason([step("a", Verdict.HELD), step("b", Verdict.SKIPPED)], tier=Tier.NON_CORE) is None
    )


@pytest.mark.parametrize(
    ("done", "tier", "gate", "skips"),
    [
        ([], Tier.NON_CORE, Gate.STOP, None),
        ([("a", Verdict.HELD, Tier.NON_CORE)], Tier.CORE, Gate.STOP, None),
        ([("a", Verdict.HALTED, Tier.NON_CORE)], Tier.NON_CORE, Gate.STOP, "gate stop: step a halted"),
        ([("a", Verdict.HALTED, Tier.NON_CORE)], Tier.NON_CORE, Gate.CONTINUE, None),
        ([("a", Verdict.HALTED, Tier.NON_CORE)], Tier.CORE, Gate.CONTINUE, "non-core stage failed (a)"),
        (
            [("a", Verdict.HELD, Tier.NON_CORE), ("c", Verdict.DEVIATED, Tier.CORE)],
            Tier.CORE,
            Gate.CONTINUE,
            None,
        ),
        (
            [("a", Verdict.HELD, Tier.NON_CORE), ("c", Verdict.DEVIATED, Tier.CORE)],
            Tier.CORE,
            Gate.STOP,
            "gate stop: step c deviated",
        ),
        ([("a", Verdict.ERROR, Tier.NON_CORE)], Tier.NON_CORE, Gate.CONTINUE, "step a ended in error"),
        ([("a", Verdict.SKIPPED, Tier.NON_CORE)], Tier.CORE, Gate.STOP, None),
    ],
)
def test_which_later_steps_are_skipped(
    done: list[tuple[str, Verdict, Tier]], tier: Tier, gate: Gate, skips: str | None
) -> None:
    results = [step(name, verdict, tier=t) for name, verdict, t in done]
    reason = skip_reason(results, tier=tier, gate=gate)
    if skips is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason.startswith(skips)


@pytest.mark.parametrize(
    ("outcome", "verdict", "words"),
    [
        (Outcome(injected=True, recovered=True, recovery_s=0.4), Verdict.HELD, "recovered in 0.4s"),
        (
            Outcome(baseline_met=False, baseline_reason="CartHighErrorRate is firing"),
            Verdict.BASELINE_NOT_MET,
            "nothing injected",
        ),
        (Outcome(baseline_met=None), Verdict.BASELINE_NOT_MET, "baseline not met"),
        (
            Outcome(
                injected=True,
                breach_kind=BREACH_CONDITION,
                breach="CartHighErrorRate (cart): 0.3 > 0.05",
                recovered=True,
                recovery_s=12.0,
            ),
            Verdict.HALTED,
            "CartHighErrorRate",
        ),
        (
            Outcome(injected=True, breach_kind=BREACH_ALERT_STATE, breach="X is pending"),
            Verdict.HALTED,
            "pending",
        ),
        (
            Outcome(injected=True, breach_kind=BREACH_NO_DATA, breach="cannot reach Prometheus"),
            Verdict.ERROR,
            "Prometheus unreachable",
        ),
        (Outcome(injected=True, signal="SIGTERM", breach_kind=BREACH_CONDITION), Verdict.ERROR, "SIGTERM"),
        (
            Outcome(inject_error="selector app=ghost matches no running pod"),
            Verdict.ERROR,
            "injection failed",
        ),
        (
            Outcome(injected=True, after_met=False, after_reason="p99 1.2 > 1"),
            Verdict.DEVIATED,
            "end of the hold",
        ),
        (
            Outcome(injected=True, recovered=False, recovery_reason="still firing"),
            Verdict.DEVIATED,
            "did not recover",
        ),
        (
            # Halted, then not holding again within recoveryTimeout: deviated, halt named.
            Outcome(
                injected=True,
                breach_kind=BREACH_CONDITION,
                breach="CartErrors (cart): 0.3 > 0.05",
                recovered=False,
                recovery_reason="hypothesis not met 120s after removal: CartErrors: 0.2 > 0.05",
            ),
            Verdict.DEVIATED,
            "CartErrors (cart): 0.3 > 0.05; did not recover: hypothesis not met 120s",
        ),
        (
            Outcome(injected=True, recovered=False, recovery_no_data=True, recovery_reason="unreachable"),
            Verdict.ERROR,
            "could not be observed",
        ),
        (
            Outcome(injected=True, cleanup_error="networkchaos/x stuck", breach_kind=BREACH_CONDITION),
            Verdict.ERROR,
            "cleanup failed",
        ),
        (Outcome(ctk_error="ValueError: boom"), Verdict.ERROR, "could not be carried out"),
    ],
)
def test_step_verdict(outcome: Outcome, verdict: Verdict, words: str) -> None:
    got, reason = decide(outcome)
    assert got is verdict
    assert words in reason


@pytest.mark.parametrize(
    ("verdicts", "remaining", "interrupted", "code"),
    [
        ((Verdict.HELD, Verdict.HELD), (), None, exitcodes.OK),
        ((Verdict.SKIPPED,), (), None, exitcodes.OK),
        ((Verdict.HELD, Verdict.SKIPPED), (), None, exitcodes.OK),
        ((Verdict.HELD, Verdict.HALTED, Verdict.SKIPPED), (), None, exitcodes.FAILED),
        ((Verdict.BASELINE_NOT_MET,), (), None, exitcodes.FAILED),
        ((Verdict.DEVIATED,), (), None, exitcodes.FAILED),
        ((Verdict.HALTED, Verdict.ERROR), (), None, exitcodes.INFRA),
        ((Verdict.HELD, Verdict.SKIPPED), (), "SIGINT", exitcodes.INFRA),
        ((Verdict.ERROR,), ("podchaos/x in shop",), None, exitcodes.CLEANUP),
    ],
)
def test_exit_codes(
    verdicts: tuple[Verdict, ...], remaining: tuple[str, ...], interrupted: str | None, code: int
) -> None:
    steps = tuple(step(f"s{i}", v) for i, v in enumerate(verdicts))
    assert exit_code(run(*steps, remaining=remaining, interrupted=interrupted)) == code


def test_results_are_frozen() -> None:
    result = step()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.verdict = Verdict.ERROR  # type: ignore[misc]
