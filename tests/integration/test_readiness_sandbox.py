"""Pod readiness in the hypothesis, in the sandbox: a pod that never comes back.

The sandbox here replaces a killed pod only after 600 s. Recommendation has two replicas
and the frontend falls back when it fails, so the SLOs hold through a pod-kill: only the
readiness check sees that a pod is missing afterwards.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gameday import (
    SERVICES,
    cli_env,
    describe,
    error_ratio,
    poll,
    read_run,
    run_cli,
    service_ratio,
    write_gameday,
)
from tests.support.prometheus import instant
from tests.support.sandbox import RunningSandbox, sandbox_up

pytestmark = [pytest.mark.sandbox, pytest.mark.prometheus, pytest.mark.timeout(300)]

NO_RESTART = """\
apiVersion: chaoslab/v1
kind: Sandbox
spec:
  services: {recommendation: {replicas: 2}}
  restartDelay: 600s
  load: {rps: 10}
"""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with sandbox_up(tmp_path_factory.mktemp("no-restart"), config=NO_RESTART) as running:
        running.settle(timeout=60)
        yield running


def _kill(readiness: bool | None = None) -> dict[str, object]:
    spec: dict[str, object] = {
        "service": "recommendation",
        "fault": {"podChaos": {"action": "pod-kill", "mode": "one", "gracePeriod": 0, "duration": "2s"}},
    }
    if readiness is not None:
        spec["readiness"] = readiness
    return spec


def _run(
    sandbox: RunningSandbox, directory: Path, spec: dict[str, object]
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    # Every SLO of the game day with data and no error: a service that has not been called
    # for the rate window yet has no data, which the baseline rightly refuses.
    exprs = [f"{error_ratio()} == 0", *(f"{service_ratio(n)} == 0" for n, _tier in SERVICES)]
    poll(lambda: all(instant(sandbox.state.prometheus_url, e) for e in exprs), timeout=90,
         what="every service called and none failing", interval=0.5)
    gameday = write_gameday(directory, {"recommendation-kill": spec}, extra={"recoveryTimeout": "6s"})
    reports = directory / "reports"
    result = run_cli(["run", "--target", "sandbox", "--reports", str(reports), str(gameday)],
                     env=cli_env(CHAOSLAB_SANDBOX_DIR=str(sandbox.state_dir)), cwd=directory)
    return result, read_run(reports)


def test_a_pod_that_never_comes_back_is_deviated_naming_it(sandbox: RunningSandbox, tmp_path: Path) -> None:
    before = {f"shop/{p['name']}" for p in sandbox.pods("recommendation")}
    assert len(before) == 2
    result, run = _run(sandbox, tmp_path / "on", _kill())
    assert result.returncode == 1, describe(result)
    step = run["steps"][0]
    assert step["verdict"] == "deviated", describe(result)
    (killed,) = step["pods"]["replaced"]
    assert killed in before
    assert f"{killed} is gone and not replaced" in step["reason"]
    assert "1 of 2 pods Running and Ready" in step["reason"]
    assert step["pods"]["added"] == []
    assert {f"shop/{p['name']}" for p in sandbox.pods("recommendation")} == before - {killed}

    # The same fault with readiness off for this experiment: the SLOs alone see nothing wrong.
    result, run = _run(sandbox, tmp_path / "off", _kill(readiness=False))
    assert result.returncode == 0, describe(result)
    step = run["steps"][0]
    assert step["verdict"] == "held"
    assert step["pods"] is None
