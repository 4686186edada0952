"""The supervisor's control API: a small JSON-over-HTTP server on 127.0.0.1.

::

    GET    /status                                 services, pods, faults
    GET    /pods                                   every pod, with its proxy address
    GET    /faults                                 every fault object
    POST   /faults                                 body: a Chaos Mesh manifest → 201, 409, 422
    GET    /faults/<kind>/<namespace>/<name>       one fault object, 404 if gone
    DELETE /faults/<kind>/<namespace>/<name>       recover and delete, 404 if gone
    POST   /faults/<kind>/<namespace>/<name>/pause (or /resume)

Requests are served on a thread but executed on the supervisor's event loop,
which owns every pod and fault: there is no shared state to lock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TypeVar

from chaoslab.errors import InvalidInputError
from chaoslab.sandbox.chaos import ConflictError, FaultRegistry, fault_key

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BODY = 1 << 20


class ControlTarget(Protocol):
    registry: FaultRegistry

    def status_json(self) -> dict[str, Any]: ...

    def pods_json(self) -> list[dict[str, Any]]: ...

    def on_loop(self, fn: Callable[[], T]) -> T: ...


def route(target: ControlTarget, method: str, path: str, body: Any) -> tuple[int, Any]:
    """Runs on the event loop. Returns (HTTP status, JSON payload)."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    reg = target.registry
    if method == "GET" and parts == ["status"]:
        return 200, target.status_json()
    if method == "GET" and parts == ["pods"]:
        return 200, target.pods_json()
    if parts == ["faults"]:
        if method == "GET":
            return 200, [r.to_json() for r in reg.list()]
        if method == "POST":
            try:
                return 201, reg.create(body).to_json()
            except InvalidInputError as exc:
                return 422, {"error": str(exc), "field": exc.field}
            except ConflictError as exc:
                return 409, {"error": str(exc)}
    if len(parts) in (4, 5) and parts[0] == "faults":
        key = fault_key(*parts[1:4])
        action = parts[4] if len(parts) == 5 else None
        if method == "GET" and action is None:
            rec = reg.get(key)
        elif method == "DELETE" and action is None:
            return (200, {"deleted": key}) if reg.delete(key) else (404, {"error": f"{key} not found"})
        elif method == "POST" and action == "pause":
            rec = reg.pause(key)
        elif method == "POST" and action == "resume":
            rec = reg.resume(key)
        else:
            return 405, {"error": f"{method} {path} is not supported"}
        return (200, rec.to_json()) if rec is not None else (404, {"error": f"{key} not found"})
    return 404, {"error": f"no route for {method} {path}"}


class _Handler(BaseHTTPRequestHandler):
    target: ControlTarget
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"  # keep-alive: a client's connection (and its thread) serves many requests

    def _dispatch(self) -> None:
        body = None
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            if length > MAX_BODY:
                self.close_connection = True  # the unread body would be taken for the next request
                self._reply(413, {"error": "body too large"})
                return
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError as exc:
                self._reply(400, {"error": f"body is not JSON: {exc}"})
                return
        method, path = self.command, self.path
        try:
            status, payload = self.target.on_loop(lambda: route(self.target, method, path, body))
        except Exception as exc:  # one bad request must not take the supervisor down
            logger.exception("control API %s %s failed", method, path)
            status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        self._reply(status, payload)

    do_GET = do_POST = do_DELETE = _dispatch  # noqa: N815 (http.server's naming)

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("control: %s", format % args)


class ControlServer:
    def __init__(self, target: ControlTarget) -> None:
        handler = type("ControlHandler", (_Handler,), {"target": target})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="control-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
