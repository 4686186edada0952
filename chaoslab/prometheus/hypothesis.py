"""Pure: which alert rules belong to which service, and the Chaos Toolkit steady-state
hypothesis they make.

The binding contract:

1. A catalog service's ``alerts: [names]`` binds those alerts explicitly.
2. An alert is bound to service S when its ``labels`` have ``service``, ``app`` or
   ``app_kubernetes_io_name`` equal to S's name (label), or when its ``expr`` holds an
   exact-match matcher ``service="S"``, ``app="S"`` or ``job="S"`` (matcher). The labels
   SLO generators write count the same way: Sloth's ``sloth_service``, and Pyrra's ``slo``
   and ``job`` (Pyrra copies the objective's ``job`` matcher onto its alerts), as labels
   and as matchers, also on the recording rules an alert reads (``slo:...{sloth_service="S"}``).
3. An alert bound to no catalog service that the catalog's guard policy selects
   (``labels.severity``, or without one a generator's ``sloth_severity``, ``critical`` or
   ``page`` by default) is global: a guard alert, part of every service's hypothesis and
   judged by its state only (``chaoslab.prometheus.guards``). Other unbound alerts are no
   halt condition.
4. A service's hypothesis = the alerts bound to it, any severity (its SLO conditions:
   one probe each, judged by the condition) + the guard alerts (one probe for all).

Matchers are read from the parsed PromQL tree, never with regular expressions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import promql_parser

from chaoslab.errors import PlanError
from chaoslab.model import AlertRule, Catalog, GuardPolicy, Service
from chaoslab.prometheus.promql import parse

logger = logging.getLogger(__name__)

BindingReason = Literal["explicit", "label", "matcher", "global"]

SERVICE_LABELS = ("service", "app", "app_kubernetes_io_name")
SERVICE_MATCHERS = ("service", "app", "job")
# What SLO generators write: Sloth (sloth_service) and Pyrra (slo, and job on its alerts).
GENERATOR_SERVICE_LABELS = ("sloth_service", "slo", "job")
GENERATOR_SERVICE_MATCHERS = ("sloth_service", "slo")
GLOBAL_SEVERITIES = ("critical", "page")
SEVERITY_LABELS = ("severity", "sloth_severity")  # the routing label first, then a generator's

PROBE_MODULE = "chaoslab.prometheus.probes"
PROBE_FUNC = "alert_quiet"
GUARDS_PROBE_FUNC = "guards_quiet"
GUARDS_PROBE_NAME = "guard-alerts-not-firing"
# The CTK secrets scope whose `prometheus_token` key the probes receive.
SECRETS_SCOPE = "prometheus"
TOLERANCE = {"type": "regex", "target": "verdict", "pattern": "^met$"}

_FLIPPED = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "=="}


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """An alert rule that is part of a service's steady state, and why."""

    rule: AlertRule
    reason: BindingReason
    service: str | None = None  # the service it is bound to; None for a global alert

    @property
    def guard(self) -> bool:
        """A global alert is a guard: judged by its state, not by its condition."""
        return self.reason == "global"


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """``<lhs> <op> <threshold>`` with the threshold always on the right."""

    lhs: str
    op: str  # > < >= <= ==
    threshold: float

    def breached(self, value: float) -> bool:
        """Whether ``value`` makes the condition true (NaN never does, as in Prometheus)."""
        return bool(
            {
                ">": value > self.threshold,
                "<": value < self.threshold,
                ">=": value >= self.threshold,
                "<=": value <= self.threshold,
                "==": value == self.threshold,
            }[self.op]
        )

    def margin(self, value: float) -> float:
        """Headroom before the threshold: positive is the safe side, zero or less is at or past it."""
        if self.op == "==":
            # `up == 0`: the distance from the one value that breaches.
            return abs(value - self.threshold)
        return self.threshold - value if self.op in (">", ">=") else value - self.threshold

    def describe(self) -> str:
        return f"{self.op} {self.threshold:g}"


def binding_reason(rule: AlertRule, service: Service) -> BindingReason | None:
    """Why ``rule`` is bound to ``service`` (points 1 and 2 of the contract), or None."""
    if rule.name in service.alerts:
        return "explicit"
    if any(rule.labels.get(label) == service.name for label in (*SERVICE_LABELS, *GENERATOR_SERVICE_LABELS)):
        return "label"
    if service.name in _matched_services(rule.expr):
        return "matcher"
    return None


