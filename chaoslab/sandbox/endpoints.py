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
import socket
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
    """One GET; returns the status.

    ``timeout_s`` bounds the whole call, from connect to the last byte, like a client's
    request timeout: a per-read socket timeout would let a response that trickles in
    (loss, bandwidth) run past it. Raises ``TimeoutError`` when out of time, other
    ``OSError``s, or ``http.client.HTTPException`` for a reply that is not HTTP."""
    deadline = time.monotonic() + timeout_s
    source = (source_ip, 0) if source_ip else None
    request = f"GET {path} HTTP/1.0\r\nHost: {endpoint.host}\r\nConnection: close\r\n\r\n".encode()
    chunks = []
    with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout_s,
                                  source_address=source) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(_remaining(deadline, timeout_s))
        sock.sendall(request)
        while data := _recv(sock, deadline, timeout_s):
            chunks.append(data)
    head = b"".join(chunks).split(b"\r\n", 1)[0]
    if not head:
        raise http.client.RemoteDisconnected("the server closed the connection without a response")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise http.client.BadStatusLine(head.decode("latin-1"))
    return int(parts[1])


def _remaining(deadline: float, timeout_s: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"no complete response within {timeout_s:g}s")
    return left


def _recv(sock: socket.socket, deadline: float, timeout_s: float) -> bytes:
    sock.settimeout(_remaining(deadline, timeout_s))
    return sock.recv(65536)


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
