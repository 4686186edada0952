"""Typed, located access to the fields of a marked mapping.

:class:`Where` is a position in a file (field path and line); :class:`Fields` reads a
mapping's keys as typed values and turns every mistake into an
``InvalidInputError`` that names the file, the field path and the line. Unknown keys
are errors with a "did you mean" suggestion, so a typo never passes silently.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from chaoslab.errors import InvalidInputError
from chaoslab.loader.document import Document, MarkedList, MarkedMap, type_name
from chaoslab.model import parse_go_duration
from chaoslab.scope import suggest

E = TypeVar("E", bound=StrEnum)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_PATTERN = _DNS_LABEL.pattern
TOP_FIELDS, TOP_REQUIRED = ("apiVersion", "kind", "metadata", "spec"), ("metadata", "spec")


@dataclass(frozen=True, slots=True)
class Where:
    """A field in a file: ``spec.fault.networkChaos.delay.latency`` on line 12."""

    path: Path | None
    field: str = ""
    line: int | None = None

    def key(self, container: object, key: str) -> Where:
        line = container.key_lines.get(key) if isinstance(container, MarkedMap) else None
        return Where(self.path, f"{self.field}.{key}" if self.field else key, line or self.line)

    def item(self, container: object, index: int) -> Where:
        line = None
        if isinstance(container, MarkedList) and index < len(container.item_lines):
            line = container.item_lines[index]
        return Where(self.path, f"{self.field}[{index}]", line or self.line)

    def fail(self, reason: str) -> InvalidInputError:
        return InvalidInputError(self.path, self.field, reason, line=self.line)


def check_dns_label(value: object, where: Where, *, what: str = "a name") -> str:
    """A Kubernetes DNS-1123 label: what names, namespaces and label values must be."""
    if not isinstance(value, str):
        raise where.fail(f"must be {what} (a string), got {type_name(value)}")
    if len(value) > 63:
        raise where.fail(f"{value!r} is {len(value)} characters; {what} is at most 63 (DNS-1123 label)")
    if not _DNS_LABEL.match(value):
        raise where.fail(
            f"{value!r} is not a DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def check_duration(value: object, where: Where) -> str:
    """A Go duration greater than zero (``30s``, ``1.5m``, ``2h45m``)."""
    if not isinstance(value, str):
        raise where.fail(f"must be a Go duration such as 30s or 2m, got {type_name(value)}")
    try:
        seconds = parse_go_duration(value)
    except ValueError as exc:
        raise where.fail(str(exc)) from exc
    if seconds <= 0:
        raise where.fail(f"{value!r} must be longer than zero")
    return value


def check_enum(value: object, where: Where, enum: type[E]) -> E:
    choices = [member.value for member in enum]
    if not isinstance(value, str) or value not in choices:
        hint = suggest(value, choices) if isinstance(value, str) else ""
        shown = repr(value) if isinstance(value, str) else type_name(value)
        raise where.fail(f"must be one of {', '.join(choices)}, got {shown}{hint}")
    return enum(value)


def number_text(value: object, where: Where) -> str:
    """A string field that people also write as a bare number: ``25`` → ``"25"``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise where.fail(f"must be a string such as \"25\", got {type_name(value)}")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class Fields:
    """The keys of one mapping, checked against what is allowed and required."""

    __slots__ = ("data", "where")

    def __init__(
        self,
        value: object,
        where: Where,
        *,
        allowed: Collection[str],
        required: Sequence[str] = (),
        unsupported: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(value, Mapping):
            raise where.fail(f"must be a mapping, got {type_name(value)}")
        self.data: Mapping[str, Any] = value
        self.where = where
        for key in value:
            if unsupported and key in unsupported:
                raise where.key(value, key).fail(unsupported[key])
            if key not in allowed:
                raise where.key(value, key).fail(
                    f"unknown field {key!r}{suggest(key, allowed)}; allowed here: {', '.join(allowed)}"
                )
        for key in required:
            if value.get(key) is None:
                raise self.at(key).fail("is required")

    def __contains__(self, key: str) -> bool:
        return self.data.get(key) is not None

    def at(self, key: str) -> Where:
        return self.where.key(self.data, key)

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def sub(
        self,
        key: str,
        *,
        allowed: Collection[str],
        required: Sequence[str] = (),
        unsupported: Mapping[str, str] | None = None,
    ) -> Fields | None:
        if key not in self:
            return None
        return Fields(self.data[key], self.at(key), allowed=allowed, required=required,
                      unsupported=unsupported)

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value:
            raise self.at(key).fail("is required" if value is None else f"must be a non-empty string, "
                                                                          f"got {type_name(value)}")
        return value

    def opt_text(self, key: str) -> str | None:
        return self.text(key) if key in self else None

    def integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.data.get(key)
        where = self.at(key)
        if value is None:
            raise where.fail("is required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.fail(f"must be a whole number, got {type_name(value)}")
        if minimum is not None and value < minimum:
            raise where.fail(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise where.fail(f"must be at most {maximum}, got {value}")
        return value

    def opt_integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        return self.integer(key, minimum=minimum, maximum=maximum) if key in self else None

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.at(key).fail(f"must be true or false, got {type_name(value)}")
        return value

    def items(self, key: str) -> list[tuple[Any, Where]]:
        """The items of a list field with their positions (empty when absent)."""
        value = self.data.get(key)
        if value is None:
            return []
        where = self.at(key)
        if not isinstance(value, list):
            raise where.fail(f"must be a list, got {type_name(value)}")
        return [(item, where.item(value, i)) for i, item in enumerate(value)]

    def text_list(self, key: str) -> tuple[str, ...]:
        out = []
        for item, where in self.items(key):
            if not isinstance(item, str) or not item:
                raise where.fail(f"must be a non-empty string, got {type_name(item)}")
            out.append(item)
        return tuple(out)

    def text_map(self, key: str) -> dict[str, str]:
        """A ``map[string]string``; numbers must be quoted, as Kubernetes wants strings."""
        value = self.data.get(key)
        if value is None:
            return {}
        where = self.at(key)
        if not isinstance(value, Mapping):
            raise where.fail(f"must be a mapping of strings, got {type_name(value)}")
        for name, item in value.items():
            if not isinstance(item, str):
                raise where.key(value, name).fail(
                    f"must be a string, got {type_name(item)}; quote it, e.g. \"{item}\""
                )
        return dict(value)

    def enum(self, key: str, enum: type[E], *, default: E | None = None) -> E:
        if key not in self:
            if default is not None:
                return default
            raise self.at(key).fail(f"is required: one of {', '.join(m.value for m in enum)}")
        return check_enum(self.data[key], self.at(key), enum)


def top_fields(doc: Document) -> Fields:
    """The top level of a chaoslab document: apiVersion, kind, metadata and spec."""
    return Fields(doc.data, Where(doc.path, "", doc.data.line), allowed=TOP_FIELDS, required=TOP_REQUIRED)
