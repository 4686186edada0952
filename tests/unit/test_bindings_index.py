"""The catalog-wide binding (linear in the catalog) gives exactly what binding each service
in turn gives: same alerts, same reasons, same services, same order."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chaoslab.model import AlertRule, Catalog, Selector, Service, Tier
from chaoslab.prometheus.bindings import conditions_for_catalog
from chaoslab.prometheus.hypothesis import Binding, bind_alerts


def conditions_for(
    catalog: Catalog, rules: Sequence[AlertRule], *, target: Service | None = None
) -> list[Binding]:
    """The reference: each service bound in turn (the target's first), each (name, expr) once."""
    services = list(catalog.services)
    if target is not None:
        services = [target, *(s for s in services if s.name != target.name)]
    result: list[Binding] = []
    seen: set[tuple[str, str]] = set()
    for service in services:
        for binding in bind_alerts(service, rules, catalog):
            if (binding.rule.name, binding.rule.expr) not in seen:
                seen.add((binding.rule.name, binding.rule.expr))
                result.append(binding)
    return result


def svc(name: str, alerts: tuple[str, ...] = ()) -> Service:
    return Service(name=name, namespace="shop", tier=Tier.CORE,
                   selector=Selector(label_selectors={"app": name}), alerts=alerts)


def rule(name: str, expr: str, **labels: str) -> AlertRule:
    return AlertRule(name=name, expr=expr, for_s=60.0, labels=labels)


SERVICES = (svc("frontend"), svc("cart", alerts=("Listed", "Missing")), svc("payment"), svc("catalog"))
RULES = (
    rule("FrontendErrors", 'sum(rate(e{service="frontend"}[1m])) > 1', severity="page"),
    rule("CartLabel", "sum(rate(e[1m])) > 1", service="cart"),
    rule("PaymentApp", "up == 0", app="payment", severity="warning"),
    rule("PaymentJob", 'up{job="payment"} == 0'),
    rule("Listed", "vector(1) > 2"),
    rule("ShopBurn", "sum(rate(e[1m])) > 5", severity="critical"),
    rule("ShopInfo", "sum(rate(e[1m])) > 9", severity="info"),  # neither bound nor global
    rule("Twice", 'x{service="catalog"} > 1', severity="page"),
    rule("Twice", 'x{service="catalog"} > 1', severity="page", service="frontend"),  # same key again
    rule("Split", "y > 1", service="cart"),
    rule("Split", "y > 1", service="payment"),  # same key, other service: first found wins
    rule("Stranger", 'z{service="nowhere"} > 1', severity="page"),  # names no catalog service
    rule("Both", 'z{app="cart"} / z{job="payment"} > 1', service="frontend"),
)


@pytest.mark.parametrize("target", [None, "frontend", "cart", "payment", "catalog", "outsider"])
def test_the_catalog_wide_binding_equals_binding_each_service(target: str | None) -> None:
    catalog = Catalog(name="shop", services=SERVICES)
    service = None if target is None else (catalog.get(target) or svc(target, alerts=("ShopInfo",)))
    expected = conditions_for(catalog, RULES, target=service)
    assert conditions_for_catalog(catalog, RULES, target=service) == expected
    assert len(expected) > 8


def test_a_larger_catalog_binds_identically() -> None:
    services = tuple(svc(f"s{i}") for i in range(60))
    rules = tuple(rule(f"S{i}Errors", f'e{{service="s{i}"}} > 1', severity="page") for i in range(60))
    catalog = Catalog(name="big", services=services)
    assert conditions_for_catalog(catalog, rules, target=services[7]) == conditions_for(
        catalog, rules, target=services[7])
