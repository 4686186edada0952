"""The signal contract in every phase: SIGINT and SIGTERM, wherever they arrive in a step
(baseline, injecting, holding, removal, recovery) or after the last step, leave no fault,
exit 3, and run.json says the run was interrupted, by which signal and in which phase.

The runner runs in this process against a real sandbox and its Prometheus. A real signal is
sent to the process by the runner's own observer at the moment the run reports entering
the phase, and the observer waits until the signal was received: the phase is certain, not
a matter of timing.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoslab.cli.run import exit_code
from chaoslab.loader import load_any
from chaoslab.model import GameDay
from chaoslab.plan import build_plan
from chaoslab.prometheus.client import PrometheusClient
from chaoslab.prometheus.rules import load_rules
from chaoslab.report.record import write_run
from chaoslab.runner import run_plan
from chaoslab.runner.events import PHASE, STEP_FINISHED, RunEvent
from chaoslab.runner.signals import SignalWatch
from chaoslab.settings import load_settings
from chaoslab.watch import build_conditions, evaluate
from tests.support.gameday import delay, write_gameday
from tests.support.prometheus import wait_for
from tests.support.sandbox import RunningSandbox, sandbox_up

pytestmark = [pytest.mark.sandbox, pytest.mark.prometheus, pytest.mark.timeout(600)]

# The runner's progress event that opens each phase of the contract.
OPENING = {
    "baseline": (PHASE, "precheck"),
    "injecting": (PHASE, "inject"),
    "holding": (PHASE, "hold"),
    "removal": (PHASE, "remove"),
    "recovery": (PHASE, "recover"),
    "finishing": (STEP_FINISHED, None),
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with sandbox_up(tmp_path_factory.mktemp("signals") / "state") as running:
        running.settle()
        yield running


class SignalAt:
    """Sends ``sig`` to this process when the run enters ``phase``, once, and waits for it."""

    def __init__(self, phase: str, sig: signal.Signals, watch: SignalWatch) -> None:
        self.kind, self.name = OPENING[phase]
        self.sig, self.watch = sig, watch
        self.sent = False

    def __call__(self, event: RunEvent) -> None:
        if self.sent or event.kind != self.kind or (self.name is not None and event.phase != self.name):
            return
        self.sent = True
        os.kill(os.getpid(), self.sig)
        assert self.watch.event.wait(timeout=30), "the signal was not received"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase", list(OPENING))
def test_a_signal_in_any_phase_removes_the_fault_exits_3_and_is_recorded(
    shop: RunningSandbox, tmp_path: Path, phase: str, sig: signal.Signals
) -> None:
    shop.settle()
    path = write_gameday(tmp_path, {"catalog-delay": delay("catalog", duration="2s")})
    gameday = load_any(path)
    assert isinstance(gameday, GameDay)
    settings = load_settings(overrides={
        "reports_dir": str(tmp_path / "reports"), "prometheus_url": shop.state.prometheus_url,
        "sandbox_state_dir": str(shop.state_dir),
    })
    rules = load_rules([tmp_path / "rules" / "slo.yaml"])
    watch = SignalWatch()
    observer = SignalAt(phase, sig, watch)
    with PrometheusClient(shop.state.prometheus_url) as metrics:
        # The phase under test comes after the baseline: it must be met first (a freshly
        # started shop needs a few scrapes before every rate window holds samples).
        conditions = build_conditions(gameday.catalog.services[0], rules, gameday.catalog)
        wait_for(lambda: all(c.met for c in evaluate(metrics, conditions)), timeout=90,
                 what="every SLO of the test rules to hold", interval=0.5)
        with watch.installed():
            result = run_plan(build_plan(gameday), settings=settings, backend=shop.backend, metrics=metrics,
                              rules=rules, events=observer, target="sandbox", signals=watch)
    assert observer.sent, f"the run never entered {phase}"
    record = json.loads(write_run(result, tmp_path / "reports" / result.run_id).read_text())
    assert shop.backend.list_faults() == []
    assert exit_code(result) == 3
    assert record["interrupted"] == {"signal": sig.name, "phase": phase}
    assert record["verdict"] == "error"
