"""A real sandbox for integration tests: up through the CLI in a temporary state
directory, always down again (and every recorded pid killed) in teardown.

Use it from a module-scoped fixture so each test module brings the shop up once::

    @pytest.fixture(scope="module")
    def shop(tmp_path_factory):
        with sandbox_up(tmp_path_factory.mktemp("sandbox")) as running:
            yield running
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from chaoslab.sandbox.backend import SandboxBackend
from chaoslab.sandbox.endpoints import Endpoint, get
from chaoslab.sandbox.procs import kill_all, read_pid_records
from chaoslab.sandbox.state import SandboxState, read_state

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = Path("/usr/bin/prometheus")
T = TypeVar("T")

# The shop's checkout SLO, firing at once (no `for:`) so a test sees the breach quickly.
RULES = """\
groups:
  - name: sandbox-test
    interval: 1s
    rules:
      - alert: CheckoutErrors
        expr: |
          (sum(rate(http_requests_total{namespace="shop",service="frontend",code=~"5.."}[10s])) or vector(0))
            / sum(rate(http_requests_total{namespace="shop", service="frontend"}[10s]))
          > 0.05
        labels: {service: frontend}
"""

# The default shop (one payment replica, no retry in cart), quicker to replace pods and
# lighter on a shared 2-core machine than the defaults.
TEST_CONFIG = """\
apiVersion: chaoslab/v1
kind: Sandbox
spec:
  restartDelay: 2s
  load: {rps: 10}
"""


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def chaoslab(
    *args: str, timeout: float = 90, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaoslab", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})})


def endpoint(url: str, name: str = "") -> Endpoint:
    host, port = urllib.parse.urlsplit(url).netloc.rsplit(":", 1)
    return Endpoint(pod=name, host=host, port=int(port))


def attempt(target: Endpoint, *, timeout: float = 1.0) -> int | str:
    """GET / once: the status, or the name of the error a caller would see."""
    try:
        return get(target, timeout_s=timeout)
    except Exception as exc:  # the error's name is the observation
        return type(exc).__name__


def timed(target: Endpoint, *, timeout: float = 2.0) -> tuple[int | str, float]:
    started = time.monotonic()
    status = attempt(target, timeout=timeout)
    return status, time.monotonic() - started


@dataclass
class RunningSandbox:
    state_dir: Path
    state: SandboxState
    backend: SandboxBackend

    def service(self, name: str) -> Endpoint:
        return endpoint(self.state.service_urls[name], name)

    def pods(self, service: str) -> list[dict[str, Any]]:
        return [p for p in self.backend.pods() if p["service"] == service]

    def pod_endpoint(self, pod: dict[str, Any]) -> Endpoint:
        return endpoint(f"http://{pod['address']}", pod["name"])

    def settled(self) -> bool:
        status = self.backend.status()
        return not status["faults"] and all(
            sum(p["ready"] for p in s["pods"]) == len(s["pods"]) == s["replicas"] for s in status["services"])

    def settle(self, *, timeout: float = 30) -> None:
        """Remove leftover faults and wait until every service has all its replicas ready."""
        for handle in self.backend.list_faults():
            self.backend.remove(handle, timeout=10)
        wait_for(self.settled, timeout=timeout, what="every service to have all its replicas ready")

    def slo_unmet(self) -> list[str]:
        """The shop's SLO alerts that a chaoslab probe would not pass right now."""
        from chaoslab.prometheus.client import PrometheusClient
        from chaoslab.prometheus.probes import check_alert
        from chaoslab.prometheus.rules import load_rules

        rules = load_rules([REPO / "experiments" / "rules" / "shop-slo.yaml"])
        with PrometheusClient(self.state.prometheus_url, timeout=5.0) as client:
            states = client.alerts()
            checks = [check_alert(client, alert=r.name, expr=r.expr, alert_states=states) for r in rules]
        return [c.reason for c in checks if not c.met]

    def wait_healthy(self, *, timeout: float = 90) -> None:
        """Wait until every SLO probe passes: after a fault or a Prometheus restart the rate
        windows need a few seconds of clean samples again."""
        wait_for(lambda: not self.slo_unmet(), timeout=timeout, what="every shop SLO to hold", interval=0.5)

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.state.prometheus_url}/api/v1/query?query={urllib.parse.quote(expr)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
        return result

    def alert_state(self, name: str) -> str:
        with urllib.request.urlopen(f"{self.state.prometheus_url}/api/v1/alerts", timeout=5) as response:
            alerts = json.loads(response.read())["data"]["alerts"]
        states = {a["state"] for a in alerts if a["labels"].get("alertname") == name}
        return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"


def _logs(state_dir: Path) -> str:
    parts = []
    for log in sorted((state_dir / "logs").glob("*.log")):
        with contextlib.suppress(OSError):
            parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
    return "\n".join(parts)


@contextlib.contextmanager
def sandbox_up(
    state_dir: Path, *, config: str | Path | None = TEST_CONFIG, rules: str = RULES
) -> Iterator[RunningSandbox]:
    """``chaoslab sandbox up`` in ``state_dir``; ``config`` is YAML text or a file path."""
    if not PROMETHEUS.exists():
        pytest.skip(f"{PROMETHEUS} is not installed (apt-get install prometheus)")
    rules_file = state_dir.parent / f"{state_dir.name}-rules.yaml"
    rules_file.write_text(rules, encoding="utf-8")
    args = ["sandbox", "up", "--state-dir", str(state_dir), "--rules", str(rules_file)]
    if isinstance(config, Path):
        args += ["--config", str(config)]
    elif config is not None:
        config_file = state_dir.parent / f"{state_dir.name}-sandbox.yaml"
        config_file.write_text(config, encoding="utf-8")
        args += ["--config", str(config_file)]
    try:
        proc = chaoslab(*args)
        if proc.returncode != 0:
            pytest.fail(f"sandbox up failed ({proc.returncode}): {proc.stdout}{proc.stderr}\n"
                        f"{_logs(state_dir)}")
        state = read_state(state_dir)
        assert state is not None
        yield RunningSandbox(state_dir=state_dir, state=state, backend=SandboxBackend(state))
    finally:
        started = read_pid_records(state_dir)
        chaoslab("sandbox", "down", "--state-dir", str(state_dir))
        # Belt and braces: nothing the sandbox started may outlive the tests.
        kill_all(started, grace_s=1.0)
