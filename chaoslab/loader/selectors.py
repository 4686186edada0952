"""Chaos Mesh pod selectors: reading them, narrowing a service's selector with a
fault's, and refusing selectors that would hit every pod of a namespace.

A fault may only *narrow* the selector of the service it targets: label-like maps
are united (a key with another value is a conflict), expression lists are
concatenated, phase and node lists are intersected. ``namespaces`` always come from
the service, and ``pods`` (which overrides every other field in Chaos Mesh) can only
be set on the service itself.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from chaoslab.loader.fields import Fields, Where, check_dns_label
from chaoslab.model import ExpressionRequirement, Selector
from chaoslab.scope import (  # noqa: F401 - the loader's names for the rules it applies
    KUBE_SYSTEM,
    NARROWING,
    narrow_selector,
    narrow_service,
    selects_whole_namespace,
    whole_namespace_reason,
)

SELECTOR_FIELDS = (
    "namespaces",
    "labelSelectors",
    "expressionSelectors",
    "annotationSelectors",
    "fieldSelectors",
    "podPhaseSelectors",
    "nodes",
    "nodeSelectors",
    "pods",
)
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
EXPRESSION_FIELDS, EXPRESSION_REQUIRED = ("key", "operator", "values"), ("key", "operator")
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")

_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check_label_key(key: str, where: Where) -> None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise where.fail(f"label key {key!r}: prefix {prefix!r} is not a DNS subdomain")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise where.fail(f"{key!r} is not a valid label key (name part: ≤63 of A-Z a-z 0-9 - _ .)")


def _check_label_value(value: str, where: Where) -> None:
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        raise where.fail(f"{value!r} is not a valid label value (≤63 of A-Z a-z 0-9 - _ ., "
                         "starting and ending alphanumeric)")


def _labels(fields: Fields, key: str) -> dict[str, str]:
    labels = fields.text_map(key)
    where = fields.at(key)
    for name, value in labels.items():
        item = where.key(fields.raw(key), name)
        _check_label_key(name, item)
        _check_label_value(value, item)
    return labels


def _expressions(fields: Fields) -> tuple[ExpressionRequirement, ...]:
    out = []
    for raw, where in fields.items("expressionSelectors"):
        expr = Fields(raw, where, allowed=EXPRESSION_FIELDS, required=EXPRESSION_REQUIRED)
        key = expr.text("key")
        _check_label_key(key, expr.at("key"))
        operator = expr.text("operator")
        if operator not in OPERATORS:
            raise expr.at("operator").fail(f"must be one of {', '.join(OPERATORS)}, got {operator!r}")
        values = expr.text_list("values")
        if operator in ("In", "NotIn") and not values:
            raise expr.at("values").fail(f"operator {operator} needs at least one value")
        if operator in ("Exists", "DoesNotExist") and values:
            raise expr.at("values").fail(f"operator {operator} takes no values")
        for index, value in enumerate(values):
            _check_label_value(value, expr.at("values").item(expr.raw("values"), index))
        out.append(ExpressionRequirement(key=key, operator=operator, values=values))
    return tuple(out)


def _pods(fields: Fields) -> dict[str, tuple[str, ...]]:
    raw = fields.raw("pods")
    if raw is None:
        return {}
    where = fields.at("pods")
    if not isinstance(raw, Mapping):
        raise where.fail("must be a mapping of namespace to a list of pod names")
    pods = Fields(raw, where, allowed=tuple(raw))
    out = {}
    for namespace in raw:
        check_dns_label(namespace, pods.at(namespace), what="a namespace")
        names = pods.text_list(namespace)
        if not names:
            raise pods.at(namespace).fail("lists no pod names")
        out[namespace] = names
    return out


def parse_selector(value: object, where: Where, *, namespaces: bool) -> Selector:
    """A Chaos Mesh ``PodSelectorSpec``. ``namespaces=False`` where the namespace comes
    from the service, so giving one is an error rather than silently ignored."""
    unsupported = None if namespaces else {
        "namespaces": "namespaces come from the service's namespace; remove this field "
                      "(to target another namespace, use a service in that namespace)"
    }
    fields = Fields(value, where, allowed=SELECTOR_FIELDS, unsupported=unsupported)
    namespace_list = fields.text_list("namespaces")
    for index, namespace in enumerate(namespace_list):
        check_dns_label(namespace, fields.at("namespaces").item(fields.raw("namespaces"), index),
                        what="a namespace")
    phases = fields.text_list("podPhaseSelectors")
    for index, phase in enumerate(phases):
        if phase not in POD_PHASES:
            raise fields.at("podPhaseSelectors").item(fields.raw("podPhaseSelectors"), index).fail(
                f"must be one of {', '.join(POD_PHASES)}, got {phase!r}"
            )
    selector = Selector(
        namespaces=namespace_list,
        label_selectors=_labels(fields, "labelSelectors"),
        expression_selectors=_expressions(fields),
        annotation_selectors=fields.text_map("annotationSelectors"),
        field_selectors=fields.text_map("fieldSelectors"),
        pod_phase_selectors=phases,
        nodes=fields.text_list("nodes"),
        node_selectors=_labels(fields, "nodeSelectors"),
        pods=_pods(fields),
    )
    ignored = overridden_by_pods(selector)
    if ignored:
        raise fields.at("pods").fail(
            f"pods overrides every other selector field in Chaos Mesh, so {', '.join(ignored)} "
            "would be ignored; keep either pods or the other fields")
    return selector


def overridden_by_pods(selector: Selector) -> list[str]:
    """The fields Chaos Mesh ignores because ``pods`` is set (empty when it is not)."""
    if not selector.pods:
        return []
    given = {
        "labelSelectors": selector.label_selectors,
        "expressionSelectors": selector.expression_selectors,
        "annotationSelectors": selector.annotation_selectors,
        "fieldSelectors": selector.field_selectors,
        "podPhaseSelectors": selector.pod_phase_selectors,
        "nodes": selector.nodes,
        "nodeSelectors": selector.node_selectors,
    }
    return [name for name, value in given.items() if value]


def check_service_selector(
    selector: Selector, where: Where, *, namespace: str, require_narrow: bool = True
) -> Selector:
    """A service's own selector: refuses pods in other namespaces and (unless a fault
    narrows it later) whole-namespace selection; pins ``namespaces`` to the service's."""
    for pod_namespace in selector.pods:
        if pod_namespace != namespace:
            raise where.fail(
                f"pods: namespace {pod_namespace!r} is not the service's namespace {namespace!r}")
    if require_narrow and selects_whole_namespace(selector):
        raise where.fail(whole_namespace_reason(namespace))
    return dataclasses.replace(selector, namespaces=(namespace,))
