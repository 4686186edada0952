"""Secrets never reach a record: redaction of documents and text before they are written.

Every record chaoslab writes (Chaos Toolkit journals, run.json, the checklist ledger, the
reports) passes through ``redact`` first. It masks:

- the values of keys that name a secret (``token``, ``password``, ``secret``, ``apiKey``,
  ``Authorization``, kubeconfig ``client-key-data`` and the like), and every value of a Chaos
  Toolkit ``secrets`` block (an ``{type: env, key: NAME}`` reference stays: it names a
  variable, it holds no secret; a list of scope names stays too);
- in any text: ``Bearer``/``Basic`` credentials, ``Authorization:`` header values, and the
  password in a URL's ``user:password@``;
- every occurrence of the secret values passed in (the Prometheus token from the settings).

Pure and dependency-free, so that every layer (runner, pdca, report) can use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

MASK = "***"
T = TypeVar("T")

_SECRET_KEY = re.compile(
    r"(?i)(token|passw(or)?d|passphrase|secret|api[-_]?key|authorization|credential|cookie|"
    r"private[-_]?key|client[-_]?key|(certificate|key)[-_]?data|bearer)"
)
# A credential after Bearer/Basic: 12+ token characters, at least one a digit or a symbol
# (so that prose such as "the bearer authentication" stays readable).
_CREDENTIAL = re.compile(
    r"(?i)\b(bearer|basic)(\s+)(?=[A-Za-z._~+/=:-]*[0-9._~+/=:-])[A-Za-z0-9._~+/=:-]{12,}"
)
_AUTH_HEADER = re.compile(
    r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)(?:(?:bearer|basic)\s+)?[^\s\"',}]+"
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@")
_MIN_SECRET = 4  # shorter "secrets" would mask ordinary words


def _is_env_reference(value: Mapping[str, Any]) -> bool:
    return value.get("type") == "env" and set(value) <= {"type", "key", "default"} and "default" not in value


def _mask_all(value: Any) -> Any:
    if isinstance(value, Mapping):
        if _is_env_reference(value):
            return dict(value)
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_all(v) for v in value]
    return None if value is None else MASK


def redact_text(text: str, *, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with credentials and the given secret values masked."""
    return _redact_text(text, _usable(secrets))


def _redact_text(text: str, known: list[str]) -> str:
    for secret in known:
        text = text.replace(secret, MASK)
    # Each pattern needs a word (or the @) that most text does not hold: looked for first,
    # as a run record holds thousands of strings.
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    lowered = text.casefold()
    if "authorization" in lowered:
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{MASK}", text)
    if "bearer" in lowered or "basic" in lowered:
        text = _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return text


def _usable(secrets: Iterable[str | None]) -> list[str]:
    # Longest first, so a secret that contains another is masked whole.
    return sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True)


def redact(value: T, *, secrets: Iterable[str | None] = ()) -> T:
    """A copy of ``value`` (dicts, lists, tuples, strings, scalars) with every secret masked."""
    known = _usable(secrets)
    return _redact(value, known)  # type: ignore[no-any-return]


def _redact(value: Any, known: list[str]) -> Any:
    if isinstance(value, str):
        return _redact_text(value, known)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            out[key] = _redact_entry(key, item, known)
        return out
    if isinstance(value, list):
        return [_redact(v, known) for v in value]
    if isinstance(value, tuple):
        return tuple(_redact(v, known) for v in value)
    return value


def _redact_entry(key: Any, item: Any, known: list[str]) -> Any:
    name = str(key)
    if name == "secrets":
        # Chaos Toolkit: a block of scopes (a dict) holds secrets; a provider's list names scopes.
        if isinstance(item, list) and all(isinstance(v, str) for v in item):
            return list(item)
        return _mask_all(item)
    if _SECRET_KEY.search(name) and item not in (None, "", [], {}):
        if isinstance(item, bool | int | float):
            return item  # a flag or a count about a secret, not the secret
        return _mask_all(item)
    return _redact(item, known)
