"""A private sandbox for the run benchmarks: up in a temporary state directory, down at the end."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RULES = REPO_ROOT / "experiments" / "rules" / "shop-slo.yaml"


def chaoslab(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "chaoslab", *args],
        env=env,
        text=True,
        capture_output=True,
        check=False,
        cwd=REPO_ROOT,
    )
    if check and result.returncode != 0:
        raise SystemExit(
            f"chaoslab {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def _all_quiet(prometheus_url: str) -> bool:
    """Every shop service has traffic and no error in the last 10 s."""
    expr = 'sum by (service) (rate(http_requests_total{namespace="shop", code=~"5.."}[10s]))'
    query = urllib.parse.urlencode({"query": f"({expr}) > 0"})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=5) as response:
        errors = json.load(response)["data"]["result"]
    traffic = urllib.parse.urlencode(
        {"query": "count(sum by (service) (rate(http_requests_total[10s])) > 0)"}
    )
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{traffic}", timeout=5) as response:
        served = json.load(response)["data"]["result"]
    return not errors and bool(served) and float(served[0]["value"][1]) >= 5


def wait_quiet(prometheus_url: str, *, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _all_quiet(prometheus_url):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("the sandbox did not settle (errors or no traffic)")


@contextlib.contextmanager
def sandbox() -> Iterator[tuple[dict[str, str], str]]:
    """(environment for chaoslab/chaos, Prometheus URL) of a fresh sandbox."""
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOSLAB_")}
        env.update(CHAOSLAB_SANDBOX_DIR=str(Path(tmp) / "state"), NO_COLOR="1")
        chaoslab("sandbox", "up", env=env)
        try:
            status = json.loads(chaoslab("sandbox", "status", "--format", "json", env=env).stdout)
            url = status["prometheus_url"]
            wait_quiet(url)
            yield env, url
        finally:
            chaoslab("sandbox", "down", env=env, check=False)
