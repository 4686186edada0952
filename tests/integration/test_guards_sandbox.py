"""Guard alerts on the sandbox path: real processes, real faults, the sandbox's real
Prometheus evaluating the SLO rules next to kube-prometheus-shaped guard rules (see
tests/support/guards.py for the scenarios). One sandbox for the module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from chaoslab.sandbox.backend import SandboxBackend
from tests.support import guards
from tests.support.gameday import SERVICES, cli_env, describe, error_ratio, poll, service_ratio, slo_rules
from tests.support.prometheus import instant, require_prometheus

pytestmark = [pytest.mark.sandbox, pytest.mark.prometheus, pytest.mark.timeout(240)]


@dataclass
class SandboxWorld:
    state_dir: Path
    prometheus_url: str
    guard_file: Path

    def env(self) -> dict[str, str]:
        return cli_env(CHAOSLAB_SANDBOX_DIR=str(self.state_dir))

    def run(self, *args: str) -> list[str]:
        return ["run", "--target", "sandbox", *args]

    def backend(self) -> SandboxBackend:
        return SandboxBackend(state_dir=self.state_dir)

    def reload(self) -> None:
        os.kill(self.backend().state.pids["prometheus"], signal.SIGHUP)

    def faults(self) -> list[str]:
        return [h.ref for h in self.backend().list_faults()]

    def healthy(self) -> None:
        exprs = [f"{error_ratio()} == 0", *(f"{service_ratio(n)} == 0" for n, _tier in SERVICES)]
        poll(lambda: (not self.faults() and all(p["ready"] for p in self.backend().pods())
                      and all(instant(self.prometheus_url, e) for e in exprs)),
             timeout=60, what="a healthy sandbox", interval=0.25)  # fmt: skip


def _chaoslab(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaoslab", *args], env=env, text=True, capture_output=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxWorld]:
    require_prometheus()
    root = tmp_path_factory.mktemp("sandbox-guards")
    state_dir = root / "state"
    slo = root / "rules" / "slo.yaml"
    slo.parent.mkdir()
    slo.write_text(yaml.safe_dump(slo_rules()))
    guard_file = guards.write_guard_rules(root / "rules" / "kube-prometheus.yaml", firing=False)
    env = cli_env(CHAOSLAB_SANDBOX_DIR=str(state_dir))
    up = _chaoslab("sandbox", "up", "--state-dir", str(state_dir), "--rules", str(slo), "--rules",
                   str(guard_file), env=env)
    try:
        assert up.returncode == 0, describe(up)
        state = SandboxBackend(state_dir=state_dir).state
        world = SandboxWorld(state_dir=state_dir, prometheus_url=state.prometheus_url, guard_file=guard_file)
        world.healthy()
        yield world
    finally:
        down = _chaoslab("sandbox", "down", "--state-dir", str(state_dir), env=env)
        assert down.returncode == 0, describe(down)


def test_pending_guards_do_not_block_and_an_slo_breach_halts(world: SandboxWorld, tmp_path: Path) -> None:
    guards.baseline_holds_with_pending_guards_and_an_slo_breach_halts(world, tmp_path)


def test_a_firing_guard_blocks_the_baseline_until_ignored(world: SandboxWorld, tmp_path: Path) -> None:
    guards.firing_guard_blocks_the_baseline_until_ignored(world, tmp_path)


def test_a_guard_firing_during_the_hold_halts(world: SandboxWorld, tmp_path: Path) -> None:
    guards.guard_firing_during_the_hold_halts(world, tmp_path)


def test_an_slo_condition_without_data_fails_the_baseline(world: SandboxWorld, tmp_path: Path) -> None:
    guards.slo_condition_without_data_fails_the_baseline(world, tmp_path)
