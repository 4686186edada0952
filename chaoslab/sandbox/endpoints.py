"""Service discovery inside the sandbox: the endpoints file and the calls made with it.

The supervisor publishes the ready pods of every service (their proxy addresses)
in ``endpoints.json`` in the state directory, replacing the file atomically.
Callers re-read it at most every half second, so a killed pod keeps receiving
calls, which fail, until the caller notices — as with Kubernetes endpoints.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ENDPOINTS_FILE = "endpoints.json"
REFRESH_S = 0.5
RETRY_PAUSE_S = 0.02


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    pod: str
    host: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CallResult:
    ok: bool
    status: int | None
    attempts: int
    error: str | None = None
    pod: str | None = None


def write_endpoints(path: Path, services: Mapping[str, Sequence[Endpoint]]) -> None:
    payload = {name: [{"pod": e.pod, "host": e.host, "port": e.port} for e in eps]
               for name, eps in services.items()}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"services": payload}), encoding="utf-8")
    os.replace(tmp, path)


class EndpointsView:
    """A caller's view of the endpoints file, refreshed lazily. Thread-safe."""

    def __init__(self, path: Path, *, refresh_s: float = REFRESH_S) -> None:
        self._path = path
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp: int | None = None
        self._services: dict[str, list[Endpoint]] = {}
        self._cursor: dict[str, int] = {}

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._refresh_s:
            return
        self._checked = now
        try:
            stamp = os.stat(self._path).st_mtime_ns
            if stamp == self._stamp:
                return
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # keep the last good view; the supervisor rewrites the file atomically
        self._stamp = stamp
        self._services = {name: [Endpoint(pod=e["pod"], host=e["host"], port=int(e["port"])) for e in eps]
                          for name, eps in raw.get("services", {}).items()}

    def endpoints(self, service: str) -> list[Endpoint]:
        with self._lock:
            self._refresh()
            return list(self._services.get(service, ()))

    def pick(self, service: str, *, avoid: Sequence[str] = ()) -> Endpoint | None:
        """The next endpoint, round-robin, preferring pods not in ``avoid``."""
        with self._lock:
            self._refresh()
            candidates = self._services.get(service) or []
            fresh = [e for e in candidates if e.pod not in avoid] or candidates
            if not fresh:
                return None
            cursor = self._cursor.get(service, 0)
            self._cursor[service] = cursor + 1
            return fresh[cursor % len(fresh)]


def get(endpoint: Endpoint, *, path: str = "/", timeout_s: float, source_ip: str | None = None) -> int:
    """One GET; returns the status. Raises OSError or http.client errors."""
    source = (source_ip, 0) if source_ip else None
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout_s, source_address=source)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def call(
    view: EndpointsView, service: str, *, timeout_s: float, retries: int = 0,
    source_ip: str | None = None, path: str = "/",
) -> CallResult:
    """GET a service through its endpoints, retrying on another pod when asked to."""
    tried: list[str] = []
    error = "no ready endpoints"
    status = None
    for attempt in range(1, retries + 2):
        if attempt > 1:
            time.sleep(RETRY_PAUSE_S)
        endpoint = view.pick(service, avoid=tried)
        if endpoint is None:
            continue
        tried.append(endpoint.pod)
        try:
            status = get(endpoint, path=path, timeout_s=timeout_s, source_ip=source_ip)
        except (OSError, http.client.HTTPException) as exc:
            error = f"{endpoint.pod}: {type(exc).__name__}: {exc}"
            status = None
            continue
        if status < 500:
            return CallResult(ok=True, status=status, attempts=attempt, pod=endpoint.pod)
        error = f"{endpoint.pod}: HTTP {status}"
    return CallResult(ok=False, status=status, attempts=retries + 1, error=error,
                      pod=tried[-1] if tried else None)
