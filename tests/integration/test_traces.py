"""A sandbox run exporting its trace over OTLP/HTTP to a receiver in the test, which decodes
the protobuf ``ExportTraceServiceRequest`` as a collector would and checks that the span
tree matches the run (run.json)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.gameday import (
    cli_env,
    delay,
    describe,
    poll,
    read_run,
    run_cli,
    start_cli,
    stop_process,
    write_gameday,
)
from tests.support.sandbox import RunningSandbox, sandbox_up

pytestmark = [pytest.mark.sandbox, pytest.mark.prometheus, pytest.mark.timeout(300)]

PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"


class Receiver:
    """An OTLP/HTTP trace endpoint: POST /v1/traces, protobuf in, protobuf out."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.collect(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def collect(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append({
                            "name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(), "resource": resource,
                            "start": span.start_time_unix_nano,
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                            "events": [e.name for e in span.events],
                        })


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with sandbox_up(tmp_path_factory.mktemp("traced")) as running:
        running.settle(timeout=60)
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


def children(spans: list[dict[str, Any]], parent: dict[str, Any]) -> list[str]:
    """The names of ``parent``'s children, in the order they started."""
    return [s["name"] for s in sorted(spans, key=lambda s: s["start"]) if s["parent"] == parent["span_id"]]


def test_a_run_exports_one_trace_whose_spans_match_the_run(
    sandbox: RunningSandbox, receiver: Receiver, tmp_path: Path
) -> None:
    sandbox.wait_healthy()
    gameday = write_gameday(tmp_path, {"catalog-delay": delay("catalog", duration="2s"),
                                       "cart-delay": delay("cart", duration="2s")})
    env = cli_env(CHAOSLAB_SANDBOX_DIR=str(sandbox.state_dir), OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
                  OTEL_SERVICE_NAME="chaoslab-test", TRACEPARENT=f"00-{PARENT_TRACE}-{PARENT_SPAN}-01")
    result = run_cli(["run", "--target", "sandbox", "--yes", "--reports", str(tmp_path / "reports"),
                      str(gameday)], env=env, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    run = read_run(tmp_path / "reports")
    spans = receiver.spans  # flushed before the CLI exited: nothing to wait for
    assert run["trace_id"] == PARENT_TRACE
    assert {s["trace_id"] for s in spans} == {PARENT_TRACE}
    assert {s["resource"]["service.name"] for s in spans} == {"chaoslab-test"}
    (root,) = [s for s in spans if s["name"] == "chaoslab run"]
    assert root["parent"] == PARENT_SPAN
    assert root["attributes"]["chaoslab.run_id"] == run["run_id"]
    assert root["attributes"]["chaoslab.verdict"] == run["verdict"]
    assert children(spans, root) == ["stage non-core", "stage core"]
    for stage_name, step_name in (("stage non-core", "catalog-delay"), ("stage core", "cart-delay")):
        (stage,) = [s for s in spans if s["name"] == stage_name]
        assert children(spans, stage) == [f"step {step_name}"]
        (step_span,) = [s for s in spans if s["name"] == f"step {step_name}"]
        recorded = next(s for s in run["steps"] if s["experiment"] == step_name)
        assert step_span["attributes"]["chaoslab.verdict"] == recorded["verdict"] == "held"
        assert step_span["attributes"]["chaoslab.service"] == recorded["service"]
        assert step_span["attributes"]["chaoslab.fault"] == "NetworkChaos delay"
        assert step_span["attributes"]["chaoslab.blast_radius"] == "all"
        assert children(spans, step_span) == ["preflight", "baseline", "inject", "hold", "verify", "remove",
                                              "recover"]
    assert PARENT_TRACE in (tmp_path / "reports" / run["run_id"] / "report.md").read_text()


def test_without_an_endpoint_nothing_is_exported(
    sandbox: RunningSandbox, receiver: Receiver, tmp_path: Path
) -> None:
    sandbox.wait_healthy()
    gameday = write_gameday(tmp_path, {"catalog-delay": delay("catalog", duration="1s")})
    env = cli_env(CHAOSLAB_SANDBOX_DIR=str(sandbox.state_dir), OTEL_SERVICE_NAME="chaoslab-test")
    result = run_cli(["run", "--target", "sandbox", "--reports", str(tmp_path / "reports"), str(gameday)],
                     env=env, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert read_run(tmp_path / "reports")["trace_id"] is None
    assert receiver.spans == []


def test_the_trace_is_flushed_after_sigterm_mid_hold(
    sandbox: RunningSandbox, receiver: Receiver, tmp_path: Path
) -> None:
    sandbox.wait_healthy()
    gameday = write_gameday(tmp_path, {"catalog-long": delay("catalog", duration="120s")})
    env = cli_env(CHAOSLAB_SANDBOX_DIR=str(sandbox.state_dir), OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
    log = tmp_path / "run.log"
    process = start_cli(["run", "--target", "sandbox", "--reports", str(tmp_path / "reports"), str(gameday)],
                        env=env, cwd=tmp_path, log=log)
    try:
        poll(lambda: "holding the fault" in log.read_text(), timeout=60, what="the hold")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 3, log.read_text()
    finally:
        stop_process(process)
    run = read_run(tmp_path / "reports")
    (step_span,) = [s for s in receiver.spans if s["name"] == "step catalog-long"]
    assert "signal" in step_span["events"]
    assert step_span["attributes"]["chaoslab.verdict"] == "error"
    assert {s["trace_id"] for s in receiver.spans} == {run["trace_id"]}
    assert "chaoslab run" in {s["name"] for s in receiver.spans}
