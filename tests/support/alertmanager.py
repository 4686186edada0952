"""The real Alertmanager for tests: ``/usr/bin/prometheus-alertmanager`` alone (no cluster)
on a free port on 127.0.0.1, with a route and a receiver that sends nothing anywhere, and
its silences read back over its API v2.

Import explicitly: ``from tests.support.alertmanager import ...``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.prometheus import free_port

ALERTMANAGER_BIN = Path("/usr/bin/prometheus-alertmanager")
CONFIG = """\
route:
  receiver: "null"
  group_wait: 0s
receivers:
  - name: "null"
"""


def require_alertmanager() -> None:
    if not ALERTMANAGER_BIN.exists():
        pytest.skip(f"{ALERTMANAGER_BIN} is absent (apt-get install prometheus-alertmanager; "
                    "`make test` installs it)")


@dataclass
class AlertmanagerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate by PID; kill if it does not exit in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)

    def silences(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v2/silences", timeout=5)
        response.raise_for_status()
        return list(response.json())

    def chaoslab_silences(self, state: str | None = None) -> list[dict[str, Any]]:
        """The silences created by chaoslab, optionally only those in ``state``."""
        return [s for s in self.silences()
                if s["createdBy"] == "chaoslab" and (state is None or s["status"]["state"] == state)]

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_alertmanager(workdir: Path, *, timeout: float = 30.0) -> AlertmanagerProcess:
    """Start Alertmanager and wait for ``/-/ready``. The caller stops it."""
    require_alertmanager()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    config.write_text(CONFIG)
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        log_path = workdir / f"alertmanager-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(ALERTMANAGER_BIN), f"--config.file={config}", f"--storage.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        am = AlertmanagerProcess(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"{am.url}/-/ready", timeout=1).status_code == 200:
                    return am
            except requests.RequestException:
                pass
            time.sleep(0.05)
        am.stop()
    pytest.fail(f"Alertmanager did not become ready: {am.log_tail()}")


def running_alertmanager(workdir: Path) -> Iterator[AlertmanagerProcess]:
    """For a fixture: ``yield from running_alertmanager(tmp)``; stopped by PID afterwards."""
    am = start_alertmanager(workdir)
    try:
        yield am
    finally:
        am.stop()
