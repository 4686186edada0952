"""The ``kind: Sandbox`` file: per-service overrides, restart delay and load.

::

    apiVersion: chaoslab/v1
    kind: Sandbox
    spec:
      services: {payment: {replicas: 2}, cart: {retries: 2}}   # replicas, retries, timeout
      restartDelay: 5s
      load: {rps: 20}

Every error is an ``InvalidInputError`` naming the file, the field path and the line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chaoslab.errors import InvalidInputError
from chaoslab.loader.document import MarkedMap, read_data
from chaoslab.model import API_VERSION, parse_go_duration
from chaoslab.sandbox.shop import SERVICE_NAMES, SHOP, ServiceSpec

KIND = "Sandbox"
MAX_REPLICAS = 5  # keeps the sandbox within ~20 processes on a 2-core machine
MAX_RETRIES = 5
MAX_TIMEOUT_S = 30.0
MAX_RESTART_DELAY_S = 600.0
MAX_RPS = 200.0
TOP_KEYS = ("apiVersion", "kind", "metadata", "spec")
METADATA_KEYS = ("name", "description", "labels")
SPEC_KEYS = ("services", "restartDelay", "load")
OVERRIDE_KEYS = ("replicas", "retries", "timeout")
LOAD_KEYS = ("rps",)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceOverride:
    replicas: int | None = None
    retries: int | None = None
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    services: Mapping[str, ServiceOverride] = field(default_factory=dict)
    restart_delay_s: float = 5.0
    load_rps: float = 20.0
    source: Path | None = None

    def resolve(self) -> tuple[ServiceSpec, ...]:
        """The shop with this file's overrides applied."""
        specs = []
        for spec in SHOP:
            over = self.services.get(spec.name, ServiceOverride())
            specs.append(replace(
                spec,
                replicas=spec.replicas if over.replicas is None else over.replicas,
                retries=spec.retries if over.retries is None else over.retries,
                timeout_s=spec.timeout_s if over.timeout_s is None else over.timeout_s,
            ))
        return tuple(specs)

    def to_json(self) -> str:
        return json.dumps({
            "services": {name: {"replicas": o.replicas, "retries": o.retries, "timeout_s": o.timeout_s}
                         for name, o in self.services.items()},
            "restart_delay_s": self.restart_delay_s,
            "load_rps": self.load_rps,
            "source": str(self.source) if self.source else None,
        })

    @classmethod
    def from_json(cls, text: str) -> SandboxConfig:
        raw = json.loads(text)
        return cls(
            services={name: ServiceOverride(**over) for name, over in raw["services"].items()},
            restart_delay_s=float(raw["restart_delay_s"]),
            load_rps=float(raw["load_rps"]),
            source=Path(raw["source"]) if raw.get("source") else None,
        )


class _Where:
    """Locates field paths in the file so errors can name a line."""

    def __init__(self, path: Path, data: Any) -> None:
        self.path = path
        self.lines: dict[str, int] = {}
        self._walk(data, "")

    def _walk(self, data: Any, prefix: str) -> None:
        line = getattr(data, "line", None)  # MarkedMap and MarkedList know where they start
        if line is not None:
            self.lines.setdefault(prefix, line)
        if isinstance(data, MarkedMap):
            for key, value in data.items():
                name = f"{prefix}.{key}" if prefix else str(key)
                if key in data.key_lines:
                    self.lines[name] = data.key_lines[key]
                self._walk(value, name)

    def error(self, field_path: str, reason: str) -> InvalidInputError:
        line = self.lines.get(field_path)
        if line is None:
            parent = field_path.rsplit(".", 1)[0] if "." in field_path else ""
            line = self.lines.get(parent)
        return InvalidInputError(self.path, field_path, reason, line=line)


