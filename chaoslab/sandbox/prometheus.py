"""The sandbox's Prometheus: configuration, file-based discovery, launch and readiness.

A real ``/usr/bin/prometheus`` scrapes every pod every second, evaluates the rule
files every second and discovers pods from ``targets/<service>.json``
(``file_sd_configs``), which the supervisor rewrites whenever pods change.
Targets carry ``job="<service>"``, ``namespace`` and ``pod`` labels.

``python -m chaoslab.sandbox.prometheus --parent PID -- ARGV...`` is the launcher:
it arms the parent-death signal and execs Prometheus, so the supervisor can
(re)start it from any thread without ``preexec_fn``, which is unsafe once threads run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chaoslab.errors import InvalidInputError, PrometheusError
from chaoslab.sandbox.procs import become, spawn_python

DEFAULT_BINARY = "/usr/bin/prometheus"
BINARY_ENV = "CHAOSLAB_PROMETHEUS_BIN"
TARGETS_DIR = "targets"


def binary() -> str:
    """The Prometheus executable: ``$CHAOSLAB_PROMETHEUS_BIN``, else ``prometheus`` on PATH, else
    /usr/bin/prometheus. ``PrometheusError`` saying how to get one when it is missing."""
    found = os.environ.get(BINARY_ENV) or shutil.which("prometheus") or DEFAULT_BINARY
    if not Path(found).is_file():
        raise PrometheusError(
            f"prometheus not found at {found}: install it (apt-get install prometheus) or set {BINARY_ENV}")
    if not os.access(found, os.X_OK):
        raise PrometheusError(f"{found} is not executable: set {BINARY_ENV} to the prometheus binary")
    return found


def check_rules(paths: Sequence[Path]) -> None:
    """``promtool check rules`` when promtool is installed: bad rules are bad input,
    found before anything starts rather than as a Prometheus that will not come up."""
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not paths or not Path(promtool).exists():
        return
    for path in paths:
        proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                              timeout=30, check=False)
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            detail = next((ln for ln in lines if str(path) in ln and ":" in ln and "Checking" not in ln),
                          lines[-1] if lines else "promtool check rules failed")
            raise InvalidInputError(path, "", detail.replace(f"{path}: ", "", 1))


def config_text(*, targets_dir: Path, rules: Sequence[Path]) -> str:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p.resolve()) for p in rules],
        "scrape_configs": [{
            "job_name": "shop",
            "file_sd_configs": [{"files": [str(targets_dir.resolve() / "*.json")], "refresh_interval": "1s"}],
        }],
    }
    return json.dumps(config, indent=2)  # JSON is YAML, and needs no YAML writer here


def write_targets(
    targets_dir: Path, *, service: str, namespace: str, pods: Sequence[tuple[str, str]]
) -> None:
    """``pods``: (pod name, host:port of its metrics) pairs."""
    groups = [{"targets": [address], "labels": {"job": service, "namespace": namespace, "pod": name}}
              for name, address in pods]
    path = targets_dir / f"{service}.json"
    tmp = targets_dir / f".{service}.json.tmp"  # not matched by *.json: never read half-written
    tmp.write_text(json.dumps(groups), encoding="utf-8")
    os.replace(tmp, path)


# The sandbox's Prometheus holds a few thousand series. Collecting garbage at 5x its live
# heap rather than 2x (Go's default) leaves it about a fifth less CPU per evaluation of a
# large catalog (benchmarks/bench_halt.py --synthetic 500), which on a small machine it
# shares with the shop and the watcher; the memory limit keeps it under 256 MiB all the
# same. Either variable set in the environment wins.
GO_RUNTIME = {"GOGC": "400", "GOMEMLIMIT": "256MiB"}


def launch(
    *, workdir: Path, port: int, rules: Sequence[Path], log_path: Path, parent: int,
) -> subprocess.Popen[bytes]:
    """Start Prometheus on 127.0.0.1:``port`` with its config and TSDB under ``workdir``.

    It dies with ``parent``: the launcher arms the parent-death signal, then execs it
    (same pid). A restart reuses ``workdir``, so the TSDB and its history survive."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / TARGETS_DIR).mkdir(exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(config_text(targets_dir=workdir / TARGETS_DIR, rules=rules), encoding="utf-8")
    args = (
        binary(), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=12h",
        "--log.level=warn",
    )
    go_runtime = {k: v for k, v in GO_RUNTIME.items() if k not in os.environ}
    return spawn_python(__name__, title="prometheus", log_path=log_path, env=go_runtime,
                        args=("--parent", str(parent), "--", *args))


def get_json(url: str, *, timeout_s: float = 2.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise PrometheusError(f"cannot read {url}: {exc}", url=url) from exc


def is_ready(url: str) -> bool:
    """Prometheus answers its readiness endpoint (and it is Prometheus answering)."""
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1.0) as response:
            return response.status == 200 and b"Prometheus" in response.read()
    except OSError:
        return False


def targets_up(url: str, expected: set[str]) -> tuple[bool, str]:
    """Whether every ``host:port`` in ``expected`` is an active target with health up."""
    data = get_json(f"{url}/api/v1/targets?state=active")
    health = {t["labels"].get("instance", ""): t.get("health") for t in data["data"]["activeTargets"]}
    missing = sorted(expected - set(health))
    down = sorted(a for a in expected if health.get(a) not in (None, "up"))
    if missing or down:
        return False, f"targets not discovered: {missing}; not up: {down}"
    return True, "all targets up"


def wait_until(check: Callable[[], tuple[bool, str]], *, timeout_s: float, interval_s: float = 0.2) -> str:
    """Poll ``check`` until it passes; PrometheusError with its last detail otherwise."""
    deadline = time.monotonic() + timeout_s
    detail = "not checked"
    while time.monotonic() < deadline:
        try:
            ok, detail = check()
        except PrometheusError as exc:
            ok, detail = False, str(exc)
        if ok:
            return detail
        time.sleep(interval_s)
    raise PrometheusError(f"Prometheus not ready after {timeout_s:g}s: {detail}")


def main(argv: Sequence[str] | None = None) -> None:
    """The launcher: ``--parent PID -- ARGV...``; never returns (exec or exit)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 4 or args[0] != "--parent" or args[2] != "--":
        raise SystemExit("usage: python -m chaoslab.sandbox.prometheus --parent PID -- ARGV...")
    become("prometheus", parent=int(args[1]))
    command = args[3:]
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
