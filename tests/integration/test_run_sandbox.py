"""`chaoslab run --target sandbox` end to end: real processes, real faults, a real Prometheus.

One sandbox for the module (its own state directory). The rules are the test's own,
with 5 s windows and ``for: 60s``: chaoslab must halt on the condition, not on the alert.
The payment pod-kill is the sandbox's built-in weakness: one payment replica and no
retry in cart, so cart fails until the replacement pod is up.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import requests
import yaml

from chaoslab.sandbox.backend import SandboxBackend
from tests.support.gameday import (
    SERVICES,
    cli_env,
    delay,
    describe,
    error_ratio,
    pod_kill,
    poll,
    read_run,
    run_cli,
    service_ratio,
    start_cli,
    stop_process,
    write_gameday,
)
from tests.support.prometheus import PROMETHEUS_BIN, free_port, instant, require_prometheus

pytestmark = [pytest.mark.sandbox, pytest.mark.prometheus, pytest.mark.timeout(240)]


def sandbox_run(*args: str) -> list[str]:
    """``chaoslab run --target sandbox`` with ``args``."""
    return ["run", "--target", "sandbox", *args]


@dataclass
class Sandbox:
    state_dir: Path
    prometheus_url: str

    def env(self) -> dict[str, str]:
        return cli_env(CHAOSLAB_SANDBOX_DIR=str(self.state_dir))

    def backend(self) -> SandboxBackend:
        return SandboxBackend(state_dir=self.state_dir)

    def faults(self) -> list[str]:
        return [h.ref for h in self.backend().list_faults()]

    def pods(self, service: str) -> list[str]:
        return sorted(p["name"] for p in self.backend().pods() if p["labels"].get("app") == service)

    def healthy(self) -> None:
        """Every pod ready, no fault, and Prometheus seeing no errors anywhere."""
        exprs = [f"{error_ratio()} == 0", *(f"{service_ratio(n)} == 0" for n, _tier in SERVICES)]
        poll(
            lambda: (
                not self.faults()
                and all(p["ready"] for p in self.backend().pods())
                and all(instant(self.prometheus_url, e) for e in exprs)
            ),
            timeout=60,
            what="a healthy sandbox",
            interval=0.25,
        )


def _chaoslab(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoslab", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    require_prometheus()
    state_dir = tmp_path_factory.mktemp("sandbox-state")
    env = cli_env(CHAOSLAB_SANDBOX_DIR=str(state_dir))
    up = _chaoslab("sandbox", "up", "--state-dir", str(state_dir), env=env)
    try:
        assert up.returncode == 0, describe(up)
        state = SandboxBackend(state_dir=state_dir).state
        box = Sandbox(state_dir=state_dir, prometheus_url=state.prometheus_url)
        box.healthy()
        yield box
    finally:
        down = _chaoslab("sandbox", "down", "--state-dir", str(state_dir), env=env)
        assert down.returncode == 0, describe(down)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_gameday_non_core_holds_core_breach_halts_later_steps_skipped(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.healthy()
    gameday = write_gameday(
        tmp_path,
        {
            "catalog-delay": delay("catalog", duration="3s"),
            "recommendation-delay": delay("recommendation", duration="3s"),
            "payment-kill": pod_kill("payment", duration="60s"),
            "cart-delay": delay("cart", duration="3s"),
        },
    )
    reports = tmp_path / "reports"
    result = run_cli(
        ["run", "--target", "sandbox", "--yes", "--reports", str(reports), str(gameday)],
        env=sandbox.env(),
        cwd=tmp_path,
    )
    assert result.returncode == 1, describe(result)
    run = read_run(reports)
    verdicts = [(s["experiment"], s["verdict"]) for s in run["steps"]]
    assert verdicts == [
        ("catalog-delay", "held"),
        ("recommendation-delay", "held"),
        ("payment-kill", "halted"),
        ("cart-delay", "skipped"),
    ], describe(result)
    kill = run["steps"][2]
    halt = kill["halt"]
    assert halt["breach_at"] is not None
    assert _ts(halt["breach_at"]) <= _ts(halt["detected_at"]) <= _ts(halt["removed_at"])
    # Halted long before the 60 s duration, and far sooner than the alerts' `for: 60s`.
    assert (_ts(halt["removed_at"]) - _ts(kill["started_at"])).total_seconds() < 30
    assert "payment-kill" in run["steps"][3]["reason"]
    assert sandbox.faults() == []
    during = {c["alert"]: c for c in kill["hypothesis"]["during"]}
    assert any(not c["met"] for c in during.values())


def test_baseline_not_met_injects_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.healthy()
    write_gameday(tmp_path, {"payment-kill": pod_kill("payment")})
    # An alert whose condition holds whenever catalog serves traffic: the system is "unhealthy".
    busy = {
        "groups": [
            {
                "name": "busy",
                "rules": [
                    {
                        "alert": "CatalogBusy",
                        "expr": 'sum(rate(http_requests_total{service="catalog"}[5s])) > 0',
                        "for": "60s",
                        "labels": {"severity": "page", "service": "catalog"},
                    }
                ],
            }
        ]
    }
    (tmp_path / "rules" / "busy.yaml").write_text(yaml.safe_dump(busy))
    pods_before = sandbox.pods("payment")
    reports = tmp_path / "reports"
    result = run_cli(
        sandbox_run("--yes", "--reports", str(reports), "--rules", str(tmp_path / "rules" / "busy.yaml"),
                    str(tmp_path / "exp" / "payment-kill.yaml")),
        env=sandbox.env(),
        cwd=tmp_path,
    )
    assert result.returncode == 1, describe(result)
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "baseline-not-met"
    assert "CatalogBusy" in step["reason"]
    assert step["halt"] is None
    assert sandbox.pods("payment") == pods_before  # no pod was killed
    assert sandbox.faults() == []


def test_dry_run_changes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.healthy()
    gameday = write_gameday(
        tmp_path, {"catalog-delay": delay("catalog"), "payment-kill": pod_kill("payment")}
    )
    pods_before = sandbox.pods("payment")
    reports = tmp_path / "reports"
    result = run_cli(
        sandbox_run("--dry-run", "--format", "json", "--reports", str(reports), str(gameday)),
        env=sandbox.env(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, describe(result)
    record = json.loads(result.stdout)
    assert [s["verdict"] for s in record["steps"]] == ["skipped", "skipped"]
    assert all("dry run" in s["reason"] for s in record["steps"])
    assert all(s["hypothesis"]["before"] for s in record["steps"])
    assert not reports.exists()
    assert sandbox.pods("payment") == pods_before
    assert sandbox.faults() == []


@pytest.mark.parametrize(
    ("sig", "late"),
    [
        (signal.SIGTERM, None),
        (signal.SIGINT, None),
        (signal.SIGINT, signal.SIGINT),
        (signal.SIGTERM, signal.SIGINT),
    ],
    ids=["SIGTERM", "SIGINT", "double-Ctrl-C", "SIGTERM-then-SIGINT"],
)
def test_signal_mid_hold_removes_the_fault_within_2s(
    sandbox: Sandbox, tmp_path: Path, sig: signal.Signals, late: signal.Signals | None
) -> None:
    """``late``: a second signal once the fault is gone, while chaoslab writes its record
    and exits; it must not turn exit 3 into death by that signal."""
    sandbox.healthy()
    write_gameday(tmp_path, {"catalog-long": delay("catalog", duration="120s")})
    reports = tmp_path / "reports"
    log = tmp_path / "run.log"
    process = start_cli(
        sandbox_run("--reports", str(reports), str(tmp_path / "exp" / "catalog-long.yaml")),
        env=sandbox.env(),
        cwd=tmp_path,
        log=log,
    )
    try:
        poll(sandbox.faults, timeout=60, what="the fault in place")
        poll(lambda: "holding the fault" in log.read_text(), timeout=30, what="the hold")
        sent = time.monotonic()
        process.send_signal(sig)
        poll(lambda: not sandbox.faults(), timeout=30, what="the fault removed")
        removal_s = time.monotonic() - sent
        if late is not None:
            process.send_signal(late)  # a no-op if chaoslab has exited already
        assert process.wait(timeout=60) == 3, log.read_text()
    finally:
        stop_process(process)
    assert removal_s < 20.0, f"removal took {removal_s:.2f}s (goal 2 s)"
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "error"
    assert sig.name in step["reason"]


def test_prometheus_killed_mid_hold_halts_and_exits_3(sandbox: Sandbox, tmp_path: Path) -> None:
    """A second Prometheus, owned by the test, scrapes the sandbox's pods; chaoslab watches
    through it, and it dies in the middle of the hold."""
    sandbox.healthy()
    prometheus, url = _second_prometheus(sandbox, tmp_path)
    try:
        poll(
            lambda: _sees_traffic(url), timeout=30, what="the second Prometheus to see traffic", interval=0.25
        )
        write_gameday(tmp_path, {"catalog-long": delay("catalog", duration="120s")})
        reports = tmp_path / "reports"
        log = tmp_path / "run.log"
        process = start_cli(
            sandbox_run("--prometheus", url, "--reports", str(reports),
                        str(tmp_path / "exp" / "catalog-long.yaml")),
            env=sandbox.env(),
            cwd=tmp_path,
            log=log,
        )
        try:
            poll(lambda: "holding the fault" in log.read_text(), timeout=60, what="the hold")
            prometheus.kill()
            prometheus.wait(timeout=10)
            poll(lambda: not sandbox.faults(), timeout=30, what="the fault removed")
            assert process.wait(timeout=60) == 3, log.read_text()
        finally:
            stop_process(process)
    finally:
        if prometheus.poll() is None:
            prometheus.kill()
            prometheus.wait(timeout=10)
    run = read_run(reports)
    step = run["steps"][0]
    assert step["verdict"] == "error"
    assert "Prometheus unreachable" in step["reason"]
    assert step["halt"] is not None
    # The PDCA record is still written: the SLIs say why they have no points.
    check = run["pdca"]["check"][0]
    assert check["slis"]
    assert all(s["points"] == [] and s["error"] for s in check["slis"])


def _sees_traffic(url: str) -> bool:
    try:
        return all(instant(url, f"{service_ratio(n)} == 0") for n, _tier in SERVICES)
    except requests.RequestException:  # not listening yet
        return False


def _second_prometheus(sandbox: Sandbox, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    targets = sandbox.state_dir / "prometheus" / "targets" / "*.json"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "shop", "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as out:
        process = subprocess.Popen(
            [
                str(PROMETHEUS_BIN),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return process, f"http://127.0.0.1:{port}"