def load_sandbox_config(path: str | Path) -> SandboxConfig:
    """Read and validate a ``kind: Sandbox`` file."""
    path = Path(path)
    # The loader every chaoslab file goes through: line marks, duplicate keys refused,
    # one document only, JSON too, so `validate` and `sandbox up` judge a file alike.
    raw = read_data(path)
    where = _Where(path, raw)
    if not isinstance(raw, dict):
        raise where.error("", "expected a mapping with apiVersion, kind and spec")
    _check_keys(raw, set(TOP_KEYS), "", where)
    if raw.get("apiVersion") != API_VERSION:
        raise where.error("apiVersion", f"expected {API_VERSION}, got {raw.get('apiVersion')!r}")
    if raw.get("kind") != KIND:
        raise where.error("kind", f"expected {KIND}, got {raw.get('kind')!r}")
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise where.error("metadata", "expected a mapping such as {name: shop-resilient}")
    _check_keys(metadata, set(METADATA_KEYS), "metadata", where)
    spec = raw.get("spec") or {}
    if not isinstance(spec, dict):
        raise where.error("spec", "expected a mapping")
    _check_keys(spec, set(SPEC_KEYS), "spec", where)
    return SandboxConfig(
        services=_services(spec.get("services") or {}, where),
        restart_delay_s=_duration(spec, "restartDelay", "spec", where, default=5.0,
                                  low=0.0, high=MAX_RESTART_DELAY_S),
        load_rps=_load(spec.get("load") or {}, where),
        source=path,
    )


def _check_keys(raw: Mapping[str, Any], allowed: set[str], prefix: str, where: _Where) -> None:
    for key in raw:
        if key not in allowed:
            name = f"{prefix}.{key}" if prefix else str(key)
            raise where.error(name, f"unknown field (expected one of: {', '.join(sorted(allowed))})")


def _services(raw: Any, where: _Where) -> dict[str, ServiceOverride]:
    if not isinstance(raw, dict):
        raise where.error("spec.services", "expected a mapping of service name to overrides")
    result = {}
    for name, over in raw.items():
        prefix = f"spec.services.{name}"
        if name not in SERVICE_NAMES:
            raise where.error(prefix, f"unknown service (the shop has: {', '.join(SERVICE_NAMES)})")
        over = over or {}
        if not isinstance(over, dict):
            raise where.error(prefix, "expected a mapping with replicas, retries or timeout")
        _check_keys(over, set(OVERRIDE_KEYS), prefix, where)
        timeout = None
        if "timeout" in over:
            timeout = _duration(over, "timeout", prefix, where, default=None, low=0.001, high=MAX_TIMEOUT_S)
        result[str(name)] = ServiceOverride(
            replicas=_int(over, "replicas", prefix, where, low=1, high=MAX_REPLICAS),
            retries=_int(over, "retries", prefix, where, low=0, high=MAX_RETRIES),
            timeout_s=timeout,
        )
    return result


def _int(raw: Mapping[str, Any], key: str, prefix: str, where: _Where, *, low: int, high: int) -> int | None:
    if key not in raw:
        return None
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(f"{prefix}.{key}", f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise where.error(f"{prefix}.{key}", f"must be between {low} and {high}, got {value}")
    return value


def _duration(
    raw: Mapping[str, Any], key: str, prefix: str, where: _Where, *,
    default: float | None, low: float, high: float,
) -> Any:
    if key not in raw:
        return default
    value = raw[key]
    name = f"{prefix}.{key}"
    if not isinstance(value, str):
        raise where.error(name, f"expected a Go duration such as 5s or 300ms, got {value!r}")
    try:
        seconds = parse_go_duration(value)
    except ValueError as exc:
        raise where.error(name, str(exc)) from exc
    if not low <= seconds <= high:
        raise where.error(name, f"must be between {low:g}s and {high:g}s, got {value}")
    return seconds


def _load(raw: Any, where: _Where) -> float:
    if not isinstance(raw, dict):
        raise where.error("spec.load", "expected a mapping such as {rps: 20}")
    _check_keys(raw, set(LOAD_KEYS), "spec.load", where)
    value = raw.get("rps", 20)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error("spec.load.rps", f"expected a number of requests per second, got {value!r}")
    if not 0 <= value <= MAX_RPS:
        raise where.error("spec.load.rps", f"must be between 0 and {MAX_RPS:g}, got {value}")
    return float(value)
