"""Alertmanager silences around faults, against the real Alertmanager: `chaoslab run
--target kubernetes` as a subprocess on the fake cluster, with the real Prometheus.

Renewal and lifetime are shortened through the settings (CHAOSLAB_SILENCE_RENEW_S,
CHAOSLAB_SILENCE_TTL_S) so that a renewal and a silence lapsing by itself happen within
a test's time.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.chaos_mesh import CHAOS
from tests.integration.test_run_kubernetes import Shop, k8s_run
from tests.integration.test_run_kubernetes import shop as shop_fixture  # noqa: F401  (fixture `shop`)
from tests.support.alertmanager import AlertmanagerProcess, running_alertmanager
from tests.support.gameday import (
    delay,
    describe,
    poll,
    read_run,
    run_cli,
    start_cli,
    stop_process,
    write_gameday,
)
from tests.support.prometheus import free_port

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(240)]

FAST = {"CHAOSLAB_SILENCE_RENEW_S": "0.5", "CHAOSLAB_SILENCE_TTL_S": "5"}
PAYMENT = {('alertname="PaymentErrors"', 'service="payment"', 'severity="page"'),
           ('alertname="ShopErrorBurn"', 'severity="critical"')}


@pytest.fixture
def am(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerProcess]:
    yield from running_alertmanager(tmp_path_factory.mktemp("alertmanager"))


def _matchers(silence: dict[str, Any]) -> tuple[str, ...]:
    ops = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
    return tuple(f'{m["name"]}{ops[(m["isRegex"], m.get("isEqual", True))]}"{m["value"]}"'
                 for m in silence["matchers"])


def _start(shop: Shop, tmp_path: Path, gameday: Path, *args: str, env: dict[str, str] | None = None,
           ) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "run.log"
    process = start_cli(k8s_run("--prometheus", shop.prometheus.url, "--yes", "--reports",
                                str(tmp_path / "reports"), *args, str(gameday)),
                        env={**shop.env(), **(env or {})}, cwd=tmp_path, log=log)
    return process, log


def test_a_steps_alerts_are_silenced_before_the_fault_renewed_while_held_and_expired_after(
    shop: Shop, tmp_path: Path, am: AlertmanagerProcess
) -> None:
    shop.healthy()
    gameday = write_gameday(tmp_path, {"payment-delay": delay("payment", duration="5s")})
    process, log = _start(shop, tmp_path, gameday, "--alertmanager", am.url, env=FAST)
    try:
        poll(shop.chaos, timeout=60, what="the fault")
        # The fault exists: its silences must exist already, matching exactly the step's alerts.
        active = am.chaoslab_silences("active")
        assert {_matchers(s) for s in active} == PAYMENT
        first_end = {s["id"]: s["endsAt"] for s in active}
        assert all("payment-delay" in s["comment"] for s in active)
        poll(lambda: any(s["endsAt"] > first_end.get(s["id"], "~") or s["id"] not in first_end
                         for s in am.chaoslab_silences("active")),
             timeout=30, what="a silence renewed during the hold", interval=0.2)
        assert process.wait(timeout=120) == 0, log.read_text()
    finally:
        stop_process(process)
    assert am.chaoslab_silences("active") == []
    assert am.chaoslab_silences("pending") == []
    run = read_run(tmp_path / "reports")
    recorded = run["silences"]
    assert {tuple(s["matchers"]) for s in recorded} == PAYMENT
    assert all(s["step"] == "payment-delay" for s in recorded)
    assert all(s["expired_at"] is not None for s in recorded)
    assert any(s["renewals"] >= 1 for s in recorded)
    expired = {s["id"] for s in am.chaoslab_silences("expired")}
    assert {s["id"] for s in recorded} <= expired  # the ids kept are those Alertmanager answered


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_hold_expires_the_silences(
    shop: Shop, tmp_path: Path, am: AlertmanagerProcess, sig: signal.Signals
) -> None:
    shop.healthy()
    gameday = write_gameday(tmp_path, {"catalog-long": delay("catalog", duration="120s")})
    process, log = _start(shop, tmp_path, gameday, "--alertmanager", am.url)
    try:
        poll(lambda: "holding the fault" in log.read_text(), timeout=60, what="the hold")
        assert am.chaoslab_silences("active")
        process.send_signal(sig)
        assert process.wait(timeout=60) == 3, log.read_text()
    finally:
        stop_process(process)
    assert am.chaoslab_silences("active") == []
    assert am.chaoslab_silences("expired")
    assert shop.chaos() == []


def _kill_mid_hold(shop: Shop, tmp_path: Path, am: AlertmanagerProcess, env: dict[str, str]) -> None:
    gameday = write_gameday(tmp_path, {"catalog-long": delay("catalog", duration="120s")})
    process, log = _start(shop, tmp_path, gameday, "--alertmanager", am.url, env=env)
    try:
        poll(lambda: "holding the fault" in log.read_text(), timeout=60, what="the hold")
        assert am.chaoslab_silences("active")
    finally:
        stop_process(process)  # SIGKILL: nothing of chaoslab runs any more
    result = run_cli(["cleanup", "--all"], env=shop.env(), cwd=tmp_path)  # the fault it left
    assert result.returncode == 0, describe(result)


def test_a_killed_runs_silence_ends_by_itself(shop: Shop, tmp_path: Path, am: AlertmanagerProcess) -> None:
    shop.healthy()
    _kill_mid_hold(shop, tmp_path, am, {"CHAOSLAB_SILENCE_RENEW_S": "0.5", "CHAOSLAB_SILENCE_TTL_S": "3"})
    poll(lambda: not am.chaoslab_silences("active"), timeout=30, what="the silences to lapse", interval=0.2)
    assert am.chaoslab_silences("expired")


def test_cleanup_expires_chaoslabs_silences_and_only_those(
    shop: Shop, tmp_path: Path, am: AlertmanagerProcess
) -> None:
    shop.healthy()
    other = requests.post(f"{am.url}/api/v2/silences", timeout=5, json={
        "matchers": [{"name": "alertname", "value": "Maintenance", "isRegex": False, "isEqual": True}],
        "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "ops", "comment": "someone else's"}).json()["silenceID"]
    _kill_mid_hold(shop, tmp_path, am, {})  # default lifetime: minutes
    assert am.chaoslab_silences("active")
    result = run_cli(["cleanup", "--all", "--alertmanager", am.url], env=shop.env(), cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "expired silence" in result.stdout
    assert am.chaoslab_silences("active") == []
    assert [s["status"]["state"] for s in am.silences() if s["id"] == other] == ["active"]


def test_alertmanager_down_stops_the_step_before_injection_with_exit_3(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    gameday = write_gameday(tmp_path, {"catalog-delay": delay("catalog")})
    since = shop.cluster.store.rv
    down = f"http://127.0.0.1:{free_port()}"
    result = run_cli(k8s_run("--prometheus", shop.prometheus.url, "--alertmanager", down, "--reports",
                             str(tmp_path / "reports"), str(gameday)), env=shop.env(), cwd=tmp_path)
    assert result.returncode == 3, describe(result)
    step = read_run(tmp_path / "reports")["steps"][0]
    assert step["verdict"] == "error"
    assert "cannot silence the alerts in Alertmanager" in step["reason"]
    assert "nothing was injected" in step["reason"]
    assert "Traceback" not in result.stderr
    assert [e for e in shop.cluster.store.events_after(since) if e.resource in CHAOS] == []


def test_alertmanager_down_with_required_false_warns_and_goes_on(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    down = f"http://127.0.0.1:{free_port()}"
    gameday = write_gameday(tmp_path, {"catalog-delay": delay("catalog", duration="2s")},
                            extra={"silence": {"alertmanager": down, "required": False}})
    result = run_cli(k8s_run("--prometheus", shop.prometheus.url, "--reports", str(tmp_path / "reports"),
                             str(gameday)), env=shop.env(), cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert "cannot silence the alerts, going on without silences" in result.stdout + result.stderr
    run = read_run(tmp_path / "reports")
    assert run["steps"][0]["verdict"] == "held"
    assert run["silences"] == []


def test_scope_gameday_silences_every_catalog_alert_once_for_the_whole_run(
    shop: Shop, tmp_path: Path, am: AlertmanagerProcess
) -> None:
    shop.healthy()
    silence = {"alertmanager": am.url, "scope": "gameday", "extraMatchers": ['cluster="test"']}
    gameday = write_gameday(tmp_path, {"catalog-delay": delay("catalog", duration="2s"),
                                       "recommendation-delay": delay("recommendation", duration="2s")},
                            extra={"silence": silence})
    result = run_cli(k8s_run("--prometheus", shop.prometheus.url, "--reports", str(tmp_path / "reports"),
                             str(gameday)), env=shop.env(), cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    run = read_run(tmp_path / "reports")
    assert [s["verdict"] for s in run["steps"]] == ["held", "held"]
    recorded = run["silences"]
    names = {m for s in recorded for m in s["matchers"] if m.startswith("alertname=")}
    assert names == {'alertname="FrontendErrors"', 'alertname="CartErrors"', 'alertname="PaymentErrors"',
                     'alertname="ShopErrorBurn"'}
    assert all('cluster="test"' in s["matchers"] for s in recorded)
    assert all(s["step"] is None and s["expired_at"] is not None for s in recorded)
    # Made once for both steps: Alertmanager holds exactly these, all expired now.
    assert {s["id"] for s in am.chaoslab_silences()} == {s["id"] for s in recorded}
    assert am.chaoslab_silences("active") == []
