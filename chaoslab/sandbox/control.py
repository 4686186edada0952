"""Client of the supervisor's control API (see ``control_server`` for the routes).

Standard library only, so the Chaos Toolkit activities that use it import fast. Each
thread keeps one connection open (HTTP/1.1 keep-alive): a run asks a dozen things in a
row, and a new connection costs the supervisor a new thread each time.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from typing import Any

from chaoslab.errors import BackendError, InvalidInputError

# A connection the supervisor closed while it sat idle fails on the next request, before
# the request reached the supervisor: asked again, once, on a new connection. Never a POST,
# whose effect cannot be told from a closed connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class ControlError(BackendError):
    """The control API answered with an error status."""

    def __init__(self, message: str, *, status: int) -> None:
        self.status = status
        super().__init__(message)


class ControlClient:
    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        parts = urllib.parse.urlsplit(self.url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._local = threading.local()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        try:
            reused = getattr(self._local, "connection", None) is not None
            try:
                status, reason, payload = self._exchange(method, path, data, headers)
            except _STALE:
                if not reused or method == "POST":
                    raise
                status, reason, payload = self._exchange(method, path, data, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise BackendError(f"sandbox control API at {self.url} is unreachable: {exc}") from exc
        if status >= 400:
            try:
                detail = json.loads(payload).get("error", reason)
            except (ValueError, AttributeError):
                detail = reason
            raise ControlError(f"sandbox {method} {path}: {status} {detail}", status=status)
        try:
            return json.loads(payload or b"null")
        except ValueError as exc:
            raise BackendError(f"sandbox control API at {self.url} answered {method} {path} "
                               f"with something other than JSON: {exc}") from exc

    def _exchange(self, method: str, path: str, data: bytes | None,
                  headers: dict[str, str]) -> tuple[int, str, bytes]:
        """One request on this thread's connection (opened when there is none); the
        connection is dropped on any failure, so the next request opens a new one."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
            self._local.connection = connection
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except BaseException:
            connection.close()
            self._local.connection = None
            raise
        if response.will_close:
            connection.close()
            self._local.connection = None
        return response.status, response.reason, payload

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/status")
        return result

    def pods(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/pods")
        return result

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/faults")
        return result

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self.request("POST", "/faults", manifest)
        except ControlError as exc:
            if exc.status == 422:
                raise InvalidInputError("manifest", "", str(exc)) from exc
            raise
        return result

    def _path(self, kind: str, namespace: str, name: str) -> str:
        return f"/faults/{kind.lower()}/{namespace}/{name}"

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.request("GET", self._path(kind, namespace, name))
        except ControlError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """True if it existed; already gone is not an error."""
        try:
            self.request("DELETE", self._path(kind, namespace, name))
        except ControlError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def act(self, kind: str, namespace: str, name: str, action: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.request("POST", f"{self._path(kind, namespace, name)}/{action}")
        except ControlError as exc:
            if exc.status == 404:
                return None
            raise
        return result
