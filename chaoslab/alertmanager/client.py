"""HTTP client for Alertmanager's API v2 silences: the ``SilencePort``, plus listing for cleanup.

Every failure (unreachable, timeout, TLS, error status, unexpected answer) becomes an
``AlertmanagerError`` naming the URL and the reason. The bearer token is sent as a header
and never appears in a message or a log line. Silences are always created by
``chaoslab`` (``createdBy``), which is how ``chaoslab cleanup`` finds them again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from chaoslab.errors import AlertmanagerError
from chaoslab.model import Matcher
from chaoslab.settings import Settings

logger = logging.getLogger(__name__)

CREATED_BY = "chaoslab"


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    """A silence as Alertmanager lists it."""

    id: str
    matchers: tuple[Matcher, ...]
    created_by: str
    comment: str
    state: str  # active | pending | expired
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def format_rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def matcher_to_json(matcher: Matcher) -> dict[str, Any]:
    return {"name": matcher.name, "value": matcher.value, "isRegex": matcher.is_regex,
            "isEqual": matcher.is_equal}


class AlertmanagerClient:
    """One Alertmanager. Implements ``chaoslab.ports.SilencePort``.

    ``timeout`` bounds every request; ``ca_bundle`` is a PEM file used instead of the
    system store; ``verify=False`` turns TLS checks off (as for Prometheus)."""

    def __init__(self, url: str, *, token: str | None = None, ca_bundle: str | None = None,
                 verify: bool = True, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._shown_url = _without_credentials(self.url)
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        # Passed with every request: a session-level `verify` loses to REQUESTS_CA_BUNDLE.
        self._verify: bool | str = ca_bundle if (ca_bundle and verify) else verify

    def __repr__(self) -> str:
        return f"AlertmanagerClient({self._shown_url!r})"

    def close(self) -> None:
        self._session.close()

    # --- SilencePort ---------------------------------------------------------------

    def put(self, matchers: Sequence[Matcher], *, starts_at: datetime, ends_at: datetime, comment: str,
            silence_id: str | None = None) -> tuple[str, datetime]:
        body: dict[str, Any] = {
            "matchers": [matcher_to_json(m) for m in matchers],
            "startsAt": format_rfc3339(starts_at), "endsAt": format_rfc3339(ends_at),
            "createdBy": CREATED_BY, "comment": comment,
        }
        if silence_id:
            body["id"] = silence_id
        answer = self._request("POST", "/api/v2/silences", json=body)
        new_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not isinstance(new_id, str) or not new_id:
            raise AlertmanagerError(f"Alertmanager at {self._shown_url} answered a silence without an id",
                                    url=self._shown_url)
        if new_id == silence_id:
            return new_id, starts_at  # updated in place: the same startsAt
        # A new silence: Alertmanager moved a past startsAt to its own clock's now.
        stored = self._silence(new_id)
        return new_id, stored.starts_at or starts_at

    def expire(self, silence_id: str) -> None:
        try:
            self._request("DELETE", f"/api/v2/silence/{quote(silence_id, safe='')}")
        except AlertmanagerError as exc:
            if exc.status == 404:
                return  # gone (garbage-collected): nothing is muted by it
            # Expiring one that already expired is an error to Alertmanager, not to us.
            if exc.status is not None and self._state(silence_id) == "expired":
                return
            raise

    # --- beyond the port ------------------------------------------------------------

    def silences(self) -> list[Silence]:
        """Every silence Alertmanager knows, expired ones included."""
        answer = self._request("GET", "/api/v2/silences")
        if not isinstance(answer, list):
            raise AlertmanagerError(f"Alertmanager at {self._shown_url} answered a {type(answer).__name__} "
                                    "to a silences request", url=self._shown_url)
        try:
            return [_silence(raw) for raw in answer]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AlertmanagerError(f"Alertmanager at {self._shown_url} gave a malformed silence: "
                                    f"{type(exc).__name__}: {exc}", url=self._shown_url) from exc

    def _silence(self, silence_id: str) -> Silence:
        answer = self._request("GET", f"/api/v2/silence/{quote(silence_id, safe='')}")
        try:
            return _silence(answer)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AlertmanagerError(f"Alertmanager at {self._shown_url} gave a malformed silence: "
                                    f"{type(exc).__name__}: {exc}", url=self._shown_url) from exc

    def _state(self, silence_id: str) -> str | None:
        try:
            return self._silence(silence_id).state
        except AlertmanagerError:
            return None

    def _request(self, method: str, path: str, *, json: Mapping[str, Any] | None = None) -> Any:
        where = f"{self._shown_url}{path}"
        logger.debug("%s %s", method, where)
        try:
            response = self._session.request(method, f"{self.url}{path}", json=json, timeout=self.timeout,
                                             verify=self._verify)
        except OSError as exc:  # requests' errors are OSErrors, and so is an unreadable CA bundle
            raise AlertmanagerError(f"cannot reach Alertmanager at {where}: {_reason(exc, self.timeout)}",
                                    url=self._shown_url) from exc
        if not response.ok:
            text = response.text.strip().replace("\n", " ")[:200] or "empty body"
            denied = response.status_code in (401, 403)
            hint = ": check the bearer token (alertmanager_token)" if denied else ""
            raise AlertmanagerError(
                f"Alertmanager at {where} answered {response.status_code} {response.reason or ''}".rstrip()
                + f": {text}{hint}", url=self._shown_url, status=response.status_code)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise AlertmanagerError(f"Alertmanager at {where} answered {response.status_code}: not JSON",
                                    url=self._shown_url, status=response.status_code) from exc


def client_for(url: str, settings: Settings) -> AlertmanagerClient:
    """A client for ``url`` with the settings' token, TLS and timeout."""
    return AlertmanagerClient(
        url, token=settings.alertmanager_token, ca_bundle=settings.alertmanager_ca_bundle,
        verify=settings.alertmanager_verify_tls, timeout=settings.alertmanager_timeout_s,
    )


def _silence(raw: Mapping[str, Any]) -> Silence:
    if not isinstance(raw, Mapping):
        raise TypeError(f"a silence must be an object, got {type(raw).__name__}")
    ends = raw.get("endsAt")
    return Silence(
        id=str(raw["id"]),
        matchers=tuple(Matcher(name=m["name"], value=m["value"], is_regex=bool(m.get("isRegex")),
                               is_equal=bool(m.get("isEqual", True))) for m in raw.get("matchers") or ()),
        created_by=str(raw.get("createdBy") or ""),
        comment=str(raw.get("comment") or ""),
        state=str((raw.get("status") or {}).get("state") or "unknown"),
        starts_at=_parse_time(raw.get("startsAt")),
        ends_at=_parse_time(ends),
    )


def _parse_time(text: Any) -> datetime | None:
    """Alertmanager's RFC 3339, possibly with nanoseconds → datetime (microseconds)."""
    if not isinstance(text, str) or not text:
        return None
    head, dot, tail = text.partition(".")
    if dot:
        digits = "".join(c for c in tail if c.isdigit())
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail[len(digits):]}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _reason(exc: OSError, timeout: float) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS error: {exc}"
    reason: Any = exc.args[0] if exc.args else exc
    text = str(getattr(reason, "reason", reason))
    marker = text.find("[Errno")
    return text[marker:].rstrip(")'\"") if marker >= 0 else text


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return url
