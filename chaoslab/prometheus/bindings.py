"""Every catalog service's alerts at once, in time linear in the catalog.

Binding each service in turn (``hypothesis.bind_alerts``) asks, for every rule not bound
to that service, whether it binds to any other service (to tell a global alert):
services × rules × services checks, which takes minutes at a few hundred services.
Here each rule's candidate services are read once (the names its ``alerts:`` lists, its
service labels and its exact-match matchers name: exactly the services
``binding_reason`` would accept), and each service looks up only its own rules.

Same result, same order as ``bind_alerts`` for each service in turn, each (name, expr) once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from chaoslab.model import AlertRule, Catalog, Service
from chaoslab.prometheus.hypothesis import (
    GENERATOR_SERVICE_LABELS,
    SERVICE_LABELS,
    Binding,
    binding_reason,
    matched_services,
)

logger = logging.getLogger(__name__)


def conditions_for_catalog(
    catalog: Catalog, rules: Sequence[AlertRule], *, target: Service | None = None
) -> list[Binding]:
    """Every alert that should halt a fault on ``target``: its own, the global ones and
    every other catalog service's, each (name, expr) once, the target's first."""
    services = list(catalog.services)
    if target is not None:
        services = [target, *(s for s in services if s.name != target.name)]
    listed: dict[str, set[str]] = {}
    for service in services:
        for alert in service.alerts:
            listed.setdefault(alert, set()).add(service.name)
    known = {service.name for service in services}
    candidates = [_candidates(rule, listed) & known for rule in rules]
    by_service: dict[str, list[int]] = {}
    for index, names in enumerate(candidates):
        for name in names:
            by_service.setdefault(name, []).append(index)
    global_rules = [
        i for i, rule in enumerate(rules)
        if not candidates[i] and catalog.guards.selects(rule.name, rule.labels)
    ]
    result: list[Binding] = []
    seen: set[tuple[str, str]] = set()
    for service in services:
        for index in sorted({*by_service.get(service.name, ()), *global_rules}):
            rule = rules[index]
            if (rule.name, rule.expr) in seen:
                continue  # the same rule loaded from two files, or bound to an earlier service
            seen.add((rule.name, rule.expr))
            reason = binding_reason(rule, service)
            if reason is None:
                result.append(Binding(rule=rule, reason="global"))
            else:
                result.append(Binding(rule=rule, reason=reason, service=service.name))
    return result


def _candidates(rule: AlertRule, listed: dict[str, set[str]]) -> set[str]:
    names = set(listed.get(rule.name, ()))
    names.update(v for label in (*SERVICE_LABELS, *GENERATOR_SERVICE_LABELS) if (v := rule.labels.get(label)))
    names.update(matched_services(rule.expr))
    return names
