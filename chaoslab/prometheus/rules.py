"""Prometheus alert rules from files and PrometheusRule objects → ``AlertRule`` values.

Accepted documents: a plain rule file (``groups: [...]``), a Prometheus Operator
``PrometheusRule`` (``spec.groups``) and a Kubernetes ``List`` of them; a YAML file may
hold several documents. Recording rules are kept apart: they are not hypotheses, but the
windows of the ones an alert reads tell which leg of a multi-window alert is fastest
(``chaoslab.prometheus.burnrate``). Every ``expr``
is parsed with a real PromQL parser, so a broken rule is reported here, naming the file,
the line and the field path (``groups[0].rules[2].expr``), rather than at run time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from chaoslab.errors import InvalidInputError
from chaoslab.model import AlertRule
from chaoslab.prometheus.promql import parse
from chaoslab.prometheus.recordings import RecordingRule, link_windows

logger = logging.getLogger(__name__)

PROMETHEUS_RULE_API = "monitoring.coreos.com/v1"

# Prometheus' own duration grammar (common/model.ParseDuration): units in order, integers only.
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS = (365 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)

_RULE_KEYS = frozenset({"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"})
# Plain Prometheus keys plus what the PrometheusRule CRD and Thanos add to a group.
_GROUP_KEYS = frozenset(
    {"name", "interval", "rules", "limit", "query_offset", "labels", "partial_response_strategy"}
)


class _Located(dict[Any, Any]):
    """A YAML mapping that remembers the line it started on."""

    line: int | None = None


_Base: type[yaml.SafeLoader]
try:  # libyaml: a rule file parses about ten times faster than in pure Python, marks included
    _Base = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader


class _LineLoader(_Base):  # type: ignore[valid-type,misc]
    """SafeLoader whose mappings carry their line number, for error messages."""


def _construct_located(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[_Located]:
    data = _Located()
    data.line = node.start_mark.line + 1
    yield data
    # Prometheus (yaml.v3) refuses a repeated key; PyYAML would keep the last one silently.
    # Keys brought in by a `<<:` merge may be overridden, so only the node's own keys count.
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool):
            continue  # construct_mapping reports unhashable keys itself
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    data.update(loader.construct_mapping(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_located)


def parse_prometheus_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``1m``, ``5m30s``, ``1d`` or ``0s``.

    Raises ValueError for what Prometheus rejects (fractions, signs, units out of order)."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if text == "0":
        return 0.0
    if not text or match is None:
        raise ValueError(f"{text!r} is not a Prometheus duration such as 30s, 1m, 5m30s or 1d")
    return sum(float(n) * unit for n, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if n)


Rule = AlertRule | RecordingRule


def load_rules(paths: Sequence[str | Path]) -> tuple[AlertRule, ...]:
    """Every alerting rule in the given files, in file order. Duplicates across files are kept.
    The recording rules of all the files give the alerts their ``windows``."""
    return link_windows(*load_rule_set(paths))


def load_rule_set(paths: Sequence[str | Path]) -> tuple[tuple[AlertRule, ...], tuple[RecordingRule, ...]]:
    """The alerting and the recording rules of the given files, each in file order."""
    rules: list[Rule] = []
    for path in paths:
        rules.extend(_load_file(Path(path)))
    return _apart(rules)


def _apart(rules: Sequence[Rule]) -> tuple[tuple[AlertRule, ...], tuple[RecordingRule, ...]]:
    alerts = tuple(r for r in rules if isinstance(r, AlertRule))
    return alerts, tuple(r for r in rules if isinstance(r, RecordingRule))


def _load_file(path: Path) -> tuple[Rule, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(path, "", f"cannot read rule file: {exc.strerror or exc}") from exc
    try:
        docs = [doc for doc in yaml.load_all(text, Loader=_LineLoader) if doc is not None]
    except RecursionError as exc:
        raise InvalidInputError(path, "", "nested too deeply to be a rule file") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        if "maximum nesting depth" in problem:  # libyaml's own depth limit, met before Python's
            raise InvalidInputError(path, "", "nested too deeply to be a rule file", line=line) from exc
        raise InvalidInputError(path, "", f"not valid YAML: {problem}", line=line) from exc
    rules = _parse_all(docs, source=str(path))
    logger.debug("%s: %d rules", path, len(rules))
    return rules


def parse_rule_documents(docs: Sequence[Any], *, source: str) -> tuple[AlertRule, ...]:
    """Alerting rules from already-parsed documents (rule files, PrometheusRule objects or
    Lists of them). ``source`` names where they came from (a path or ``k8s://ns/name``)."""
    return link_windows(*parse_rule_set(docs, source=source))


def parse_rule_set(
    docs: Sequence[Any], *, source: str
) -> tuple[tuple[AlertRule, ...], tuple[RecordingRule, ...]]:
    """The alerting and the recording rules of already-parsed documents."""
    return _apart(_parse_all(docs, source=source))


def _parse_all(docs: Sequence[Any], *, source: str) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for index, doc in enumerate(docs):
        prefix = f"documents[{index}]." if len(docs) > 1 else ""
        rules.extend(_parse_document(doc, source=source, prefix=prefix))
    return tuple(rules)


def _parse_document(doc: Any, *, source: str, prefix: str) -> list[Rule]:
    if not isinstance(doc, Mapping):
        raise InvalidInputError(source, prefix.rstrip(".") or "", "expected a mapping with `groups`")
    if doc.get("kind") == "List" and "items" in doc:
        items = _require_list(doc, "items", source=source, field=f"{prefix}items")
        rules: list[Rule] = []
        for index, item in enumerate(items):
            rules.extend(_parse_document(item, source=source, prefix=f"{prefix}items[{index}]."))
        return rules
    if doc.get("kind") == "PrometheusRule":
        if doc.get("apiVersion") != PROMETHEUS_RULE_API:
            raise InvalidInputError(
                source,
                f"{prefix}apiVersion",
                f"expected {PROMETHEUS_RULE_API} for a PrometheusRule, got {doc.get('apiVersion')!r}",
                line=_line(doc),
            )
        spec = doc.get("spec")
        if not isinstance(spec, Mapping):
            raise InvalidInputError(source, f"{prefix}spec", "a PrometheusRule needs a spec", line=_line(doc))
        return _parse_groups(spec, source=source, prefix=f"{prefix}spec.")
    if "groups" not in doc:
        raise InvalidInputError(
            source, f"{prefix}groups", "missing (not a rule file or PrometheusRule)", line=_line(doc)
        )
    return _parse_groups(doc, source=source, prefix=prefix)


def _parse_groups(holder: Mapping[str, Any], *, source: str, prefix: str) -> list[Rule]:
    groups = _require_list(holder, "groups", source=source, field=f"{prefix}groups")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, group in enumerate(groups):
        where = f"{prefix}groups[{index}]"
        name, interval_s, group_rules = _parse_group_header(group, source=source, where=where)
        if name in seen:
            raise InvalidInputError(source, f"{where}.name", f"group {name!r} is repeated", line=_line(group))
        seen.add(name)
        for rule_index, raw in enumerate(group_rules):
            rule = _parse_rule(
                raw,
                source=source,
                where=f"{where}.rules[{rule_index}]",
                group=name,
                interval_s=interval_s,
            )
            rules.append(rule)
    return rules


def _parse_group_header(group: Any, *, source: str, where: str) -> tuple[str, float | None, list[Any]]:
    if not isinstance(group, Mapping):
        raise InvalidInputError(source, where, "a group must be a mapping with name and rules")
    _reject_unknown(group, _GROUP_KEYS, source=source, where=where)
    name = group.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(source, f"{where}.name", "a group needs a non-empty name", line=_line(group))
    interval_s = None
    if group.get("interval") is not None:
        interval_s = _duration(group, "interval", source=source, where=where)
    rules = _require_list(group, "rules", source=source, field=f"{where}.rules", optional=True)
    return name, interval_s, rules


def _parse_rule(
    raw: Any, *, source: str, where: str, group: str, interval_s: float | None
) -> Rule:
    if not isinstance(raw, Mapping):
        raise InvalidInputError(source, where, "a rule must be a mapping")
    _reject_unknown(raw, _RULE_KEYS, source=source, where=where)
    line = _line(raw)
    has_alert, has_record = raw.get("alert") is not None, raw.get("record") is not None
    if has_alert == has_record:
        raise InvalidInputError(source, where, "a rule needs exactly one of `alert` or `record`", line=line)
    expr = _parse_expr(raw, source=source, where=where)
    if has_record:
        if not isinstance(raw["record"], str) or not raw["record"]:
            raise InvalidInputError(source, f"{where}.record", "must be a metric name", line=line)
        labels = _string_map(raw, "labels", source=source, where=where)
        return RecordingRule(name=raw["record"], expr=expr, labels=labels, source=source)
    name = raw["alert"]
    if not isinstance(name, str) or not name:
        raise InvalidInputError(source, f"{where}.alert", "must be a non-empty string", line=line)
    for_s = _duration(raw, "for", source=source, where=where) if raw.get("for") is not None else 0.0
    return AlertRule(
        name=name,
        expr=expr,
        for_s=for_s,
        labels=_string_map(raw, "labels", source=source, where=where),
        annotations=_string_map(raw, "annotations", source=source, where=where),
        group=group,
        interval_s=interval_s,
        source=source,
    )


def _parse_expr(rule: Mapping[str, Any], *, source: str, where: str) -> str:
    expr = rule.get("expr")
    if isinstance(expr, int | float) and not isinstance(expr, bool):
        expr = str(expr)  # `expr: 1` is a valid PromQL number literal
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidInputError(source, f"{where}.expr", "a rule needs a PromQL expression", line=_line(rule))
    try:
        parse(expr)
    except ValueError as exc:
        raise InvalidInputError(
            source, f"{where}.expr", f"invalid PromQL: {exc}: {expr.strip()}", line=_line(rule)
        ) from exc
    return expr.strip()


def _duration(holder: Mapping[str, Any], key: str, *, source: str, where: str) -> float:
    try:
        return parse_prometheus_duration(holder[key])
    except ValueError as exc:
        raise InvalidInputError(source, f"{where}.{key}", str(exc), line=_line(holder)) from exc


def _string_map(holder: Mapping[str, Any], key: str, *, source: str, where: str) -> dict[str, str]:
    raw = holder.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInputError(source, f"{where}.{key}", "must be a mapping of strings", line=_line(holder))
    result: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(value, bool):
            value = "true" if value else "false"  # as Prometheus (Go) would read it
        elif isinstance(value, int | float):
            value = str(value)
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidInputError(
                source,
                f"{where}.{key}.{name}",
                "label and annotation values must be strings",
                line=_line(raw),
            )
        result[name] = value
    return result


def _require_list(
    holder: Mapping[str, Any], key: str, *, source: str, field: str, optional: bool = False
) -> list[Any]:
    value = holder.get(key)
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise InvalidInputError(source, field, "must be a list", line=_line(holder))
    return value


def _reject_unknown(holder: Mapping[str, Any], known: frozenset[str], *, source: str, where: str) -> None:
    unknown = sorted(str(key) for key in holder if key not in known)
    if unknown:
        raise InvalidInputError(
            source,
            f"{where}.{unknown[0]}",
            f"unknown field (expected one of {', '.join(sorted(known))})",
            line=_line(holder),
        )


def _line(node: Any) -> int | None:
    return node.line if isinstance(node, _Located) else None
