"""The gate's HTTP face: ``/gate`` turns the latest verdict into a status code that a Chaos
Mesh StatusCheck can judge, ``/healthz`` says the process lives, ``/metrics`` exposes the
gate's own counters.

- ``GET /gate``: 200 and a JSON verdict when no halt condition holds; 503 and the
  breaches otherwise (Prometheus unreachable, slow or erroring included: fail safe).
- ``GET /gate?service=NAME``: the conditions of a fault on that service; an unknown
  service, an unknown parameter or a malformed query string is 400 with a message.
- ``GET /healthz``: 200 while the server runs (whatever Prometheus says).
- ``GET /metrics``: Prometheus text format, from a registry of the gate's own.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from chaoslab.errors import PrometheusError
from chaoslab.gate.evaluator import Evaluation, GateEvaluator, UnknownServiceError

logger = logging.getLogger(__name__)

_PATHS = ("/gate", "/healthz", "/metrics")


class BadQueryError(ValueError):
    """A query string the gate does not understand: answered 400 with this message."""


@dataclass(frozen=True, slots=True)
class GateMetrics:
    """The gate's own metrics, in a registry of its own (no process-global state)."""

    registry: CollectorRegistry
    evaluations: Counter
    breaches: Counter
    prometheus_requests: Counter
    prometheus_errors: Counter
    evaluation_seconds: Histogram
    healthy: Gauge
    requests: Counter

    @classmethod
    def create(cls) -> GateMetrics:
        registry = CollectorRegistry(auto_describe=True)
        return cls(
            registry=registry,
            evaluations=Counter("chaoslab_gate_evaluations", "Evaluations of every halt condition",
                                registry=registry),
            breaches=Counter("chaoslab_gate_breaches", "Halt conditions found holding, by kind", ["kind"],
                             registry=registry),
            prometheus_requests=Counter("chaoslab_gate_prometheus_requests", "Requests sent to Prometheus",
                                        registry=registry),
            prometheus_errors=Counter("chaoslab_gate_prometheus_errors",
                                      "Prometheus requests that failed (unreachable, slow, error status)",
                                      registry=registry),
            evaluation_seconds=Histogram("chaoslab_gate_evaluation_seconds", "Time one evaluation took",
                                         registry=registry),
            healthy=Gauge("chaoslab_gate_healthy", "1 when the latest evaluation found no breach",
                          registry=registry),
            requests=Counter("chaoslab_gate_http_requests", "HTTP requests answered, by path and code",
                             ["path", "code"], registry=registry),
        )

    def observe(self, evaluation: Evaluation) -> None:
        self.evaluations.inc()
        self.evaluation_seconds.observe(evaluation.seconds)
        self.healthy.set(0 if evaluation.breaches else 1)
        for breach in evaluation.breaches:
            self.breaches.labels(kind=breach.kind).inc()


class CountingMetrics:
    """A ``MetricsSource`` that counts the requests it forwards and those that fail."""

    def __init__(self, inner: Any, metrics: GateMetrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.url: str = inner.url

    def alerts(self) -> Any:
        return self._count(self._inner.alerts)

    def query(self, expr: str, **kwargs: Any) -> Any:
        return self._count(lambda: self._inner.query(expr, **kwargs))

    def query_range(self, expr: str, **kwargs: Any) -> Any:
        return self._count(lambda: self._inner.query_range(expr, **kwargs))

    def _count(self, call: Any) -> Any:
        self._metrics.prometheus_requests.inc()
        try:
            return call()
        except PrometheusError:
            self._metrics.prometheus_errors.inc()
            raise


def parse_gate_query(query: str, services: tuple[str, ...]) -> str | None:
    """The service a ``/gate`` query asks about (None: all). Raises BadQueryError."""
    if not query:
        return None
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=True, max_num_fields=8)
    except ValueError as exc:
        raise BadQueryError(f"malformed query string {query!r}: {exc}") from exc
    unknown = sorted(set(params) - {"service"})
    if unknown:
        raise BadQueryError(f"unknown query parameter {unknown[0]!r}: /gate takes only service=NAME")
    values = params["service"]
    if len(values) != 1 or not values[0]:
        raise BadQueryError("service= needs exactly one non-empty service name")
    if values[0] not in services:
        raise BadQueryError(f"unknown service {values[0]!r}; the catalog has: {', '.join(services)}")
    return values[0]


class GateServer:
    """A threading HTTP server over a running ``GateEvaluator``."""

    def __init__(self, evaluator: GateEvaluator, metrics: GateMetrics, *, host: str, port: int) -> None:
        self.evaluator = evaluator
        self.metrics = metrics
        self._httpd = ThreadingHTTPServer((host, port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="chaoslab-gate-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, finish the requests in flight, release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def answer(self, path: str, query: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET."""
        if path == "/healthz":
            return 200, "text/plain; charset=utf-8", b"ok\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        if path != "/gate":
            return _json(HTTPStatus.NOT_FOUND, {"error": f"no such path {path!r}; try {', '.join(_PATHS)}"})
        try:
            service = parse_gate_query(query, self.evaluator.services)
            verdict = self.evaluator.verdict(service)
        except (BadQueryError, UnknownServiceError) as exc:
            return _json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        status = HTTPStatus.OK if verdict.healthy else HTTPStatus.SERVICE_UNAVAILABLE
        return _json(status, verdict.to_dict())


def _json(status: HTTPStatus, body: dict[str, Any]) -> tuple[int, str, bytes]:
    return int(status), "application/json", (json.dumps(body) + "\n").encode()


def _handler(server: GateServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a StatusCheck calls every second
        disable_nagle_algorithm = True  # or each answer waits ~40 ms for its ACK
        server_version = "chaoslab-gate"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            try:
                status, kind, body = server.answer(parts.path, parts.query)
            except Exception as exc:  # never a dropped connection: a failing gate answers 503
                logger.exception("gate request %s failed", self.path)
                failure = {"error": f"internal error: {exc}"}
                status, kind, body = _json(HTTPStatus.SERVICE_UNAVAILABLE, failure)
            known = parts.path if parts.path in _PATHS else "other"
            server.metrics.requests.labels(path=known, code=str(status)).inc()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s %s", self.address_string(), format % args)

    return Handler