def is_global(rule: AlertRule, services: Iterable[Service], policy: GuardPolicy | None = None) -> bool:
    """Point 3: bound to none of ``services`` and selected by the guard policy."""
    if not (policy or GuardPolicy()).selects(rule.name, rule.labels):
        return False
    return all(binding_reason(rule, service) is None for service in services)


def severity(rule: AlertRule) -> str | None:
    """The alert's severity: its ``severity`` label, else a generator's (``sloth_severity``)."""
    return next((rule.labels[label] for label in SEVERITY_LABELS if label in rule.labels), None)


def bind_alerts(service: Service, rules: Sequence[AlertRule], catalog: Catalog | None) -> list[Binding]:
    """The alerts of ``service``'s hypothesis (point 4), in rule order, each rule once.

    Without a catalog, ``service`` is the only service known, so every paging or critical
    alert not bound to it counts as global: erring towards more checks, not fewer."""
    known = _known_services(service, catalog)
    policy = catalog.guards if catalog is not None else GuardPolicy()
    bindings: list[Binding] = []
    seen: set[tuple[str, str]] = set()
    for rule in rules:
        if (rule.name, rule.expr) in seen:
            continue  # the same rule loaded from two files
        reason = binding_reason(rule, service)
        if reason is not None:
            bindings.append(Binding(rule=rule, reason=reason, service=service.name))
        elif is_global(rule, known, policy):
            bindings.append(Binding(rule=rule, reason="global"))
        else:
            continue
        seen.add((rule.name, rule.expr))
    return bindings


def unknown_explicit_alerts(service: Service, rules: Sequence[AlertRule]) -> tuple[str, ...]:
    """Names in ``service.alerts`` that no loaded rule defines."""
    names = {rule.name for rule in rules}
    return tuple(name for name in service.alerts if name not in names)


