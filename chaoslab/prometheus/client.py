"""HTTP client for the Prometheus API: the ``MetricsSource`` port, plus rules and readiness.

Every failure (unreachable, timeout, TLS, error status, unexpected answer) becomes a
``PrometheusError`` naming the URL and the reason. The bearer token is sent as a header
and never appears in a message or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from chaoslab.errors import PrometheusError
from chaoslab.model import AlertRule, AlertState, Sample, Series

logger = logging.getLogger(__name__)

MAX_GET_QUERY_CHARS = 2_000


class PrometheusClient:
    """One Prometheus server. Implements ``chaoslab.ports.MetricsSource``.

    ``timeout`` bounds every request (connect and read); ``ca_bundle`` is a PEM file
    used instead of the system store; ``verify=False`` turns TLS checks off."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ca_bundle: str | None = None,
        verify: bool = True,
        timeout: float = 5.0,
    ) -> None:
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
        return f"PrometheusClient({self._shown_url!r})"

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # --- MetricsSource -------------------------------------------------------------

    def alerts(self) -> list[AlertState]:
        """Every active (pending or firing) alert instance."""
        data = self._get_data("/api/v1/alerts")
        try:
            return [_alert_state(raw) for raw in _field(data, "alerts", list, self._shown_url)]
        except (AttributeError, TypeError, ValueError) as exc:  # an item that is not an alert object
            raise self._malformed("an alerts request", exc) from exc

    def query(self, expr: str, *, at: datetime | None = None) -> list[Sample]:
        """Instant query; a scalar answer becomes one sample without labels."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        # A long query (a watcher batch) goes in a POST body: URLs are limited by proxies.
        post = len(expr) > MAX_GET_QUERY_CHARS
        data = self._get_data("/api/v1/query", params=params, post=post)
        kind, result = data.get("resultType"), data.get("result", [])
        try:
            if kind == "vector":
                return [
                    Sample(
                        labels=item["metric"],
                        value=float(item["value"][1]),
                        timestamp=float(item["value"][0]),
                    )
                    for item in result
                ]
            if kind == "scalar":
                return [Sample(labels={}, value=float(result[1]), timestamp=float(result[0]))]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise self._malformed("an instant query", exc) from exc
        raise PrometheusError(
            f"Prometheus at {self._shown_url} answered a {kind} to an instant query of {expr!r}",
            url=self._shown_url,
        )

    def query_range(self, expr: str, *, start: datetime, end: datetime, step: float) -> list[Series]:
        params = {"query": expr, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}"}
        params["step"] = f"{step:g}"
        data = self._get_data("/api/v1/query_range", params=params)
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise PrometheusError(
                f"Prometheus at {self._shown_url} answered a {data.get('resultType')} to a range query",
                url=self._shown_url,
            )
        try:
            return [
                Series(
                    labels=item["metric"],
                    points=tuple((float(ts), float(value)) for ts, value in item["values"]),
                )
                for item in data["result"]
            ]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise self._malformed("a range query", exc) from exc

    # --- beyond the port ------------------------------------------------------------

    def rules(self) -> list[AlertRule]:
        """The alerting rules Prometheus has loaded (``/api/v1/rules``), with the windows of
        the recording rules they read (one request for both kinds)."""
        from chaoslab.prometheus.recordings import RecordingRule, link_windows

        data = self._get_data("/api/v1/rules")
        groups = _field(data, "groups", list, self._shown_url)
        try:
            rules = [(raw, group) for group in groups for raw in group.get("rules", [])]
            alerts = [
                _alert_rule(raw, group, default_source=self._shown_url)
                for raw, group in rules
                if raw.get("type") == "alerting"
            ]
            recordings = [
                RecordingRule(name=raw["name"], expr=raw["query"], labels=dict(raw.get("labels") or {}),
                              source=str(group.get("file") or self._shown_url))
                for raw, group in rules
                if raw.get("type") == "recording"
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._malformed("a rules request", exc) from exc
        return list(link_windows(alerts, recordings))

    def ready(self) -> bool:
        """Whether ``/-/ready`` answers 200. Never raises."""
        try:
            response = self._session.get(f"{self.url}/-/ready", timeout=self.timeout, verify=self._verify)
        except OSError as exc:
            logger.debug("Prometheus at %s not ready: %s", self._shown_url, _reason(exc, self.timeout))
            return False
        return response.status_code == 200

    # --- plumbing -------------------------------------------------------------------

    def _malformed(self, what: str, exc: Exception) -> PrometheusError:
        return PrometheusError(
            f"Prometheus at {self._shown_url} gave a malformed answer to {what}: {type(exc).__name__}: {exc}",
            url=self._shown_url,
        )

    def _get_data(
        self, path: str, *, params: Mapping[str, str] | None = None, post: bool = False
    ) -> dict[str, Any]:
        where = f"{self._shown_url}{path}"
        logger.debug("%s %s %s", "POST" if post else "GET", where, dict(params or {}))
        try:
            if post:
                response = self._session.post(
                    f"{self.url}{path}", data=params, timeout=self.timeout, verify=self._verify
                )
            else:
                response = self._session.get(
                    f"{self.url}{path}", params=params, timeout=self.timeout, verify=self._verify
                )
        except OSError as exc:  # requests' errors are OSErrors, and so is an unreadable CA bundle
            raise PrometheusError(
                f"cannot reach Prometheus at {where}: {_reason(exc, self.timeout)}", url=self._shown_url
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not response.ok or not isinstance(body, dict) or body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus at {where} {_refusal(response, body)}",
                url=self._shown_url,
                status=response.status_code,
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"Prometheus at {where} answered without data", url=self._shown_url)
        return data


def _refusal(response: requests.Response, body: Any) -> str:
    status = f"{response.status_code} {response.reason or ''}".strip()
    if isinstance(body, dict) and body.get("error"):
        return f"answered {status}: {body.get('errorType', 'error')}: {body['error']}"
    if response.status_code in (401, 403):
        return f"answered {status}: check the bearer token (prometheus_token)"
    text = response.text.strip().replace("\n", " ")[:200]
    return f"answered {status}: {text or 'empty body'}" if not response.ok else f"answered {status}: not JSON"


def _reason(exc: OSError, timeout: float) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS error: {_innermost(exc)}"
    if isinstance(exc, requests.ConnectionError):
        return _innermost(exc)
    return f"{type(exc).__name__}: {_innermost(exc)}"


def _innermost(exc: BaseException) -> str:
    """The useful tail of urllib3's nested messages, e.g. ``[Errno 111] Connection refused``."""
    reason: Any = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError → the underlying error
    text = str(reason)
    for tag in ("[SSL", "[Errno"):
        marker = text.find(tag)
        if marker >= 0:
            return text[marker:].rstrip(")'\"")
    return text.rsplit(": ", 1)[-1] if ": " in text else text


def _alert_rule(raw: Mapping[str, Any], group: Mapping[str, Any], *, default_source: str) -> AlertRule:
    interval = group.get("interval")
    return AlertRule(
        name=raw["name"],
        expr=raw["query"],
        for_s=float(raw.get("duration", 0.0)),
        labels=dict(raw.get("labels") or {}),
        annotations=dict(raw.get("annotations") or {}),
        group=str(group.get("name", "")),
        interval_s=float(interval) if interval else None,
        source=str(group.get("file") or default_source),
    )


def _alert_state(raw: Mapping[str, Any]) -> AlertState:
    labels = dict(raw.get("labels") or {})
    return AlertState(
        name=labels.get("alertname", ""),
        state=str(raw.get("state", "unknown")),
        labels=labels,
        active_at=_timestamp(raw.get("activeAt")),
    )


def _timestamp(text: Any) -> datetime | None:
    """Prometheus' RFC 3339 with nanoseconds → datetime (microseconds)."""
    if not isinstance(text, str) or not text:
        return None
    head, dot, tail = text.partition(".")
    if dot:
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _field(data: Mapping[str, Any], key: str, kind: type, url: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise PrometheusError(f"Prometheus at {url} answered without {key!r}", url=url)
    return value


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return url
