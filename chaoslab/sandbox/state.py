"""Where a running sandbox is found: its state directory and ``state.json``.

One directory holds everything a sandbox needs to be found and stopped:
``state.json`` (URLs, pids, ports; rewritten by the supervisor whenever pods
change), ``pids.jsonl`` (every process ever started), ``endpoints.json``,
Prometheus' config, targets and TSDB, and ``logs/``. The directory is
``$CHAOSLAB_SANDBOX_DIR``, else ``$XDG_RUNTIME_DIR/chaoslab-sandbox``, else
``/tmp/chaoslab-sandbox-<uid>``; ``Settings.sandbox_state_dir`` and ``--state-dir``
override it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoslab.sandbox.procs import is_alive

DIR_ENV = "CHAOSLAB_SANDBOX_DIR"
SETTINGS_ENV = "CHAOSLAB_SANDBOX_STATE_DIR"  # the Settings field's own variable
STATE_FILE = "state.json"
INPUT_FILE = "sandbox.json"
LOCK_FILE = "lock"
FATAL_FILE = "fatal.txt"  # why the supervisor could not start (JSON: {"error": ...})
LOGS_DIR = "logs"


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    for key in (DIR_ENV, SETTINGS_ENV):
        if environ.get(key):
            return Path(environ[key])
    if environ.get("XDG_RUNTIME_DIR"):
        return Path(environ["XDG_RUNTIME_DIR"]) / "chaoslab-sandbox"
    return Path(tempfile.gettempdir()) / f"chaoslab-sandbox-{os.getuid()}"


def resolve_state_dir(state_dir: str | Path | None = None) -> Path:
    return Path(state_dir) if state_dir else default_state_dir()


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxState:
    """A snapshot of a sandbox as its supervisor last wrote it."""

    state_dir: Path
    supervisor_pid: int
    supervisor_start: int | None
    control_url: str
    prometheus_url: str
    frontend_url: str
    service_urls: Mapping[str, str] = field(default_factory=dict)
    namespace: str = "shop"
    pids: Mapping[str, int] = field(default_factory=dict)  # supervisor, prometheus, loadgen, <pod name>
    ports: tuple[int, ...] = ()  # every port a sandbox process listens on
    config_path: str | None = None
    rules: tuple[str, ...] = ()
    load_rps: float = 0.0
    phase: str = "starting"  # starting | running | stopping
    started_at: datetime | None = None

    @property
    def running(self) -> bool:
        return is_alive(self.supervisor_pid, self.supervisor_start)

    @classmethod
    def from_json(cls, state_dir: Path, raw: Mapping[str, Any]) -> SandboxState:
        started = raw.get("started_at")
        return cls(
            state_dir=state_dir, supervisor_pid=int(raw["supervisor_pid"]),
            supervisor_start=raw.get("supervisor_start"), control_url=raw["control_url"],
            prometheus_url=raw["prometheus_url"], frontend_url=raw["frontend_url"],
            service_urls=dict(raw.get("service_urls", {})), namespace=raw.get("namespace", "shop"),
            pids={str(k): int(v) for k, v in raw.get("pids", {}).items()},
            ports=tuple(int(p) for p in raw.get("ports", ())), config_path=raw.get("config_path"),
            rules=tuple(raw.get("rules", ())), load_rps=float(raw.get("load_rps", 0.0)),
            phase=raw.get("phase", "starting"),
            started_at=datetime.fromisoformat(started) if started else None,
        )


def read_state(state_dir: Path) -> SandboxState | None:
    """The last state written in ``state_dir``, alive or not."""
    try:
        raw = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        return SandboxState.from_json(state_dir, raw)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_state(state_dir: Path | None = None) -> SandboxState | None:
    """The running sandbox in ``state_dir`` (default: the default state directory), or None."""
    state = read_state(resolve_state_dir(state_dir))
    if state is None or not state.running:
        return None
    return state


def write_json(path: Path, payload: Any) -> None:
    """Replace ``path`` atomically: readers see the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
