"""`chaoslab gate serve` as a subprocess over a real Prometheus scraping a controllable shop:
200 while healthy, 503 within seconds of errors, 503 when Prometheus is down or too slow,
400 on bad queries, one shared evaluation for many concurrent callers, a clean stop on
SIGTERM and SIGINT."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from chaoslab.prometheus.rules import load_rules
from tests.fakes.kube_store import PROMETHEUS_RULES
from tests.support.kube import FakeCluster, kube_fixture, kubeconfig_fixture  # noqa: F401
from tests.support.prometheus import (
    PrometheusProcess,
    Reply,
    ScriptedServer,
    ShopExporter,
    free_port,
    instant,
    require_prometheus,
    start_prometheus,
    wait_for,
)

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "experiments" / "rules" / "shop-slo.yaml"
CATALOG = REPO / "experiments" / "catalog.yaml"
SERVICES = ("frontend", "catalog", "recommendation", "cart", "payment")
CONDITIONS = 7  # the alerts of shop-slo.yaml


@dataclass
class Shop:
    prometheus: PrometheusProcess
    exporters: dict[str, ShopExporter]


@dataclass
class Gate:
    url: str
    process: subprocess.Popen[str]
    banner: str

    def get(self, path: str = "/gate", **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=10, **kwargs)

    def metric(self, name: str) -> float:
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0


def start_shop(workdir: Path) -> Shop:
    require_prometheus()
    exporters = {name: ShopExporter(name, rps=20.0) for name in SERVICES}
    ports = {name: exporter.start() for name, exporter in exporters.items()}
    try:
        prometheus = start_prometheus(workdir, targets=ports, rule_files=[RULES])
        return Shop(prometheus=prometheus, exporters=exporters)
    except BaseException:
        for exporter in exporters.values():
            exporter.stop()
        raise


def stop_shop(shop: Shop) -> None:
    shop.prometheus.stop()
    for exporter in shop.exporters.values():
        exporter.stop()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    started = start_shop(tmp_path_factory.mktemp("prometheus"))
    try:
        yield started
    finally:
        stop_shop(started)


@contextlib.contextmanager
def running_gate(prometheus_url: str, *extra: str, stop: signal.Signals = signal.SIGTERM,
                 rules: str = str(RULES), env: dict[str, str] | None = None) -> Iterator[Gate]:
    """The gate on a free port; stopped with ``stop`` at the end, which must exit 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "chaoslab", "gate", "serve", "--catalog", str(CATALOG), "--rules", rules,
         "--prometheus", prometheus_url, "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    )  # fmt: skip
    try:
        banner = process.stdout.readline() if process.stdout else ""
        assert "listening on http://" in banner, banner + (process.stderr.read() if process.stderr else "")
        url = banner.split("listening on ", 1)[1].split("/gate", 1)[0]
        yield Gate(url=url, process=process, banner=banner)
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def wait_status(gate: Gate, status: int, *, timeout: float, query: str = "") -> dict[str, Any]:
    """The JSON body of the first answer with ``status`` (a 503 Response is falsy, its body is not)."""

    def check() -> dict[str, Any] | None:
        response = gate.get(f"/gate{query}")
        return dict(response.json()) if response.status_code == status else None

    return wait_for(check, timeout=timeout, what=f"/gate{query} to answer {status}", interval=0.1)


def test_healthy_then_503_within_seconds_of_errors_then_healthy_again(shop: Shop) -> None:
    with running_gate(shop.prometheus.url, "--interval", "0.5") as gate:
        assert "127.0.0.1" in gate.banner  # the default bind address
        assert gate.get("/healthz").status_code == 200
        healthy = wait_status(gate, 200, timeout=90)  # Prometheus needs a few scrapes first
        assert healthy["healthy"] is True
        assert healthy["conditions"] == CONDITIONS
        assert wait_status(gate, 200, timeout=10, query="?service=cart")["service"] == "cart"

        shop.exporters["cart"].set(error_ratio=1.0)
        started = time.monotonic()
        expr = next(r.expr for r in load_rules([RULES]) if r.name == "CartHighErrorRate")
        wait_for(lambda: instant(shop.prometheus.url, expr), timeout=60, what="the condition in Prometheus")
        seen = time.monotonic()
        body = wait_status(gate, 503, timeout=60)
        took, lag = time.monotonic() - started, time.monotonic() - seen
        # Within one evaluation interval (0.5 s) of Prometheus seeing it; ten times looser here.
        assert lag < 10 * 0.5, f"the gate answered 503 {lag:.1f}s after Prometheus saw the breach"
        assert body["healthy"] is False
        cart = [b for b in body["breaches"] if b["alert"] == "CartHighErrorRate"]
        assert cart, body
        assert cart[0]["service"] == "cart"
        assert cart[0]["kind"] in ("condition", "alert-state")
        assert took < 30, f"the breach took {took:.1f}s to show"  # a hang guard; figures are in benchmarks/
        assert gate.get("/gate?service=payment").status_code == 503  # cart's SLO halts a fault anywhere
        assert gate.metric('chaoslab_gate_breaches_total{kind="condition"}') >= 1

        shop.exporters["cart"].set(error_ratio=0.0)
        wait_status(gate, 200, timeout=90)  # the 10 s windows forget the errors


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?service=nope", "unknown service 'nope'"),
        ("?service=", "exactly one non-empty"),
        ("?service=cart&service=payment", "exactly one"),
        ("?verbose=1", "unknown query parameter 'verbose'"),
        ("?service", "malformed query string"),
        ("?service=cart&&", "malformed query string"),
    ],
)
def test_bad_queries_get_400_with_a_message(shop: Shop, query: str, message: str) -> None:
    with running_gate(shop.prometheus.url) as gate:
        response = gate.get(f"/gate{query}")
        assert response.status_code == 400
        assert message in response.json()["error"]
        assert gate.get("/nowhere").status_code == 404


