"""Recording rules, and the window each one covers: what an alert that reads them needs to
be recognised as a multi-window alert (``chaoslab.prometheus.burnrate``).

Recording rules come from rule files and PrometheusRule objects (``chaoslab.prometheus.rules``)
or from Prometheus's ``/api/v1/rules``; ``link_windows`` gives each alert the windows of the
recording rules it reads (``AlertRule.windows``), so that the analysis stays pure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import promql_parser

from chaoslab.model import AlertRule
from chaoslab.prometheus.burnrate import WINDOW_LABELS, duration_seconds, matchers_of, window_of
from chaoslab.prometheus.promql import parse

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingRule:
    """A recording rule as loaded from a rule file, a PrometheusRule or ``/api/v1/rules``."""

    name: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str = ""


def windows_of(recordings: Sequence[RecordingRule]) -> list[tuple[RecordingRule, float]]:
    """Each recording rule with its window: from its expression (following the recording
    rules it reads), else from its window label. Rules without a window are left out."""
    result = []
    resolved: dict[str, float] = {}
    # A rule may read rules defined after it: repeat until nothing new resolves.
    pending = list(recordings)
    while pending:
        left = []
        for rule in pending:
            window = _rule_window(rule, resolved)
            if window is None:
                left.append(rule)
                continue
            result.append((rule, window))
            resolved.setdefault(rule.name, window)
        if len(left) == len(pending):
            break
        pending = left
    return result


def _rule_window(rule: RecordingRule, resolved: Mapping[str, float]) -> float | None:
    try:
        tree = parse(rule.expr)
    except ValueError:
        return None
    window = window_of(tree, resolved)
    if window is None:
        for label in WINDOW_LABELS:
            if label in rule.labels:
                window = duration_seconds(rule.labels[label])
                if window is not None:
                    break
    return window


def link_windows(alerts: Iterable[AlertRule], recordings: Sequence[RecordingRule]) -> tuple[AlertRule, ...]:
    """``alerts`` with ``windows`` set: the window of each recording rule they read.

    Generators give every service's rule the same name (``slo:sli_error:ratio_rate5m``):
    a selector matches the rules whose labels agree with its exact matchers, and a name is
    kept only when all its matching rules agree on one window."""
    known = windows_of(recordings)
    if not known:
        return tuple(alerts)
    names = {rule.name for rule, _ in known}
    out = []
    for alert in alerts:
        found = _alert_windows(alert.expr, known, names)
        out.append(replace(alert, windows={**alert.windows, **found}) if found else alert)
    return tuple(out)


def _alert_windows(
    expr: str, known: Sequence[tuple[RecordingRule, float]], names: set[str]
) -> dict[str, float]:
    try:
        tree = parse(expr)
    except ValueError:
        return {}
    seen: dict[str, set[float]] = {}

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name in names:
            equal = {m.name: m.value for m in matchers_of(node) if m.op == promql_parser.MatchOp.Equal}
            for rule, window in known:
                if rule.name == node.name and all(rule.labels.get(k, v) == v for k, v in equal.items()):
                    seen.setdefault(node.name, set()).add(window)

    promql_parser.walk(tree, visit)
    return {name: next(iter(found)) for name, found in seen.items() if len(found) == 1}
