"""``run_plan`` against the ports in memory (tests/fakes/memory.py): the runner's decisions
(baselines, the gate, preflight, holds, halts, signals, orphans, cleanup failures,
Prometheus errors) and the exit code each run gets, without Prometheus or a cluster. Each
step still runs as its Chaos Toolkit experiment, whose activities go through the ports
(the ``port`` target). The real backends are covered end to end in tests/integration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import chaoslab
from chaoslab.cli import exitcodes
from chaoslab.cli.run import exit_code
from chaoslab.errors import CleanupError
from chaoslab.halt import reset_halt
from chaoslab.model import AlertRule, Catalog, Experiment, GameDay, Gate, Plan, RunResult, Safety, Verdict
from chaoslab.runner import RunEvent, run_plan
from chaoslab.runner.signals import SignalWatch
from chaoslab.settings import load_settings
from tests.fakes.memory import MemoryBackend, ScriptedMetrics

RUN_ID = "20261206T101500Z-beef"
RATIO = 'sum(rate(errors{service="%s"}[10s])) / sum(rate(total{service="%s"}[10s]))'


def _rule(service: str) -> AlertRule:
    return AlertRule(name=f"{service.capitalize()}Errors", expr=f"{RATIO % (service, service)} > 0.05",
                     for_s=60.0, labels={"severity": "page", "service": service})


RULES = (_rule("catalog"), _rule("cart"), _rule("payment"))


def _catalog() -> Catalog:
    return chaoslab.catalog("shop", [
        chaoslab.service("catalog", namespace="shop", tier="non-core", labels={"app": "catalog"}),
        chaoslab.service("cart", namespace="shop", tier="core", labels={"app": "cart"}),
        chaoslab.service("payment", namespace="shop", tier="core", labels={"app": "payment"}),
    ])


def _plan(*, gate: Gate = Gate.STOP, safety: Safety | None = None, duration: str = "1s") -> Plan:
    catalog = _catalog()
    delay = chaoslab.network_delay(latency="100ms", duration=duration)
    experiments: tuple[Experiment, ...] = tuple(
        chaoslab.experiment(f"{name}-delay", service=name, fault=delay, catalog=catalog)
        for name in ("catalog", "cart", "payment")
    )
    return chaoslab.to_plan(GameDay(name="memory", catalog=catalog, experiments=experiments, gate=gate,
                                    safety=safety or Safety()))


@pytest.fixture(autouse=True)
def _clean_halt() -> Iterator[None]:
    reset_halt()
    yield
    reset_halt()


class Run:
    def __init__(self, tmp_path: Path) -> None:
        self.backend = MemoryBackend()
        self.metrics = ScriptedMetrics()
        self.signals = SignalWatch()
        self.events: list[RunEvent] = []
        self.settings = load_settings(env={}, overrides={"reports_dir": tmp_path / "reports",
                                                         "remove_timeout_s": 1.0})

    def __call__(self, plan: Plan, *, dry_run: bool = False, cleanup_orphans: bool = False) -> RunResult:
        return run_plan(plan, settings=self.settings, backend=self.backend, metrics=self.metrics, rules=RULES,
                        events=self.events.append, dry_run=dry_run, cleanup_orphans=cleanup_orphans,
                        run_id=RUN_ID, signals=self.signals)

    def warnings(self) -> list[str]:
        return [e.message for e in self.events if e.kind == "warning"]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def _verdicts(result: RunResult) -> list[tuple[str, Verdict]]:
    return [(s.step, s.verdict) for s in result.steps]


def test_an_unreachable_prometheus_is_an_error_before_injection_and_exits_3(run: Run) -> None:
    run.metrics.down = True
    result = run(_plan())
    first, *rest = result.steps
    assert first.verdict is Verdict.ERROR
    assert "cannot evaluate the hypothesis" in first.reason
    assert [s.verdict for s in rest] == [Verdict.SKIPPED, Verdict.SKIPPED]  # gate: stop
    assert run.backend.applied == []
    assert exit_code(result) == exitcodes.INFRA


def test_an_unhealthy_system_fails_the_baseline_injects_nothing_and_the_gate_stops(run: Run) -> None:
    run.metrics.values = {"cart": 0.5}  # cart fails 50% before anything is injected
    result = run(_plan())
    assert _verdicts(result) == [("catalog-delay", Verdict.BASELINE_NOT_MET),
                                 ("cart-delay", Verdict.SKIPPED), ("payment-delay", Verdict.SKIPPED)]
    assert "CartErrors" in result.steps[0].reason
    assert "catalog-delay" in result.steps[1].reason
    assert run.backend.applied == []
    assert exit_code(result) == exitcodes.FAILED


def test_a_non_core_failure_stops_core_even_with_gate_continue(run: Run) -> None:
    run.metrics.values = {"catalog": 0.5}
    result = run(_plan(gate=Gate.CONTINUE))
    assert result.steps[0].verdict is Verdict.BASELINE_NOT_MET
    assert [s.verdict for s in result.steps[1:]] == [Verdict.SKIPPED, Verdict.SKIPPED]


def test_a_dry_run_checks_baselines_and_preflight_and_injects_nothing(run: Run) -> None:
    result = run(_plan(), dry_run=True)
    assert [s.verdict for s in result.steps] == [Verdict.SKIPPED] * 3
    assert all("baseline met and preflight passed" in s.reason for s in result.steps)
    assert run.backend.applied == []
    assert exit_code(result) == exitcodes.OK


def test_a_selector_matching_no_pod_is_an_infrastructure_error(run: Run) -> None:
    run.backend.no_pods = True
    result = run(_plan())
    assert result.steps[0].verdict is Verdict.ERROR
    assert "preflight" in result.steps[0].reason
    assert exit_code(result) == exitcodes.INFRA


def test_a_signal_before_the_first_step_skips_every_step_and_exits_3(run: Run) -> None:
    run.signals.deliver("SIGTERM")
    result = run(_plan())
    assert result.interrupted == "SIGTERM"
    assert all(s.verdict is Verdict.SKIPPED and "SIGTERM" in s.reason for s in result.steps)
    assert run.backend.applied == []
    assert exit_code(result) == exitcodes.INFRA


def test_steps_refused_by_the_safety_rules_are_skipped(run: Run) -> None:
    result = run(_plan(safety=Safety(allow_namespaces=("staging",))), dry_run=True)
    assert all("allowNamespaces" in s.reason for s in result.steps)
    assert exit_code(result) == exitcodes.OK


def test_orphans_are_reported_and_kept_unless_asked(run: Run) -> None:
    run.backend.add("old-delay", "20261205T000000Z-dead")
    run(_plan(), dry_run=True)
    assert any("old-delay" in w and "earlier run" in w for w in run.warnings())
    assert "old-delay" in run.backend.faults


def test_orphans_that_cannot_be_removed_end_the_run_before_injection(run: Run) -> None:
    """CleanupError: the CLI exits 4 and names what may remain."""
    run.backend.add("old-delay", "20261205T000000Z-dead")
    run.backend.stuck.add("old-delay")
    with pytest.raises(CleanupError) as raised:
        run(_plan(), cleanup_orphans=True)
    assert raised.value.remaining == ("networkchaos/old-delay in shop",)
    assert run.backend.applied == []


def test_a_fault_of_the_run_that_remains_exits_4_naming_it(run: Run) -> None:
    run.backend.add("catalog-delay", RUN_ID)
    run.backend.stuck.add("catalog-delay")
    result = run(_plan(), dry_run=True)
    assert result.remaining == ("networkchaos/catalog-delay in shop",)
    assert exit_code(result) == exitcodes.CLEANUP


# --- with injection (the port target) -----------------------------------------------------------


def test_every_step_is_injected_held_and_removed_when_the_slos_hold(run: Run) -> None:
    result = run(_plan())
    assert [s.verdict for s in result.steps] == [Verdict.HELD] * 3, [s.reason for s in result.steps]
    assert run.backend.applied == run.backend.removed == ["catalog-delay", "cart-delay", "payment-delay"]
    assert all(s.injected and s.journal for s in result.steps)
    assert run.backend.faults == {}
    assert exit_code(result) == exitcodes.OK


def test_a_breach_during_the_hold_halts_removes_the_fault_and_the_gate_stops(run: Run) -> None:
    """The fault makes cart fail (a weakness); removing it heals cart."""
    run.backend.on_apply = lambda handle: run.metrics.values.update(cart=0.5)
    run.backend.on_remove = lambda handle: run.metrics.values.clear()
    result = run(_plan(duration="120s"))
    first, *rest = result.steps
    assert first.verdict is Verdict.HALTED, first.reason
    assert first.halt is not None
    assert "CartErrors" in first.halt.condition
    assert first.recovery_s is not None
    assert [s.verdict for s in rest] == [Verdict.SKIPPED, Verdict.SKIPPED]
    assert run.backend.removed == ["catalog-delay"]
    assert exit_code(result) == exitcodes.FAILED


def test_a_signal_during_the_hold_removes_the_fault_and_exits_3(run: Run) -> None:
    run.backend.on_apply = lambda handle: run.signals.deliver("SIGINT")
    result = run(_plan(duration="120s"))
    assert result.interrupted == "SIGINT"
    assert result.steps[0].verdict is Verdict.ERROR
    assert "SIGINT" in result.steps[0].reason
    assert [s.verdict for s in result.steps[1:]] == [Verdict.SKIPPED, Verdict.SKIPPED]
    assert run.backend.faults == {}
    assert exit_code(result) == exitcodes.INFRA


def test_prometheus_lost_during_the_hold_halts_and_exits_3(run: Run) -> None:
    run.backend.on_apply = lambda handle: setattr(run.metrics, "down", True)
    result = run(_plan(duration="120s"))
    first = result.steps[0]
    assert first.halt is not None
    assert first.halt.kind == "no-data"
    assert run.backend.faults == {}
    assert exit_code(result) == exitcodes.INFRA


def test_a_fault_that_cannot_be_removed_exits_4_naming_it(run: Run) -> None:
    run.backend.stuck.add("catalog-delay")
    result = run(_plan())
    assert result.remaining == ("networkchaos/catalog-delay in shop",)
    assert "catalog-delay" in result.steps[0].reason
    assert exit_code(result) == exitcodes.CLEANUP


def test_the_python_api_runs_a_game_day_on_your_own_ports(tmp_path: Path) -> None:
    """chaoslab.run(..., ports=(backend, metrics)): a user's backend and metrics source."""
    backend, metrics = MemoryBackend(), ScriptedMetrics(loaded_rules=RULES)
    backend.on_apply = lambda handle: metrics.values.update(payment=0.3)
    backend.on_remove = lambda handle: metrics.values.clear()
    result = chaoslab.run(_plan(duration="120s").gameday, ports=(backend, metrics), reports=tmp_path)
    assert isinstance(result, chaoslab.RunResult)
    assert result.target == "memory"
    assert _verdicts(result) == [("catalog-delay", Verdict.HALTED), ("cart-delay", Verdict.SKIPPED),
                                 ("payment-delay", Verdict.SKIPPED)]
    assert result.steps[0].halt is not None
    assert "PaymentErrors" in result.steps[0].halt.condition
    assert (tmp_path / result.run_id / "run.json").is_file()
    assert backend.faults == {}