def build_hypothesis(
    service: Service,
    rules: Sequence[AlertRule],
    catalog: Catalog | None,
    *,
    sources: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """The Chaos Toolkit ``steady-state-hypothesis`` of ``service``: one probe per bound alert.

    Raises PlanError when no alert binds: a hypothesis without probes would always hold.
    ``sources`` (the rule files read) only make that message name them."""
    bindings = bind_alerts(service, rules, catalog)
    if not bindings:
        files = ", ".join(dict.fromkeys([*map(str, sources), *(r.source for r in rules if r.source)]))
        if not rules:
            where = f" in {files}" if files else ""
            raise PlanError(f"no alerting rule{where} (recording rules are ignored), "
                            f"so service {service.name!r} has no hypothesis")
        where = f" (rule files: {files})" if files else ""
        raise PlanError(
            f"no alert rule binds to service {service.name!r}{where}: give it `alerts:` in the catalog, "
            "label its alerts with service/app, or add a paging alert for the whole system"
        )
    missing = unknown_explicit_alerts(service, rules)
    if missing:
        logger.warning(
            "service %s names alerts that no rule file defines: %s", service.name, ", ".join(missing)
        )
    names: dict[str, int] = {}
    probes = []
    for binding in bindings:
        if binding.guard:
            continue
        count = names[binding.rule.name] = names.get(binding.rule.name, 0) + 1
        suffix = f"-{count}" if count > 1 else ""
        probes.append(probe_for(binding.rule, name=f"alert-{binding.rule.name}-quiet{suffix}"))
    guards = [b.rule.name for b in bindings if b.guard]
    if guards:
        probes.append(guards_probe(guards, catalog.guards if catalog is not None else GuardPolicy()))
    return {"title": f"SLO alerts of {service.name} are quiet", "probes": probes}


def guards_probe(alerts: Sequence[str], policy: GuardPolicy) -> dict[str, Any]:
    """One CTK probe for every guard alert: met unless one of them is firing (and not
    ignored). It reads the alerts' states only, in one request, however many they are."""
    arguments: dict[str, Any] = {"alerts": list(dict.fromkeys(alerts))}
    if policy.ignore:
        arguments["ignore"] = [entry.text for entry in policy.ignore]
    return {
        "type": "probe",
        "name": GUARDS_PROBE_NAME,
        "tolerance": dict(TOLERANCE),
        "provider": {
            "type": "python",
            "module": PROBE_MODULE,
            "func": GUARDS_PROBE_FUNC,
            "arguments": arguments,
            "secrets": [SECRETS_SCOPE],
        },
    }


def probe_for(rule: AlertRule, *, name: str | None = None) -> dict[str, Any]:
    """One CTK probe checking that ``rule`` is neither pending nor firing and its condition is false."""
    return {
        "type": "probe",
        "name": name or f"alert-{rule.name}-quiet",
        "tolerance": dict(TOLERANCE),
        "provider": {
            "type": "python",
            "module": PROBE_MODULE,
            "func": PROBE_FUNC,
            "arguments": {"alert": rule.name, "expr": rule.expr},
            "secrets": [SECRETS_SCOPE],
        },
    }


def comparison(expr: str) -> Comparison | None:
    """The comparison when ``expr`` is a plain ``<lhs> > <number>`` (or <, >=, <=, ==, either side).

    ``==`` matters for alerts such as ``up{job="x"} == 0``: without a left-hand side to
    check, a target that vanished from Prometheus would pass as quiet."""
    return _comparison(expr)


@lru_cache(maxsize=1024)
def _comparison(expr: str) -> Comparison | None:
    try:
        node = parse(expr)
    except ValueError:
        return None
    depth = 0
    while isinstance(node, promql_parser.ParenExpr):
        node, depth = node.expr, depth + 1
    if not isinstance(node, promql_parser.BinaryExpr):
        return None
    op = str(node.op)
    if op not in _FLIPPED or (node.modifier is not None and node.modifier.return_bool):
        return None
    right, left = _number(node.rhs), _number(node.lhs)
    if (right is None) == (left is None):
        return None
    sides = _split(expr, op=op, depth=depth, fingerprints=(str(node.lhs), str(node.rhs)))
    if sides is None:
        return None
    if right is not None:
        return Comparison(lhs=sides[0], op=op, threshold=right)
    assert left is not None  # exactly one side is a number, checked above
    return Comparison(lhs=sides[1], op=_FLIPPED[op], threshold=left)


def _split(expr: str, *, op: str, depth: int, fingerprints: tuple[str, str]) -> tuple[str, str] | None:
    """The source text on each side of the top-level ``op``.

    Taken from ``expr`` itself, because the parser prints string literals without their
    escapes (``"a\\.b"`` comes back as ``"a\\.b"``). A split is accepted when both sides
    parse back to the same trees as the parsed expression's sides."""
    for index in range(len(expr) - len(op), -1, -1):
        if not expr.startswith(op, index) or (len(op) == 1 and expr[index + 1 : index + 2] == "="):
            continue
        left = expr[:index].strip()
        right = expr[index + len(op) :].strip()
        if depth:
            if not (left.startswith("(" * depth) and right.endswith(")" * depth)):
                continue
            left, right = left[depth:].strip(), right[:-depth].strip()
        if (_fingerprint(left), _fingerprint(right)) == fingerprints:
            return left, right
    return None


def _fingerprint(text: str) -> str | None:
    try:
        return str(parse(text))
    except ValueError:
        return None


def _number(node: Any) -> float | None:
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    if isinstance(node, promql_parser.NumberLiteral):
        value = float(node.val)
        return value if not math.isnan(value) else None
    return None


@lru_cache(maxsize=1024)
def _matched_services(expr: str) -> frozenset[str]:
    """Values of exact-match ``service``/``app``/``job`` (and generator) matchers anywhere in ``expr``."""
    try:
        tree = parse(expr)
    except ValueError:
        return frozenset()  # rules are parsed on load; an unparsable expr binds nothing
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            groups = [node.matchers.matchers, *node.matchers.or_matchers]
            for matcher in (m for group in groups for m in group):
                if matcher.op == promql_parser.MatchOp.Equal and matcher.name in _MATCHERS:
                    found.add(matcher.value)

    promql_parser.walk(tree, visit)
    return frozenset(found)


_MATCHERS = frozenset((*SERVICE_MATCHERS, *GENERATOR_SERVICE_MATCHERS))


def _known_services(service: Service, catalog: Catalog | None) -> list[Service]:
    services = list(catalog.services) if catalog is not None else []
    if all(s.name != service.name for s in services):
        services.append(service)
    return services


def matched_services(expr: str) -> frozenset[str]:
    """Values of exact-match ``service``/``app``/``job`` matchers anywhere in ``expr``."""
    return _matched_services(expr)
