"""Game days on disk and `chaoslab run` as a subprocess, for the end-to-end run tests.

Writes a shop catalog, SLO rules with short windows (and ``for: 60s``, which chaoslab
must not wait for), experiments and a game day into a directory; runs the CLI as a
child process; reads back run.json.

Import explicitly: ``from tests.support.gameday import ...``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = (
    ("frontend", "core"),
    ("catalog", "non-core"),
    ("recommendation", "non-core"),
    ("cart", "core"),
    ("payment", "core"),
)
WINDOW = "5s"  # short rate windows: a breach shows within ~1 s, recovery within ~6 s


def error_ratio(matchers: str = "") -> str:
    """The share of 5xx answers over the short window, 0 (not no data) when none failed."""
    sep = ", " if matchers else ""
    errors = f'sum(rate(http_requests_total{{{matchers}{sep}code=~"5.."}}[{WINDOW}]))'
    return f"({errors} or vector(0)) / sum(rate(http_requests_total{{{matchers}}}[{WINDOW}]))"


def service_ratio(name: str) -> str:
    return error_ratio(f"service={json.dumps(name)}")


def slo_rules() -> dict[str, Any]:
    """Error-ratio alerts per core service plus a shop-wide critical one, all with ``for: 60s``."""
    rules = [
        {
            "alert": f"{name.capitalize()}Errors",
            "expr": f"{error_ratio(f'service={json.dumps(name)}')} > 0.05",
            "for": "60s",
            "labels": {"severity": "page", "service": name},
        }
        for name, tier in SERVICES
        if tier == "core"
    ]
    rules.append(
        {
            "alert": "ShopErrorBurn",
            "expr": f"{error_ratio()} > 0.2",
            "for": "60s",
            "labels": {"severity": "critical"},
        }
    )
    return {"groups": [{"name": "test-slo", "interval": "1s", "rules": rules}]}


def delay(service: str, duration: str = "4s") -> dict[str, Any]:
    return {
        "service": service,
        "fault": {
            "networkChaos": {
                "action": "delay",
                "mode": "all",
                "delay": {"latency": "50ms"},
                "duration": duration,
            }
        },
    }


def pod_kill(service: str, duration: str = "30s") -> dict[str, Any]:
    return {
        "service": service,
        "fault": {"podChaos": {"action": "pod-kill", "mode": "one", "gracePeriod": 0, "duration": duration}},
    }


def write_gameday(
    directory: Path,
    experiments: Mapping[str, Mapping[str, Any]],
    *,
    name: str = "test-day",
    gate: str = "stop",
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """catalog.yaml, rules/slo.yaml, exp/<name>.yaml and gameday.yaml; returns the game day."""
    (directory / "exp").mkdir(parents=True, exist_ok=True)
    (directory / "rules").mkdir(exist_ok=True)
    catalog = {
        "apiVersion": "chaoslab/v1",
        "kind": "Catalog",
        "metadata": {"name": "shop"},
        "spec": {
            "services": [
                {"name": n, "namespace": "shop", "tier": t, "selector": {"labelSelectors": {"app": n}}}
                for n, t in SERVICES
            ]
        },
    }
    _dump(directory / "catalog.yaml", catalog)
    _dump(directory / "rules" / "slo.yaml", slo_rules())
    for exp_name, spec in experiments.items():
        doc = {
            "apiVersion": "chaoslab/v1",
            "kind": "Experiment",
            "metadata": {"name": exp_name, "description": f"{exp_name} (test)"},
            "spec": {**spec, "hypothesis": {"rules": ["../rules/slo.yaml"]}},
        }
        _dump(directory / "exp" / f"{exp_name}.yaml", doc)
    gameday = {
        "apiVersion": "chaoslab/v1",
        "kind": "GameDay",
        "metadata": {"name": name},
        "spec": {
            "catalog": "catalog.yaml",
            "rules": ["rules/slo.yaml"],
            "experiments": [f"exp/{n}.yaml" for n in experiments],
            "gate": gate,
            "recoveryTimeout": "40s",
            **(extra or {}),
        },
    }
    path = directory / "gameday.yaml"
    _dump(path, gameday)
    return path


def _dump(path: Path, doc: Any) -> None:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


# --- the CLI as a child process ----------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOSLAB_")}
    env.update(NO_COLOR="1", PYTHONUNBUFFERED="1", **extra)
    return env


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = 150.0,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoslab", *args],
        env=dict(env),
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def start_cli(
    args: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "chaoslab", *args],
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Teardown: make sure the child is gone (by its PID)."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def read_run(reports: Path) -> dict[str, Any]:
    """The one run.json under ``reports``."""
    found = sorted(reports.glob("*/run.json"))
    assert len(found) == 1, f"expected one run under {reports}, found {found}"
    return dict(json.loads(found[0].read_text()))


def steps_by_name(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(s["journal"]).stem if s["journal"] else s["experiment"]: s for s in run["steps"]}


def poll(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


@dataclass(frozen=True)
class Timeline:
    """When a fault appeared and disappeared, as seen by polling the system under test."""

    injected: float
    removed: float

    @property
    def held_s(self) -> float:
        return self.removed - self.injected
