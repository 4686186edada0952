"""One pod of the shop: a small HTTP server in its own OS process.

``GET /`` does the service's work (the frontend's calls the whole graph),
``/metrics`` exports ``http_requests_total{service,code}`` and
``http_request_duration_seconds{service}``, ``/healthz`` answers readiness.
Run by the supervisor as ``python -m chaoslab.sandbox.service`` with argv[0]
set to the pod name and the pod's spec in ``CHAOSLAB_POD`` (JSON).
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest

from chaoslab.sandbox.endpoints import ENDPOINTS_FILE, EndpointsView, call
from chaoslab.sandbox.procs import become

POD_ENV = "CHAOSLAB_POD"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
           0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
WORK_S = (0.002, 0.008)  # a leaf's simulated work per request
FAILED_DEPENDENCY = 503


@dataclass(frozen=True, slots=True, kw_only=True)
class Downstream:
    service: str
    fallback: bool
    timeout_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSpec:
    name: str
    service: str
    ip: str  # the loopback address this pod calls from, so faults can tell pods apart
    fd: int
    state_dir: Path
    parent: int | None
    retries: int
    calls: tuple[Downstream, ...]

    @classmethod
    def from_json(cls, text: str) -> PodSpec:
        raw = json.loads(text)
        return cls(name=raw["name"], service=raw["service"], ip=raw["ip"], fd=int(raw["fd"]),
                   state_dir=Path(raw["state_dir"]), parent=raw.get("parent"), retries=int(raw["retries"]),
                   calls=tuple(Downstream(**c) for c in raw["calls"]))

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "service": self.service, "ip": self.ip, "fd": self.fd,
                           "state_dir": str(self.state_dir), "parent": self.parent, "retries": self.retries,
                           "calls": [{"service": c.service, "fallback": c.fallback, "timeout_s": c.timeout_s}
                                     for c in self.calls]})


class Pod:
    """The service logic and its metrics."""

    def __init__(self, spec: PodSpec, view: EndpointsView) -> None:
        self.spec = spec
        self.view = view
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter("http_requests", "HTTP requests served, by status code.",
                                ("service", "code"), registry=self.registry)
        self.duration = Histogram("http_request_duration_seconds", "Time to serve GET /.",
                                  ("service",), buckets=BUCKETS, registry=self.registry)
        self.dependency = Counter("shop_dependency_calls", "Calls to downstream services, by outcome.",
                                  ("service", "dependency", "outcome"), registry=self.registry)
        # Zero-valued series from the start, so rate() sees the first error too.
        for code in ("200", str(FAILED_DEPENDENCY)):
            self.requests.labels(spec.service, code)
        for dep in spec.calls:
            for outcome in ("ok", "error", "fallback"):
                self.dependency.labels(spec.service, dep.service, outcome)

    def serve(self) -> tuple[int, dict[str, Any]]:
        """The work behind GET /: (status, body)."""
        body: dict[str, Any] = {"service": self.spec.service, "pod": self.spec.name}
        if not self.spec.calls:
            time.sleep(random.uniform(*WORK_S))
            return 200, body
        for dep in self.spec.calls:
            result = call(self.view, dep.service, timeout_s=dep.timeout_s, retries=self.spec.retries,
                          source_ip=self.spec.ip)
            if result.ok:
                self.dependency.labels(self.spec.service, dep.service, "ok").inc()
                body[dep.service] = result.pod
            elif dep.fallback:
                self.dependency.labels(self.spec.service, dep.service, "fallback").inc()
                body[dep.service] = "fallback"
            else:
                self.dependency.labels(self.spec.service, dep.service, "error").inc()
                body["error"] = f"{dep.service} failed: {result.error}"
                return FAILED_DEPENDENCY, body
        return 200, body


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else small responses wait ~40 ms for delayed ACKs
    pod: Pod

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._reply(200, b"ok\n", "text/plain")
        elif self.path == "/metrics":
            self._reply(200, generate_latest(self.pod.registry), "text/plain; version=0.0.4")
        elif self.path == "/" or self.path.startswith("/?"):
            started = time.perf_counter()
            code, body = self.pod.serve()
            service = self.pod.spec.service
            self.pod.duration.labels(service).observe(time.perf_counter() - started)
            self.pod.requests.labels(service, str(code)).inc()
            self._reply(code, json.dumps(body).encode() + b"\n", "application/json")
        else:
            self._reply(404, b"not found\n", "text/plain")

    def _reply(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # 20 requests a second would drown the log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A caller that timed out and hung up is routine under chaos, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(spec: PodSpec) -> None:
    view = EndpointsView(spec.state_dir / ENDPOINTS_FILE)
    handler = type("Handler", (_Handler,), {"pod": Pod(spec, view)})
    server = _Server(("127.0.0.1", 0), handler, bind_and_activate=False)
    server.socket.close()
    # The supervisor bound and listens on this socket; it is inherited, not re-bound.
    server.socket = socket.socket(fileno=spec.fd)
    server.server_address = server.socket.getsockname()
    server.serve_forever(poll_interval=1.0)


def main() -> None:
    spec = PodSpec.from_json(os.environ[POD_ENV])
    become(spec.name, parent=spec.parent)
    serve(spec)


if __name__ == "__main__":
    main()
