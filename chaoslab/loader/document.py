"""Reading one chaoslab file (YAML or JSON) into plain data that remembers line numbers.

Mappings come back as :class:`MarkedMap` and lists as :class:`MarkedList`; both know
the line each key or item starts on, so every later validation error can say
``file:line``. This module also checks the envelope every chaoslab file shares:
one document, ``apiVersion: chaoslab/v1`` and a known ``kind``.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from chaoslab.errors import InvalidInputError
from chaoslab.model import API_VERSION

logger = logging.getLogger(__name__)

KINDS = ("Catalog", "Experiment", "GameDay", "Sandbox")

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class MarkedMap(dict[str, Any]):
    """A mapping read from a file: ``line`` is where it starts, ``key_lines`` where each key is."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int | None = None) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}


class MarkedList(list[Any]):
    """A list read from a file: ``line`` is where it starts, ``item_lines`` where each item is."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int | None = None) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


_Base: type[yaml.SafeLoader]
try:  # libyaml parses a 5,000-service catalog many times faster than pure Python
    _Base = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader


class _MarkingLoader(_Base):  # type: ignore[valid-type,misc]
    """SafeLoader that records line marks, rejects duplicate keys, and does not read
    ``10:00`` as the YAML 1.1 base-60 integer 600 (run windows are written that way)."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_MarkingLoader.add_implicit_resolver(
    _INT_TAG,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_MarkingLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_map(loader: _MarkingLoader, node: yaml.MappingNode) -> Iterator[MarkedMap]:
    data = MarkedMap(node.start_mark.line + 1)
    yield data
    # A key written twice is an error; a key that overrides one brought in by a `<<:`
    # merge is not (that is what merges are for), so only the node's own keys are checked.
    own: dict[str, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=False)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"mapping keys must be strings, got {key!r}", key_node.start_mark
            )
        if key in own:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {own[key]})", key_node.start_mark
            )
        own[key] = key_node.start_mark.line + 1
    loader.flatten_mapping(node)  # merged keys first, then the node's own, which win
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=False)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"mapping keys must be strings, got {key!r}", key_node.start_mark
            )
        data[key] = loader.construct_object(value_node, deep=False)
        data.key_lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _MarkingLoader, node: yaml.SequenceNode) -> Iterator[MarkedList]:
    data = MarkedList(node.start_mark.line + 1)
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=False))
        data.item_lines.append(item.start_mark.line + 1)


