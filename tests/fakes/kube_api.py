"""A fake Kubernetes API server that speaks real REST over HTTP.

It serves core v1 pods and namespaces, chaos-mesh.org/v1alpha1 networkchaos and
podchaos, and monitoring.coreos.com/v1 prometheusrules: create (201), get, list
(namespaced and cluster-wide, labelSelector and fieldSelector), merge-patch and
JSON-patch, replace and ``/status``, delete with finalizers, and chunked watches
with resourceVersion and timeoutSeconds (an expired resourceVersion gets the
in-stream ``ERROR`` 410 a real server sends). Failures are ``Status`` objects in the
real shape; an unexpected failure is a 500, never a dropped connection. Tests can
deny a verb as RBAC would (403), add admission webhooks (``store.admission``), make
the next requests fail (``fail_next``, e.g. a 503 during an API server restart), hold
requests at a gate (``gate``), end watches early (``watch_limit_s``) or drop them
(``drop_watches``), and read a request counter per (verb, path).

The official ``kubernetes`` client talks to it unchanged, through a kubeconfig
written by ``write_kubeconfig``.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.kube_store import (
    NAMESPACES,
    RESOURCES,
    ApiError,
    Obj,
    Resource,
    Store,
    parse_field_selector,
    parse_label_selector,
)

SERVICE_ACCOUNT = "system:serviceaccount:chaoslab:chaoslab"


@dataclass(frozen=True, slots=True)
class Route:
    resource: Resource
    namespace: str | None  # None: cluster-wide (or cluster-scoped)
    name: str | None
    subresource: str | None


def parse_route(path: str) -> Route:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise ApiError(404, "the server could not find the requested resource")
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    elif rest[:1] == ["namespaces"] and group == "":
        # /api/v1/namespaces[/name]
        return Route(NAMESPACES, None, rest[1] if len(rest) > 1 else None, None)
    if not rest or (group, version, rest[0]) not in RESOURCES:
        raise ApiError(404, "the server could not find the requested resource")
    resource = RESOURCES[(group, version, rest[0])]
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    return Route(resource, namespace, name, sub)


class FakeKubeServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` holding the store, the RBAC denials and the request counter."""

    daemon_threads = True

    def __init__(self, store: Store | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.store = store or Store()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.denied: set[tuple[str, str]] = set()  # (verb, plural); verb "*" for all
        self.failing: dict[tuple[str, str], list[int]] = {}  # (verb, plural) → codes for the next requests
        self.gates: dict[tuple[str, str], threading.Event] = {}
        self.watch_limit_s: float | None = None  # end every watch after this long, whatever it asked
        self.watch_drops = 0  # bumped by drop_watches(): streams opened before end abruptly
        self.uninstalled: set[str] = set()  # API groups whose CRDs are not installed (404)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FakeKubeServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-kube-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.store.close()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- test controls
    def deny(self, verb: str, plural: str) -> None:
        """Answer ``verb`` on ``plural`` with an RBAC 403 from now on."""
        self.denied.add((verb, plural))

    def allow_all(self) -> None:
        self.denied.clear()

    def fail_next(self, verb: str, plural: str, *, code: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` ``verb`` requests on ``plural`` with ``code``."""
        with self._lock:
            self.failing.setdefault((verb, plural), []).extend([code] * times)

    def _take_failure(self, verb: str, plural: str) -> int | None:
        with self._lock:
            codes = self.failing.get((verb, plural))
            return codes.pop(0) if codes else None

    def gate(self, verb: str, plural: str) -> threading.Event:
        """From now on ``verb`` requests on ``plural`` are received (and counted) but not
        processed until the returned event is set — a slow admission webhook, say."""
        event = threading.Event()
        self.gates[(verb, plural)] = event
        return event

    def drop_watches(self) -> None:
        """Cut every open watch without ending its chunked stream, as an API server restart or
        a load balancer does."""
        with self._lock:
            self.watch_drops += 1

    def count(self, verb: str | None = None, *, path_contains: str = "") -> int:
        with self._lock:
            return sum(n for (v, p), n in self.requests.items()
                       if (verb is None or v == verb) and path_contains in p)

    def by_verb(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        with self._lock:
            for (verb, _), n in self.requests.items():
                totals[verb] += n
        return dict(sorted(totals.items()))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    def record(self, verb: str, path: str) -> None:
        with self._lock:
            self.requests[(verb, path)] += 1


def _flag(params: dict[str, list[str]], key: str) -> bool:
    return params.get(key, ["false"])[-1].lower() in ("true", "1")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: FakeKubeServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    # -- plumbing
    def _send_json(self, code: int, payload: Obj) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Any:
        if not self._raw:
            return None
        try:
            return json.loads(self._raw)
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"invalid JSON in request body: {exc}") from exc

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query)
        # Read the whole body first so keep-alive stays in step even when the request fails.
        length = int(self.headers.get("Content-Length") or 0)
        self._raw = self.rfile.read(length) if length else b""
        try:
            if url.path in ("/version", "/healthz", "/readyz", "/livez"):
                self.server.record("get", url.path)
                self._send_json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake"})
                return
            route = parse_route(url.path)
            if route.resource.group in self.server.uninstalled:
                raise ApiError(404, "the server could not find the requested resource")
            verb = self._verb(method, route, params)
            self._drops = self.server.watch_drops  # before it is counted: a drop after the count cuts it
            self.server.record(verb, url.path)
            self._check_rbac(verb, route)
            self._check_failures(verb, route)
            getattr(self, f"_do_{verb}")(route, params)
        except ApiError as err:
            self._send_json(err.code, err.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the fake: answer like the real server, keep serving
            self._send_json(500, ApiError(500, f"Internal error occurred: {exc!r}",
                                          reason="InternalError").status())

    @staticmethod
    def _verb(method: str, route: Route, params: dict[str, list[str]]) -> str:
        if method == "GET":
            if route.name:
                return "get"
            return "watch" if _flag(params, "watch") else "list"
        return {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method]

    def _check_rbac(self, verb: str, route: Route) -> None:
        res = route.resource
        if (verb, res.plural) not in self.server.denied and ("*", res.plural) not in self.server.denied:
            return
        subject = f'{res.qualified} "{route.name}"' if route.name else res.qualified
        scope = (f'in the namespace "{route.namespace}"' if route.namespace is not None
                 else "at the cluster scope")
        raise ApiError(403, f'{subject} is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} resource '
                            f'"{res.plural}" in API group "{res.group}" {scope}',
                       details={"name": route.name or "", "group": res.group, "kind": res.plural})

    def _check_failures(self, verb: str, route: Route) -> None:
        plural = route.resource.plural
        gate = self.server.gates.get((verb, plural))
        if gate is not None:
            gate.wait(timeout=60)
        code = self.server._take_failure(verb, plural)
        if code is not None:
            raise ApiError(code, {503: "the server is currently unable to handle the request",
                                  504: "Timeout: request did not complete within requested timeout"}.get(
                                      code, f"injected failure {code}"),
                           reason={503: "ServiceUnavailable", 504: "Timeout"}.get(code))

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- verbs
    def _ns(self, route: Route) -> str:
        return route.namespace or ""

    def _do_get(self, route: Route, params: dict[str, list[str]]) -> None:
        assert route.name is not None
        self._send_json(200, self.server.store.get(route.resource, self._ns(route), route.name))

    def _do_list(self, route: Route, params: dict[str, list[str]]) -> None:
        res = route.resource
        items, rv = self.server.store.list(
            res, route.namespace if res.namespaced else None,
            labels=params.get("labelSelector", [""])[-1], fields=params.get("fieldSelector", [""])[-1])
        self._send_json(200, {"apiVersion": res.api_version, "kind": f"{res.kind}List",
                              "metadata": {"resourceVersion": str(rv)}, "items": items})

    def _do_create(self, route: Route, params: dict[str, list[str]]) -> None:
        body = self._body()
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be an object")
        self._send_json(201, self.server.store.create(route.resource, self._ns(route), body))

    def _do_patch(self, route: Route, params: dict[str, list[str]]) -> None:
        assert route.name is not None
        body = self._body()
        content_type = self.headers.get("Content-Type", "")
        self._send_json(200, self.server.store.patch(route.resource, self._ns(route), route.name,
                                                     body, content_type))

    def _do_update(self, route: Route, params: dict[str, list[str]]) -> None:
        assert route.name is not None
        body = self._body()
        store = self.server.store
        if route.subresource == "status":
            current = store.get(route.resource, self._ns(route), route.name)
            current["status"] = body.get("status")
            body = current
        self._send_json(200, store.replace(route.resource, self._ns(route), route.name, body))

    def _do_delete(self, route: Route, params: dict[str, list[str]]) -> None:
        assert route.name is not None
        options = self._body() or {}  # propagation and grace periods mean nothing here beyond checks
        if not isinstance(options, dict):
            raise ApiError(400, "the request body must be a DeleteOptions object")
        policy = options.get("propagationPolicy", params.get("propagationPolicy", [None])[-1])
        if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
            raise ApiError(422, f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported '
                                f'value: "{policy}": supported values: "Foreground", "Background", "Orphan"')
        if policy is not None and options.get("orphanDependents") is not None:
            raise ApiError(422, 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: '
                                f'"{policy}": orphanDependents and deletionPropagation cannot be both set')
        obj = self.server.store.delete(route.resource, self._ns(route), route.name)
        # The real server answers 202 only for a pending delete with orphanDependents=false.
        accepted = obj["metadata"].get("finalizers") and options.get("orphanDependents") is False
        self._send_json(202 if accepted else 200, obj)

    # -- watch
    def _do_watch(self, route: Route, params: dict[str, list[str]]) -> None:
        res = route.resource
        store = self.server.store
        label_ok = parse_label_selector(params.get("labelSelector", [""])[-1])
        field_ok = parse_field_selector(params.get("fieldSelector", [""])[-1], res)
        namespace = route.namespace if res.namespaced else None
        deadline = time.monotonic() + float(params.get("timeoutSeconds", ["3600"])[-1])
        since = params.get("resourceVersion", [""])[-1]
        if since and not since.isdigit():
            raise ApiError(400, f'invalid resource version "{since}"')
        if self.server.watch_limit_s is not None:
            deadline = min(deadline, time.monotonic() + self.server.watch_limit_s)

        def wanted(obj: Obj, event_res: Resource) -> bool:
            return (event_res is res and (namespace is None or obj["metadata"].get("namespace") == namespace)
                    and label_ok(obj["metadata"].get("labels") or {}) and field_ok(obj))

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with store.cond:
            if since in ("", "0"):
                initial = [("ADDED", o) for o in store.list(res, namespace)[0] if wanted(o, res)]
                cursor = store.rv
            elif int(since) < store.oldest_rv():
                initial, cursor = [], -1
            else:
                initial, cursor = [], int(since)
        if cursor == -1:
            gone = ApiError(410, f"too old resource version: {since} ({store.oldest_rv()})")
            self._chunk({"type": "ERROR", "object": gone.status()})
            self._end_chunks()
            return
        for kind, obj in initial:
            self._chunk({"type": kind, "object": obj})
        self._stream(store, cursor, deadline, wanted)

    def _stream(self, store: Store, cursor: int, deadline: float, wanted: Any) -> None:
        drops = self._drops
        while time.monotonic() < deadline and not store.closed and not self._client_gone():
            if self.server.watch_drops != drops:  # cut: no terminating chunk, the socket closes
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            with store.cond:
                events = store.events_after(cursor)
                if not events:
                    store.cond.wait(timeout=min(0.25, max(0.0, deadline - time.monotonic())))
                    events = store.events_after(cursor)
            for event in events:
                cursor = event.rv
                if wanted(event.object, event.resource):
                    self._chunk({"type": event.type, "object": event.object})
        self._end_chunks()

    def _client_gone(self) -> bool:
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _chunk(self, payload: Obj) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True


def write_kubeconfig(directory: Path, url: str, *, context: str = "fake",
                     namespace: str = "default", extra_contexts: tuple[str, ...] = ()) -> Path:
    """A kubeconfig whose current context points at ``url`` (JSON is valid YAML)."""
    names = (context, *extra_contexts)
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": n, "cluster": {"server": url}} for n in names],
        "users": [{"name": "chaoslab", "user": {"token": "fake-token"}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "chaoslab", "namespace": namespace}}
                     for n in names],
    }
    path = Path(directory) / "kubeconfig"
    path.write_text(json.dumps(config, indent=2))
    return path
