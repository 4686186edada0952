"""Chaos Toolkit activities for Chaos Mesh: called directly, and through `chaos run` of an
exported experiment in a subprocess whose KUBECONFIG points at the fake cluster running
in this test process — including SIGTERM, SIGINT and SIGKILL during the hold."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaoslab.chaosmesh import actions, guard, probes
from chaoslab.cli.main import main
from chaoslab.errors import InjectionError, InvalidInputError, PreflightError
from chaoslab.halt import halt_requested, reset_halt
from tests.fakes.kube_store import NETWORK_CHAOS
from tests.support.files import EXPERIMENTS_DIR, write
from tests.support.kube import (  # noqa: F401 - fixtures imported by name
    RUN_ID,
    FakeCluster,
    kube_fixture,
    kubeconfig_fixture,
    network_delay,
    wait_for,
)

CONFIG = {"chaoslab_target": "kubernetes", "chaoslab_run_id": RUN_ID}


@pytest.fixture
def env(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)
    reset_halt()
    yield kubeconfig
    reset_halt()
    guard.remove_leftovers()  # what a test left injected, while the fake cluster still runs


# --- the activities in-process -------------------------------------------------------------


def test_inject_then_remove(env: Path, kube: FakeCluster) -> None:
    out = actions.inject_fault(network_delay(), timeout=10, configuration=CONFIG)
    assert out["name"] == "payment-delay-3f2a"
    assert out["run_id"] == RUN_ID
    assert out["pods"] == ["shop/payment-7d4b9-00000", "shop/payment-7d4b9-00001"]
    assert probes.fault_injected("NetworkChaos", "shop", "payment-delay", configuration=CONFIG)
    assert probes.chaoslab_faults_count() == 1
    assert probes.fault_status("NetworkChaos", "shop", "payment-delay", configuration=CONFIG)[0]["phase"] == (
        "injected")

    removed = actions.remove_fault("NetworkChaos", "shop", "payment-delay", timeout=10, configuration=CONFIG)
    assert removed["removed"] == ["payment-delay-3f2a"]
    assert kube.chaos_objects() == []
    again = actions.remove_fault("NetworkChaos", "shop", "payment-delay", timeout=10, configuration=CONFIG)
    assert again["removed"] == []
    assert not probes.fault_injected("NetworkChaos", "shop", "payment-delay", configuration=CONFIG)


def test_remove_leaves_other_runs_and_experiments(env: Path, kube: FakeCluster) -> None:
    actions.inject_fault(network_delay(), timeout=10, configuration=CONFIG)
    other = dict(CONFIG, chaoslab_run_id="20261127T111500Z-beef")
    actions.inject_fault(network_delay(), timeout=10, configuration=other)
    actions.inject_fault(network_delay(name="cart-delay", app="cart"), timeout=10, configuration=CONFIG)
    actions.remove_fault("NetworkChaos", "shop", "payment-delay", timeout=10, configuration=CONFIG)
    assert kube.chaos_names() == ["cart-delay-3f2a", "payment-delay-beef"]


def test_faults_left_in_place_are_removed_at_exit(env: Path, kube: FakeCluster) -> None:
    actions.inject_fault(network_delay(), timeout=10, configuration=CONFIG)
    assert guard.tracked() == [("NetworkChaos", "shop", "payment-delay", "payment-delay-3f2a")]
    guard.remove_leftovers()  # what the atexit hook runs
    assert kube.chaos_objects() == []
    assert guard.tracked() == []


def test_a_process_that_dies_of_an_error_removes_its_fault_on_exit(kube: FakeCluster,
                                                                   kubeconfig: Path) -> None:
    script = ("import json, sys\n"
              "from chaoslab.chaosmesh.actions import inject_fault\n"
              "inject_fault(json.loads(sys.argv[1]), timeout=10)\n"
              "raise RuntimeError('the experiment crashed')\n")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    done = subprocess.run([sys.executable, "-c", script, json.dumps(network_delay())], env=env,
                          capture_output=True, text=True, timeout=60)
    assert "the experiment crashed" in done.stderr
    assert "left in place when the process ended" in done.stderr
    assert kube.server.count("create") == 1
    assert kube.chaos_objects() == []


def test_run_id_defaults_to_one_per_process(env: Path, kube: FakeCluster) -> None:
    out = actions.inject_fault(network_delay(), timeout=10)
    assert out["run_id"] == actions.process_run_id() == actions.current_run_id({})
    actions.remove_fault("NetworkChaos", "shop", "payment-delay", timeout=10)
    assert kube.chaos_objects() == []


def test_preflight_refusal_creates_nothing_and_ends_the_hold(env: Path, kube: FakeCluster) -> None:
    with pytest.raises(PreflightError, match="selector app=ghost in bank matches no running pod"):
        actions.inject_fault(network_delay(namespace="bank", app="ghost"), configuration=CONFIG)
    assert kube.server.count("create") == 0
    assert halt_requested()


def test_transient_failures_are_waited_out_and_returned(env: Path, kube: FakeCluster) -> None:
    kube.emulator.fail_injection("payment-*", "unable to flush ip sets", times=1)
    output = actions.inject_fault(network_delay(), timeout=30, configuration=CONFIG)
    assert output["failed_attempts"]
    assert all("unable to flush ip sets" in f for f in output["failed_attempts"])
    assert len(kube.chaos_objects()) == 1


def test_failed_injection_is_removed(env: Path, kube: FakeCluster) -> None:
    kube.emulator.fail_injection("payment-*", "unable to flush ip sets")
    with pytest.raises(InjectionError, match="unable to flush ip sets"):
        actions.inject_fault(network_delay(), timeout=1, configuration=CONFIG)
    assert kube.chaos_objects() == []


@pytest.mark.parametrize(("manifest", "field"), [
    ("not a manifest", "manifest"),
    ({"apiVersion": "v1", "kind": "Pod"}, "manifest.apiVersion"),
    ({**network_delay(), "kind": "IOChaos"}, "manifest.kind"),
    ({**network_delay(), "metadata": {"name": "x"}}, "manifest.metadata"),
])
def test_bad_manifest_is_invalid_input(env: Path, manifest: Any, field: str) -> None:
    with pytest.raises(InvalidInputError, match=f"{field}:"):
        actions.inject_fault(manifest, configuration=CONFIG)


def test_activities_import_without_the_kubernetes_client() -> None:
    code = ("import sys, chaoslab.chaosmesh.actions, chaoslab.chaosmesh.probes; "
            "print(sorted(m for m in ('kubernetes', 'chaosk8s') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# --- chaos run in a subprocess ----------------------------------------------------------------


@pytest.fixture
def exported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[[str], Path]:
    """`chaoslab export --to chaostoolkit` of a payment delay held for ``duration``."""

    def export(duration: str) -> Path:
        source = write(tmp_path / "payment-delay.yaml", {
            "apiVersion": "chaoslab/v1", "kind": "Experiment", "metadata": {"name": "payment-delay"},
            "spec": {"service": "payment", "fault": {"networkChaos": {
                "action": "delay", "mode": "all", "delay": {"latency": "200ms"}, "duration": duration}}}})
        capsys.readouterr()
        assert main(["export", "--to", "chaostoolkit", "--catalog", str(EXPERIMENTS_DIR / "catalog.yaml"),
                     str(source)]) == 0
        path = tmp_path / "exported.json"
        path.write_text(capsys.readouterr().out)
        return path

    return export


class ChaosRun:
    """`chaos run` in a subprocess, stopped by PID in teardown."""

    def __init__(self, directory: Path, kubeconfig: Path) -> None:
        self.directory = directory
        self.kubeconfig = kubeconfig
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.directory / "chaostoolkit.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def journal(self) -> dict[str, Any]:
        return json.loads((self.directory / "journal.json").read_text())

    def start(self, experiment: Path) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_CONTEXT"}
        env["KUBECONFIG"] = str(self.kubeconfig)
        with open(self.directory / "chaos.out", "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chaostoolkit", "--no-version-check",
                 "--log-file", str(self.directory / "chaostoolkit.log"),
                 "--settings", str(self.directory / "settings.yaml"),
                 "run", "--journal-path", str(self.directory / "journal.json"), str(experiment)],
                cwd=self.directory, env=env, stdout=out, stderr=subprocess.STDOUT)
        return self.proc

    def wait_for_hold(self) -> None:
        wait_for(lambda: "Action: hold-fault" in self.log or (self.proc and self.proc.poll() is not None),
                 timeout=60, what="chaos run to reach the hold")
        assert self.proc is not None
        assert self.proc.poll() is None, self.output()

    def output(self) -> str:
        return (self.directory / "chaos.out").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def chaos_run(tmp_path: Path, kubeconfig: Path) -> Iterator[ChaosRun]:
    run = ChaosRun(tmp_path, kubeconfig)
    try:
        yield run
    finally:
        run.stop()


def test_chaos_run_injects_holds_removes_and_leaves_nothing(kube: FakeCluster, tmp_path: Path,
                                                            kubeconfig: Path,
                                                            exported: Callable[[str], Path]) -> None:
    experiment = exported("1s")
    names = []
    for attempt in ("first", "second"):  # the same experiment twice in a row: no collision
        (tmp_path / attempt).mkdir()
        run = ChaosRun(tmp_path / attempt, kubeconfig)
        try:
            assert run.start(experiment).wait(timeout=90) == 0, run.output()
        finally:
            run.stop()
        journal = run.journal()
        assert journal["status"] == "completed"
        inject, hold = journal["run"]
        assert inject["status"] == "succeeded"
        assert inject["output"]["name"].startswith("payment-delay-")
        assert hold["output"]["interrupted"] is False
        assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"]
        assert journal["rollbacks"][0]["output"]["removed"] == [inject["output"]["name"]]
        assert kube.chaos_objects() == []
        names.append(inject["output"]["name"])
    assert names[0] != names[1]
    assert kube.server.count("create") == 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_hold_removes_the_fault(kube: FakeCluster, chaos_run: ChaosRun,
                                              exported: Callable[[str], Path], signum: int) -> None:
    proc = chaos_run.start(exported("5m"))
    chaos_run.wait_for_hold()
    assert len(kube.chaos_objects()) == 1
    sent = time.monotonic()
    proc.send_signal(signum)
    # The target is 2 s; the bound is ten times that so a loaded machine cannot flake it.
    wait_for(lambda: not kube.chaos_objects(), timeout=20, what="the fault to be removed")
    removed_after = time.monotonic() - sent
    proc.wait(timeout=30)
    journal = chaos_run.journal()
    assert journal["status"] == "interrupted"
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"], chaos_run.output()
    print(f"{signal.Signals(signum).name} during hold: fault removed {removed_after:.2f}s after the signal")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_injection_removes_the_fault(kube: FakeCluster, chaos_run: ChaosRun,
                                                   exported: Callable[[str], Path], signum: int) -> None:
    kube.emulator.inject_delay = 60.0  # Chaos Mesh is slow: the action is still waiting
    proc = chaos_run.start(exported("5m"))
    wait_for(lambda: kube.chaos_objects() or proc.poll() is not None, timeout=60, what="the object")
    assert proc.poll() is None, chaos_run.output()
    proc.send_signal(signum)
    wait_for(lambda: not kube.chaos_objects(), timeout=20, what="the fault to be removed")
    proc.wait(timeout=30)
    journal = chaos_run.journal()
    assert journal["status"] == "interrupted"
    assert [a["activity"]["name"] for a in journal["run"]] == ["inject-networkchaos-delay"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_the_create_removes_the_fault(kube: FakeCluster, chaos_run: ChaosRun,
                                                    exported: Callable[[str], Path], signum: int) -> None:
    gate = kube.server.gate("create", "networkchaos")  # a slow admission webhook holds the create
    try:
        proc = chaos_run.start(exported("5m"))
        wait_for(lambda: kube.server.count("create") or proc.poll() is not None, timeout=60,
                 what="the create request")
        proc.send_signal(signum)
        deferred = f"{signal.Signals(signum).name} received while creating a fault"
        wait_for(lambda: deferred in chaos_run.output() or proc.poll() is not None, timeout=20,
                 what="the signal to be noted")
    finally:
        gate.set()  # the API server goes on with the create, whether the client waits or not
    wait_for(lambda: any(e.type == "ADDED" and e.resource is NETWORK_CHAOS for e in kube.store.history),
             timeout=20, what="the create to be carried out")
    proc.wait(timeout=30)
    assert kube.chaos_objects() == [], chaos_run.output()
    assert chaos_run.journal()["status"] == "interrupted"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_removal_lets_it_finish(kube: FakeCluster, chaos_run: ChaosRun,
                                              exported: Callable[[str], Path], signum: int) -> None:
    gate = kube.server.gate("delete", "networkchaos")  # the delete is on its way: removal under way
    try:
        proc = chaos_run.start(exported("1s"))
        wait_for(lambda: kube.server.count("delete") or proc.poll() is not None, timeout=60,
                 what="the removal")
        proc.send_signal(signum)
        deferred = f"{signal.Signals(signum).name} received while removing a fault"
        wait_for(lambda: deferred in chaos_run.output() or proc.poll() is not None, timeout=20,
                 what="the signal to be noted")
    finally:
        gate.set()
    proc.wait(timeout=60)
    journal = chaos_run.journal()
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"], chaos_run.output()
    assert journal["rollbacks"][0]["output"]["removed"] == [journal["run"][0]["output"]["name"]]
    assert f"{signal.Signals(signum).name} received while removing a fault" in chaos_run.output()
    assert kube.chaos_objects() == []


def test_sigkill_then_cleanup_all_removes_only_chaoslab_objects(kube: FakeCluster, chaos_run: ChaosRun,
                                                                exported: Callable[[str], Path]) -> None:
    proc = chaos_run.start(exported("5m"))
    chaos_run.wait_for_hold()
    proc.kill()
    proc.wait(timeout=10)
    (left,) = kube.chaos_names()
    foreign = network_delay(name="hand-made")
    foreign["metadata"]["labels"] = {"team": "sre"}
    kube.store.create(NETWORK_CHAOS, "shop", foreign)

    env = {**os.environ, "KUBECONFIG": str(chaos_run.kubeconfig)}
    done = subprocess.run([sys.executable, "-m", "chaoslab", "cleanup", "--all"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"removed networkchaos/{left} in shop" in done.stdout
    assert kube.chaos_names() == ["hand-made"]
