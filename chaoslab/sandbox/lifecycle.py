"""Bringing a sandbox up and down: what ``chaoslab sandbox up|down`` do.

``start_sandbox`` returns only when the supervisor runs every pod, Prometheus is
ready and every pod is an up target. ``stop_sandbox`` ends every process the
sandbox ever started, by recorded pid — the supervisor first, so it can stop
its children cleanly, then anything left (an unclean stop leaves orphans).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from chaoslab.errors import BackendError, InvalidInputError
from chaoslab.sandbox import prometheus
from chaoslab.sandbox.config import SandboxConfig, load_sandbox_config
from chaoslab.sandbox.control import ControlClient
from chaoslab.sandbox.procs import (
    PIDS_FILE,
    PidRecord,
    is_alive,
    kill_all,
    read_pid_records,
    record_pid,
    signal_record,
    spawn_python,
    wait_gone,
)
from chaoslab.sandbox.shop import NAMESPACE
from chaoslab.sandbox.state import (
    FATAL_FILE,
    INPUT_FILE,
    LOCK_FILE,
    LOGS_DIR,
    SandboxState,
    read_state,
    resolve_state_dir,
    write_json,
)

logger = logging.getLogger(__name__)

DEFAULT_RULES = Path("experiments/rules/shop-slo.yaml")
UP_TIMEOUT_S = 30.0
_RUNTIME_FILES = ("state.json", "endpoints.json", INPUT_FILE, "load.json", PIDS_FILE, FATAL_FILE)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpResult:
    state: SandboxState
    already_running: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DownResult:
    state_dir: Path
    stopped: tuple[str, ...]  # names of the processes that were still running
    was_running: bool
    stale: bool = False  # it had stopped uncleanly: only its leftovers were cleaned up


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One up or down at a time per state directory."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(state_dir / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def default_rules() -> list[Path]:
    return [DEFAULT_RULES.resolve()] if DEFAULT_RULES.exists() else []


def start_sandbox(
    *, state_dir: Path | None = None, config_path: Path | None = None,
    rules: Sequence[Path] | None = None, timeout_s: float = UP_TIMEOUT_S,
) -> UpResult:
    """Start a sandbox detached, or find the one already running in ``state_dir``."""
    directory = resolve_state_dir(state_dir)
    config = SandboxConfig()
    if config_path is not None:
        config = replace(load_sandbox_config(config_path), source=Path(config_path).resolve())
    rule_files = default_rules() if rules is None else [Path(r).resolve() for r in rules]
    for path in rule_files:
        if not path.is_file():
            raise InvalidInputError(path, "", "rule file not found")
    prometheus.check_rules(rule_files)
    prometheus.binary()  # a missing Prometheus is said plainly, before anything starts
    with _locked(directory):
        existing = read_state(directory)
        if existing is not None and existing.running:
            return UpResult(state=existing, already_running=True)
        _stop_processes(directory)  # leftovers of a sandbox that died
        _clear(directory)
        (directory / LOGS_DIR).mkdir(exist_ok=True)
        write_json(directory / INPUT_FILE, {"config": json.loads(config.to_json()),
                                            "rules": [str(p) for p in rule_files]})
        proc = spawn_python("chaoslab.sandbox.supervisor", title="chaoslab-sandbox",
                            args=("--state-dir", str(directory)), new_session=True,
                            log_path=directory / LOGS_DIR / "supervisor.log")
        supervisor = record_pid(directory, pid=proc.pid, role="supervisor", name="chaoslab-sandbox")
        try:
            state = _wait_up(directory, supervisor, timeout_s=timeout_s)
        except BaseException:
            _stop_processes(directory)
            raise
        return UpResult(state=state, already_running=False)


def _startup_failure(directory: Path) -> str:
    """Why the supervisor gave up: its own one-line reason, else the end of its log."""
    try:
        return str(json.loads((directory / FATAL_FILE).read_text(encoding="utf-8"))["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return _log_tail(directory, "supervisor.log") or "no log"


def _log_tail(directory: Path, name: str, lines: int = 5) -> str:
    try:
        text = (directory / LOGS_DIR / name).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _wait_up(directory: Path, supervisor: PidRecord, *, timeout_s: float) -> SandboxState:
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        if not is_alive(supervisor.pid, supervisor.start):
            raise BackendError(f"the sandbox supervisor exited during start-up: "
                               f"{_startup_failure(directory)}")
        state = read_state(directory)
        if state is not None and state.phase == "running":
            break
        time.sleep(0.1)
    else:
        raise BackendError(f"the sandbox did not start within {timeout_s:g}s "
                           f"(see {directory / LOGS_DIR / 'supervisor.log'})")
    status = ControlClient(state.control_url).status()
    expected = {p["metrics"] for s in status["services"] for p in s["pods"]}
    pods_missing = [s["name"] for s in status["services"]
                    if sum(p["ready"] for p in s["pods"]) < s["replicas"]]
    if pods_missing:
        raise BackendError(f"pods of {', '.join(pods_missing)} did not become ready "
                           f"(see {directory / LOGS_DIR / 'pods.log'})")
    remaining = max(1.0, deadline - time.monotonic())
    url = state.prometheus_url
    prometheus.wait_until(lambda: (prometheus.is_ready(url), "not ready"), timeout_s=remaining)
    remaining = max(1.0, deadline - time.monotonic())
    prometheus.wait_until(lambda: prometheus.targets_up(url, expected), timeout_s=remaining)
    remaining = max(1.0, deadline - time.monotonic())
    services = tuple(str(s["name"]) for s in status["services"])
    prometheus.wait_until(lambda: _slo_queries_have_data(url, state.rules, services), timeout_s=remaining)
    return read_state(directory) or state


def _slo_queries_have_data(url: str, rule_files: Sequence[str], services: Sequence[str]) -> tuple[bool, str]:
    """Every SLO condition (an alert bound to a shop service) can be evaluated: rate
    windows hold enough samples. Guards and other unbound alerts are judged by their
    state, where no data means not firing: nothing to wait for.

    Without this a game day started right after ``up`` would find its baseline
    "not met: no data" and, rightly, inject nothing."""
    from chaoslab.model import Selector, Service, Tier
    from chaoslab.prometheus.client import PrometheusClient
    from chaoslab.prometheus.hypothesis import binding_reason
    from chaoslab.prometheus.probes import check_alert
    from chaoslab.prometheus.rules import load_rules

    # Binding reads names and labels only; tier and selector do not matter here.
    shop = [Service(name=name, namespace=NAMESPACE, tier=Tier.CORE, selector=Selector()) for name in services]
    rules = [r for r in load_rules(list(rule_files)) if any(binding_reason(r, s) for s in shop)]
    with PrometheusClient(url, timeout=2.0) as client:
        states = client.alerts()
        checks = [check_alert(client, alert=r.name, expr=r.expr, alert_states=states) for r in rules]
    # Only a comparison has a value to wait for; other expressions are judged by presence.
    blind = [c.alert for c in checks if c.op is not None and c.value is None]
    return (not blind, "no data yet for " + ", ".join(blind))


def _stop_processes(directory: Path, *, timeout_s: float = 10.0) -> list[PidRecord]:
    """Stop every recorded process still alive: the supervisor gracefully, then the rest."""
    records = read_pid_records(directory)
    alive = [r for r in records if is_alive(r.pid, r.start)]
    supervisors = [r for r in alive if r.role == "supervisor"]
    for rec in supervisors:
        signal_record(rec, signal.SIGCONT)  # a stopped supervisor could not act on SIGTERM
        signal_record(rec, signal.SIGTERM)
    wait_gone(supervisors, timeout_s=timeout_s)
    left = kill_all([r for r in alive if is_alive(r.pid, r.start)], grace_s=1.0)
    if left:
        names = ", ".join(f"{r.name} (pid {r.pid})" for r in left)
        raise BackendError(f"could not stop: {names}")
    return alive


def _clear(directory: Path) -> None:
    for name in _RUNTIME_FILES:
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(directory / "prometheus", ignore_errors=True)


def stop_sandbox(*, state_dir: Path | None = None) -> DownResult:
    """Stop every process of the sandbox in ``state_dir`` and remove its runtime files (logs stay)."""
    directory = resolve_state_dir(state_dir)
    if not directory.exists():
        return DownResult(state_dir=directory, stopped=(), was_running=False)
    with _locked(directory):
        state = read_state(directory)
        was_running = state is not None and state.running
        stopped = _stop_processes(directory)
        _clear(directory)
    return DownResult(state_dir=directory, stopped=tuple(r.name for r in stopped), was_running=was_running,
                      stale=state is not None and not was_running)
