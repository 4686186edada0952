"""`chaoslab cleanup` against the fake API server and the Chaos Mesh emulator."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chaoslab.chaosmesh.backend import KubernetesBackend
from chaoslab.cli.main import main
from tests.fakes.kube_api import write_kubeconfig
from tests.fakes.kube_store import NETWORK_CHAOS
from tests.support.kube import (  # noqa: F401 - fixtures imported by name
    RUN_ID,
    FakeCluster,
    backend_fixture,
    kube_fixture,
    kubeconfig_fixture,
    network_delay,
    pod_kill,
    wait_for,
)

OTHER_RUN = "20261127T111500Z-beef"


@pytest.fixture
def env(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)
    return kubeconfig


@pytest.fixture
def leftovers(backend: KubernetesBackend, kube: FakeCluster) -> FakeCluster:
    """Two objects of RUN_ID, one of another run, and one chaoslab did not create."""
    for handle in (backend.create(network_delay(), run_id=RUN_ID),
                   backend.create(pod_kill(), run_id=RUN_ID),
                   backend.create(network_delay(name="cart-delay", app="cart"), run_id=OTHER_RUN)):
        backend.wait_injected(handle, timeout=10)
    foreign = network_delay(name="hand-made")
    foreign["metadata"]["labels"] = {"team": "sre"}
    kube.store.create(NETWORK_CHAOS, "shop", foreign)
    return kube


def test_cleanup_all_removes_only_chaoslab_objects(env: Path, leftovers: FakeCluster,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cleanup", "--all"]) == 0
    out = capsys.readouterr().out
    assert "removed networkchaos/payment-delay-3f2a in shop (experiment payment-delay, run " in out
    assert "removed podchaos/catalog-kill-3f2a in shop" in out
    assert "removed networkchaos/cart-delay-beef in shop" in out
    assert "hand-made" not in out
    assert leftovers.chaos_names() == ["hand-made"]


def test_cleanup_one_run(env: Path, leftovers: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cleanup", "--run-id", OTHER_RUN]) == 0
    assert capsys.readouterr().out.count("removed ") == 1
    assert leftovers.chaos_names() == ["catalog-kill-3f2a", "hand-made", "payment-delay-3f2a"]


def test_dry_run_removes_nothing(env: Path, leftovers: FakeCluster,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cleanup", "--all", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("would remove ") == 3
    assert len(leftovers.chaos_objects()) == 4
    assert leftovers.server.count("delete") == 0


def test_namespace_narrows_the_cleanup(env: Path, leftovers: FakeCluster,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cleanup", "--all", "--namespace", "bank"]) == 0
    assert "no chaoslab fault objects found (any run, namespace bank)" in capsys.readouterr().out
    assert len(leftovers.chaos_objects()) == 4


def test_stuck_object_exits_4_naming_it_and_force_removes_it(env: Path, backend: KubernetesBackend,
                                                             kube: FakeCluster,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    kube.emulator.stick_finalizer("*-stuck-*")
    backend.wait_injected(backend.create(network_delay(name="payment-stuck"), run_id=RUN_ID), timeout=10)
    assert main(["cleanup", "--all", "--timeout", "1"]) == 4
    err = capsys.readouterr().err
    assert "cleanup failed: still there after 1s: networkchaos/payment-stuck-3f2a in shop" in err
    assert "may remain: networkchaos/payment-stuck-3f2a in shop" in err
    assert "--force" in err
    assert kube.chaos_names() == ["payment-stuck-3f2a"]

    assert main(["cleanup", "--all", "--timeout", "1", "--force"]) == 0
    assert "removed networkchaos/payment-stuck-3f2a in shop" in capsys.readouterr().out
    assert kube.chaos_objects() == []


def test_objects_that_cannot_be_deleted_exit_4_naming_them(env: Path, leftovers: FakeCluster,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    leftovers.server.deny("delete", "networkchaos")
    assert main(["cleanup", "--all"]) == 4
    captured = capsys.readouterr()
    assert "removed podchaos/catalog-kill-3f2a in shop" in captured.out
    assert "networkchaos" not in captured.out
    assert "delete networkchaos in shop: forbidden by RBAC" in captured.err
    assert "may remain: networkchaos/payment-delay-3f2a in shop" in captured.err
    assert "may remain: networkchaos/cart-delay-beef in shop" in captured.err
    assert leftovers.chaos_names() == ["cart-delay-beef", "hand-made", "payment-delay-3f2a"]


def test_listing_denied_exits_3(env: Path, leftovers: FakeCluster,
                                capsys: pytest.CaptureFixture[str]) -> None:
    leftovers.server.deny("list", "podchaos")
    assert main(["cleanup", "--all"]) == 3
    assert "list podchaos in all namespaces: forbidden by RBAC" in capsys.readouterr().err
    assert leftovers.server.count("delete") == 0


@pytest.mark.parametrize("content", ["clusters: [\n  oops", "contexts: 5"], ids=["bad-yaml", "wrong-type"])
def test_broken_kubeconfig_exits_3_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], content: str) -> None:
    (tmp_path / "kubeconfig").write_text(content)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    assert main(["cleanup", "--all"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("chaoslab: cannot load the Kubernetes configuration from ")
    assert "Traceback" not in err


def test_cluster_without_chaos_mesh_exits_3_saying_so(env: Path, kube: FakeCluster,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    kube.server.uninstalled.add("chaos-mesh.org")
    assert main(["cleanup", "--all"]) == 3
    assert "is Chaos Mesh installed?" in capsys.readouterr().err


def test_ctrl_c_while_waiting_exits_4_without_a_traceback(kubeconfig: Path, backend: KubernetesBackend,
                                                          kube: FakeCluster) -> None:
    kube.emulator.stick_finalizer("*-stuck-*")
    backend.wait_injected(backend.create(network_delay(name="payment-stuck"), run_id=RUN_ID), timeout=10)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.Popen([sys.executable, "-m", "chaoslab", "cleanup", "--all", "--timeout", "60"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: kube.server.count("delete") or proc.poll() is not None, timeout=30,
                 what="the delete")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 4, err
    assert "cleanup interrupted before every object was confirmed gone" in err
    assert "Traceback" not in err


def test_unreachable_cluster_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path, f"http://127.0.0.1:{port}")))
    assert main(["cleanup", "--all"]) == 3
    assert "cannot reach the Kubernetes API" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["cleanup"], ["cleanup", "--all", "--run-id", RUN_ID],
                                  ["cleanup", "--all", "--timeout", "0"],
                                  ["cleanup", "--all", "--target", "cloud"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse exits by itself
        code = int(exc.code or 0)
    assert code == 2
    assert capsys.readouterr().err.strip()


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cleanup", "--help"])
    out = capsys.readouterr().out
    assert "chaoslab cleanup --all --dry-run" in out
    assert "--force" in out