class CountingProxy:
    """Forwards GETs to Prometheus and counts them: what the gate costs Prometheus."""

    def __init__(self, upstream: str) -> None:
        self.count = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with proxy._lock:
                    proxy.count += 1
                answer = requests.get(upstream + self.path, timeout=10)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        serve = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                 daemon=True)
        serve.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def test_many_concurrent_callers_share_one_evaluation(shop: Shop) -> None:
    proxy = CountingProxy(shop.prometheus.url)
    try:
        with running_gate(proxy.url, "--interval", "1") as gate:
            wait_status(gate, 200, timeout=90)
            before_requests, before_evaluations = proxy.count, gate.metric("chaoslab_gate_evaluations_total")
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=50) as pool:
                codes = list(pool.map(lambda _: gate.get().status_code, range(500)))
            elapsed = time.monotonic() - started
            sent = proxy.count - before_requests
            evaluations = gate.metric("chaoslab_gate_evaluations_total") - before_evaluations
        assert codes.count(200) == len(codes)
        # Prometheus sees the loop's pace (an evaluation is one alerts call and at most two
        # queries per condition: its expression and its left-hand side), never one
        # evaluation per caller.
        assert evaluations <= elapsed / 1.0 + 2
        assert sent <= (evaluations + 1) * (1 + 2 * CONDITIONS)
        assert sent < len(codes) / 5
    finally:
        proxy.close()


def test_prometheus_down_means_503(tmp_path: Path) -> None:
    own = start_shop(tmp_path)
    try:
        with running_gate(own.prometheus.url, "--interval", "0.5", "--timeout", "1") as gate:
            wait_status(gate, 200, timeout=90)
            own.prometheus.stop()
            body = wait_status(gate, 503, timeout=30)
            assert {b["kind"] for b in body["breaches"]} == {"no-data"}
            assert "cannot reach Prometheus" in body["breaches"][0]["reason"]
            assert gate.metric("chaoslab_gate_prometheus_errors_total") >= 1
            assert gate.get("/healthz").status_code == 200  # the gate lives on; only its verdict changed
    finally:
        stop_shop(own)


def test_a_slow_prometheus_means_503() -> None:
    slow = Reply(delay_s=5.0)
    with ScriptedServer({"/api/v1/alerts": slow, "/api/v1/query": slow}) as prometheus, \
            running_gate(prometheus.url, "--interval", "0.2", "--timeout", "0.5", stop=signal.SIGINT) as gate:
        body = wait_status(gate, 503, timeout=30)
        reasons = " ".join(b["reason"] for b in body["breaches"])
        assert "no answer within 0.5s" in reasons or "no evaluation has finished yet" in reasons
        wait_for(lambda: "no answer within 0.5s" in gate.get().text, timeout=30, what="the timeout reason")


def test_rules_from_prometheusrule_objects_in_the_cluster(kube: FakeCluster, kubeconfig: Path) -> None:
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "payment-slo", "namespace": "monitoring"},
            "spec": {"groups": [{"name": "slo", "rules": [
                {"alert": "PaymentErrors", "expr": 'error_ratio{service="payment"} > 0.01',
                 "labels": {"severity": "page"}}]}]}}
    kube.store.create(PROMETHEUS_RULES, "monitoring", rule)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    # A Prometheus that knows no such series: the gate must say so, naming the cluster's alert.
    with ScriptedServer() as prometheus, \
            running_gate(prometheus.url, "--interval", "0.2", rules="k8s://monitoring/", env=env) as gate:
        assert "(1 conditions, 5 services" in gate.banner
        breaches = wait_for(lambda: [b for b in gate.get().json()["breaches"] if b["kind"] != "stale"],
                            timeout=30, what="a judged breach")
        assert [(b["alert"], b["service"]) for b in breaches] == [("PaymentErrors", "payment")]
        assert gate.get().status_code == 503


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--catalog", "missing.yaml"], "missing.yaml"),
        (["--port", "70000"], "--port"),
        (["--interval", "0"], "--interval"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], field: str) -> None:
    base = {"--catalog": str(CATALOG), "--port": "0", "--interval": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = [a for pair in base.items() for a in pair]
    done = subprocess.run(
        [sys.executable, "-m", "chaoslab", "gate", "serve", "--rules", str(RULES),
         "--prometheus", "http://127.0.0.1:9", *argv],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert field in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_in_use_exits_3() -> None:
    port = free_port()
    with contextlib.closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "chaoslab", "gate", "serve", "--catalog", str(CATALOG),
             "--rules", str(RULES), "--prometheus", "http://127.0.0.1:9", "--port", str(port)],
            capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