_MarkingLoader.add_constructor(_MAP_TAG, _construct_map)
_MarkingLoader.add_constructor(_SEQ_TAG, _construct_seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """One chaoslab file: its kind and its data (``metadata`` and ``spec`` included)."""

    path: Path
    kind: str
    data: MarkedMap


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _from_plain(value: Any) -> Any:
    """Marked containers without lines, for JSON that YAML reads differently."""
    if isinstance(value, dict):
        out = MarkedMap()
        for key, item in value.items():
            out[key] = _from_plain(item)
        return out
    if isinstance(value, list):
        seq = MarkedList()
        seq.extend(_from_plain(v) for v in value)
        return seq
    return value


def _tab_hint(text: str, line: int | None) -> str:
    """Why a line with a tab fails: libyaml only says the character cannot start a token."""
    lines = text.splitlines()
    if line is not None and 0 < line <= len(lines) and "\t" in lines[line - 1]:
        return " (a tab: YAML indents with spaces only)"
    return ""


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        nodes = list(yaml.compose_all(text, Loader=_MarkingLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = f"not valid YAML: {exc.problem or exc.context}{_tab_hint(text, line)}"
        raise InvalidInputError(path, "", reason, line=line) from exc
    except yaml.YAMLError as exc:
        raise InvalidInputError(path, "", f"not valid YAML: {exc}") from exc
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        raise InvalidInputError(path, "", "the file is empty")
    if len(nodes) > 1:
        raise InvalidInputError(
            path, "", f"holds {len(nodes)} YAML documents; chaoslab reads one document per file",
            line=nodes[1].start_mark.line + 1,
        )
    loader = _MarkingLoader("")
    try:
        return loader.construct_document(nodes[0])
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise InvalidInputError(path, "", f"not valid YAML: {exc.problem}", line=line) from exc
    finally:
        loader.dispose()


class _DuplicateKeyError(ValueError):
    """A JSON object that repeats a key (json keeps the last one silently)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _parse_json(path: Path, text: str) -> Any:
    try:
        strict = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(path, "", f"not valid JSON: {exc.msg}", line=exc.lineno) from exc
    except _DuplicateKeyError as exc:
        # The YAML reader finds the same duplicate and knows its line.
        reason, line = f"duplicate key {exc.args[0]!r}", None
        try:
            _parse_yaml(path, text)
        except InvalidInputError as located:
            if "duplicate key" in located.reason:
                reason, line = located.reason.removeprefix("not valid YAML: "), located.line
        raise InvalidInputError(path, "", f"not valid JSON: {reason}", line=line) from exc
    # JSON is (nearly) YAML, and the YAML reader gives line numbers; keep its result
    # only when it reads exactly what json does.
    try:
        marked = _parse_yaml(path, text)
    except InvalidInputError:
        marked = None
    return marked if marked is not None and _plain(marked) == strict else _from_plain(strict)


def read_data(path: str | Path) -> Any:
    """The parsed content of a YAML or JSON file, containers marked with lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidInputError(path, "", "file not found") from exc
    except IsADirectoryError as exc:
        raise InvalidInputError(path, "", "is a directory, not a file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(path, "", f"cannot be read: {exc}") from exc
    try:
        if path.suffix.lower() == ".json":
            return _parse_json(path, text)
        return _parse_yaml(path, text)
    except RecursionError as exc:  # no chaoslab file nests hundreds of levels deep
        raise InvalidInputError(path, "", "nested too deeply to be a chaoslab file") from exc


def read_document(path: str | Path, *, kinds: Collection[str] = KINDS) -> Document:
    """Read a chaoslab file and check its envelope (``apiVersion``, ``kind``, one document)."""
    path = Path(path)
    data = read_data(path)
    if not isinstance(data, MarkedMap):
        raise InvalidInputError(path, "", f"must be a mapping with apiVersion, kind, metadata and spec, "
                                          f"got {type_name(data)}", line=1)
    version = data.get("apiVersion")
    if version is None:
        raise InvalidInputError(path, "apiVersion", f"is required: apiVersion: {API_VERSION}{_foreign(data)}",
                                line=data.line)
    if version != API_VERSION:
        raise InvalidInputError(path, "apiVersion", f"must be {API_VERSION}, got {version!r}{_foreign(data)}",
                                line=data.key_lines.get("apiVersion"))
    kind = data.get("kind")
    if kind is None:
        raise InvalidInputError(path, "kind", f"is required: one of {', '.join(kinds)}", line=data.line)
    if kind not in kinds:
        close = difflib.get_close_matches(str(kind), list(kinds), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidInputError(path, "kind", f"must be one of {', '.join(kinds)}, got {kind!r}{hint}",
                                line=data.key_lines.get("kind"))
    logger.debug("read %s %s", kind, path)
    return Document(path=path, kind=str(kind), data=data)


def _foreign(data: MarkedMap) -> str:
    """A hint when the file is another tool's document that people pass to chaoslab by mistake."""
    if "groups" in data or data.get("kind") == "PrometheusRule":
        return ("; this looks like Prometheus alert rules: give them to `chaoslab hypothesis --rules`, "
                "a game day's spec.rules or an experiment's spec.hypothesis.rules")
    if str(data.get("apiVersion", "")).startswith("chaos-mesh.org/"):
        return ("; this looks like a Chaos Mesh object: a chaoslab Experiment holds its spec "
                "under spec.fault.networkChaos or spec.fault.podChaos")
    return ""


def type_name(value: object) -> str:
    """How a YAML value is called in error messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def document_from(data: Mapping[str, Any], *, path: str | Path) -> Document:
    """A document built in memory (values written in Python), named ``path`` in errors;
    the loader then checks it exactly as it checks a file."""
    return Document(path=Path(path), kind=str(data.get("kind", "")), data=_from_plain(dict(data)))
