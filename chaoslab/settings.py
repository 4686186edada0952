"""Run settings, loaded once into a frozen value: defaults < file < CHAOSLAB_* env < CLI flags.

Settings are passed explicitly; nothing reads the environment later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from chaoslab.errors import InvalidInputError


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    prometheus_url: str | None = None
    prometheus_token: str | None = None
    prometheus_ca_bundle: str | None = None
    prometheus_verify_tls: bool = True
    prometheus_timeout_s: float = 5.0
    kube_context: str | None = None
    reports_dir: Path = Path("reports")
    watch_interval_s: float = 0.25
    inject_timeout_s: float = 30.0
    remove_timeout_s: float = 60.0
    recovery_timeout_s: float = 120.0
    sandbox_state_dir: Path | None = None
    alertmanager_url: str | None = None
    alertmanager_token: str | None = None
    alertmanager_ca_bundle: str | None = None
    alertmanager_verify_tls: bool = True
    alertmanager_timeout_s: float = 5.0
    silence_ttl_s: float = 120.0  # a silence's endsAt ahead of now: a killed run's lapses by itself
    silence_renew_s: float = 30.0  # how often a live silence's endsAt is pushed forward

    def __repr__(self) -> str:
        # Never print a token, even in a debug log.
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in ("prometheus_token", "alertmanager_token"):
            if shown[secret]:
                shown[secret] = "***"
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


def _coerce(name: str, raw: Any, *, origin: str) -> Any:
    kind = type(getattr(Settings(), name))
    default = getattr(Settings(), name)
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{raw!r} is not a boolean")
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path) or name.endswith("_dir"):
            return Path(str(raw))
        return None if raw is None else str(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(origin, name, f"cannot read {raw!r} as {kind.__name__}: {exc}") from exc


def load_settings(
    *,
    file_values: Mapping[str, Any] | None = None,
    file_path: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers. ``overrides`` are CLI flags; ``None`` values there are ignored."""
    names = {f.name for f in fields(Settings)}
    result = Settings()
    for key, raw in (file_values or {}).items():
        if key not in names:
            raise InvalidInputError(file_path or "<settings>", key, "unknown setting")
        result = replace(result, **{key: _coerce(key, raw, origin=file_path or "<settings>")})
    environ = os.environ if env is None else env
    for key in names:
        env_key = "CHAOSLAB_" + key.upper()
        if env_key in environ:
            result = replace(result, **{key: _coerce(key, environ[env_key], origin=env_key)})
    for key, raw in (overrides or {}).items():
        if raw is not None:
            result = replace(result, **{key: _coerce(key, raw, origin=f"--{key.replace('_', '-')}")})
    return result
