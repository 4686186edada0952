"""Client of the supervisor's control API (see ``control_server`` for the routes).

Standard library only, so the Chaos Toolkit activities that use it import fast.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from chaoslab.errors import BackendError, InvalidInputError


class ControlError(BackendError):
    """The control API answered with an error status."""

    def __init__(self, message: str, *, status: int) -> None:
        self.status = status
        super().__init__(message)


class ControlClient:
    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, AttributeError):
                detail = exc.reason
            raise ControlError(f"sandbox {method} {path}: {exc.code} {detail}", status=exc.code) from exc
        except (OSError, ValueError) as exc:
            raise BackendError(f"sandbox control API at {self.url} is unreachable: {exc}") from exc

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
