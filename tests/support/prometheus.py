"""Test helpers around a real Prometheus: a controllable shop exporter, the real
``/usr/bin/prometheus`` on a free port, and small scripted HTTP servers standing in
for Prometheus where a real one cannot misbehave on demand (headers, errors, slowness).

Import explicitly: ``from tests.support.prometheus import ...``.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

PROMETHEUS_BIN = Path("/usr/bin/prometheus")
PROMTOOL_BIN = Path("/usr/bin/promtool")
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

T = TypeVar("T")


def require_prometheus() -> None:
    if not PROMETHEUS_BIN.exists():
        pytest.skip(f"{PROMETHEUS_BIN} is absent (apt-get install prometheus; `make test` installs it)")


def require_promtool() -> str:
    found = shutil.which("promtool") or (str(PROMTOOL_BIN) if PROMTOOL_BIN.exists() else None)
    if found is None:
        pytest.skip("promtool is absent (apt-get install prometheus; `make test` installs it)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


# --- a shop service's metrics, driven by the test --------------------------------------------


class ShopExporter:
    """Simulated traffic of one shop service: at each scrape the counters advance by the time
    elapsed × ``rps``; a share ``error_ratio`` is answered 500, every request takes ``latency_s``.
    The code="500" series appears only once there was an error, as with a real client library."""

    def __init__(self, service: str, *, rps: float = 20.0, error_ratio: float = 0.0, latency_s: float = 0.02):
        self.service = service
        self.rps = rps
        self.error_ratio = error_ratio
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._counts = {"200": 0.0}
        self._buckets = dict.fromkeys(BUCKETS, 0.0)
        self._total = self._sum = 0.0
        self._server: Any = None

    def set(self, *, error_ratio: float | None = None, latency_s: float | None = None) -> None:
        with self._lock:
            self._advance()
            if error_ratio is not None:
                self.error_ratio = error_ratio
            if latency_s is not None:
                self.latency_s = latency_s

    def _advance(self) -> None:
        now = time.monotonic()
        requests_ = self.rps * (now - self._last)
        self._last = now
        errors = requests_ * self.error_ratio
        self._counts["200"] += requests_ - errors
        if errors:
            self._counts["500"] = self._counts.get("500", 0.0) + errors
        for le in BUCKETS:
            if self.latency_s <= le:
                self._buckets[le] += requests_
        self._total += requests_
        self._sum += requests_ * self.latency_s

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self._advance()
            counter = CounterMetricFamily("http_requests", "HTTP requests served", labels=["service", "code"])
            for code, value in sorted(self._counts.items()):
                counter.add_metric([self.service, code], value)
            histogram = HistogramMetricFamily(
                "http_request_duration_seconds", "HTTP request latency", labels=["service"]
            )
            buckets = [(f"{le:g}", value) for le, value in self._buckets.items()] + [("+Inf", self._total)]
            histogram.add_metric([self.service], buckets, self._sum)
        yield counter
        yield histogram

    def start(self) -> int:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)  # type: ignore[arg-type]
        self._server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        return self.port

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- the real Prometheus ----------------------------------------------------------------------


@dataclass
class PrometheusProcess:
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate by PID; kill if it does not exit in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def prometheus_config(targets: Mapping[str, int], rule_files: Sequence[Path]) -> dict[str, Any]:
    """Scrape and evaluate every second; one job per service, labelled as the sandbox does."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": service,
                "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": "shop"}}],
            }
            for service, port in targets.items()
        ],
    }


def start_prometheus(
    workdir: Path,
    *,
    targets: Mapping[str, int],
    rule_files: Sequence[Path] = (),
    timeout: float = 30.0,
    args: Sequence[str] = (),
) -> PrometheusProcess:
    """Start ``/usr/bin/prometheus`` on 127.0.0.1 and wait for ``/-/ready``. The caller stops it.
    ``args`` are extra flags (``--storage.tsdb.retention.time=30d`` for backfilled history)."""
    require_prometheus()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(targets, rule_files)))
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        log_path = workdir / f"prometheus-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(PROMETHEUS_BIN),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    *args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        prom = PrometheusProcess(
            url=f"http://127.0.0.1:{port}", process=process, workdir=workdir, log_path=log_path
        )
        if _wait_ready(prom, timeout=timeout):
            return prom
        prom.stop()
    pytest.fail(f"Prometheus did not become ready:\n{prom.log_tail()}")


def _wait_ready(prom: PrometheusProcess, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if prom.process.poll() is not None:
            return False
        try:
            if requests.get(f"{prom.url}/-/ready", timeout=1).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return False


def instant(url: str, expr: str) -> list[dict[str, Any]]:
    """Raw instant query, independent of chaoslab's client (for test assertions)."""
    response = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    return list(response.json()["data"]["result"])


def active_alerts(url: str) -> dict[str, set[str]]:
    """alertname → states, straight from /api/v1/alerts."""
    response = requests.get(f"{url}/api/v1/alerts", timeout=5)
    response.raise_for_status()
    found: dict[str, set[str]] = {}
    for alert in response.json()["data"]["alerts"]:
        found.setdefault(alert["labels"]["alertname"], set()).add(alert["state"])
    return found


# --- scripted stand-ins -------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"status": "success", "data": {"alerts": []}})
    delay_s: float = 0.0


@dataclass
class Recorded:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class ScriptedServer:
    """A tiny HTTP server that records each request and answers by path (and ``query=``):
    ``replies[(path, query)]`` first, then ``replies[path]``, else an empty success."""

    def __init__(
        self, replies: Mapping[Any, Reply] | None = None, *, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.replies: dict[Any, Reply] = dict(replies or {})
        self.requests: list[Recorded] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                server.requests.append(Recorded(parts.path, query, dict(self.headers.items())))
                reply = server.reply_for(parts.path, query.get("query", [None])[0])
                if reply.delay_s:
                    time.sleep(reply.delay_s)  # the point of the test: a server too slow to answer
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile=tls[0], keyfile=tls[1])
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def reply_for(self, path: str, query: str | None) -> Reply:
        return self.replies.get((path, query)) or self.replies.get(path) or Reply(body=_empty_success(path))

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is absent: cannot make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def _empty_success(path: str) -> dict[str, Any]:
    if path.endswith("/alerts"):
        return {"status": "success", "data": {"alerts": []}}
    if path.endswith("/rules"):
        return {"status": "success", "data": {"groups": []}}
    return {"status": "success", "data": {"resultType": "vector", "result": []}}


def vector(*samples: tuple[Mapping[str, str], float | str]) -> Reply:
    """A successful instant-query answer holding ``samples``."""
    result = [{"metric": dict(labels), "value": [1700000000.0, str(value)]} for labels, value in samples]
    return Reply(body={"status": "success", "data": {"resultType": "vector", "result": result}})


def alerts(*states: tuple[str, str]) -> Reply:
    """A successful /api/v1/alerts answer with (alertname, state) instances."""
    items = [
        {
            "labels": {"alertname": name},
            "annotations": {},
            "state": state,
            "activeAt": "2026-11-27T10:15:00.123456789Z",
            "value": "1e+00",
        }
        for name, state in states
    ]
    return Reply(body={"status": "success", "data": {"alerts": items}})
