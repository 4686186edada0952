"""Chaos Mesh pod selection semantics, pure: which pods a selector matches, and
which of those a mode hits.

Both backends use this, so a selector means the same on a cluster and in the
sandbox. It mirrors chaos-mesh ``pkg/selector/pod``: ``pods`` overrides every
other field; an empty ``namespaces`` means the object's own namespace; the
remaining fields are ANDed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chaoslab.model import ExpressionRequirement, Mode, Selector


@dataclass(frozen=True, slots=True, kw_only=True)
class PodInfo:
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    phase: str = "Running"
    node: str | None = None
    node_labels: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)  # e.g. metadata.name, spec.nodeName

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def _expression_matches(req: ExpressionRequirement, labels: Mapping[str, str]) -> bool:
    if req.operator == "In":
        return req.key in labels and labels[req.key] in req.values
    if req.operator == "NotIn":
        return req.key not in labels or labels[req.key] not in req.values
    if req.operator == "Exists":
        return req.key in labels
    if req.operator == "DoesNotExist":
        return req.key not in labels
    raise ValueError(f"unknown selector operator {req.operator!r}")


def _field_value(pod: PodInfo, key: str) -> str | None:
    builtin = {"metadata.name": pod.name, "metadata.namespace": pod.namespace,
               "spec.nodeName": pod.node, "status.phase": pod.phase}
    if key in pod.fields:
        return pod.fields[key]
    return builtin.get(key)


def _matches(selector: Selector, pod: PodInfo, namespaces: Sequence[str]) -> bool:
    checks = (
        pod.namespace in namespaces,
        all(pod.labels.get(k) == v for k, v in selector.label_selectors.items()),
        all(_expression_matches(e, pod.labels) for e in selector.expression_selectors),
        all(pod.annotations.get(k) == v for k, v in selector.annotation_selectors.items()),
        all(_field_value(pod, k) == v for k, v in selector.field_selectors.items()),
        not selector.pod_phase_selectors or pod.phase in selector.pod_phase_selectors,
        not selector.nodes or pod.node in selector.nodes,
        all(pod.node_labels.get(k) == v for k, v in selector.node_selectors.items()),
    )
    return all(checks)


def select_pods(
    selector: Selector, pods: Sequence[PodInfo], *, default_namespace: str
) -> list[PodInfo]:
    """Every pod in ``pods`` that ``selector`` matches, in input order."""
    if selector.pods:
        wanted = {(ns, name) for ns, names in selector.pods.items() for name in names}
        return [p for p in pods if (p.namespace, p.name) in wanted]
    namespaces = selector.namespaces or (default_namespace,)
    return [p for p in pods if _matches(selector, p, namespaces)]


def count_for_mode(mode: Mode, value: str | None, matched: int) -> int:
    """How many of ``matched`` pods the mode hits (random-max-percent: the maximum)."""
    if matched == 0:
        return 0
    if mode is Mode.ONE:
        return 1
    if mode is Mode.ALL:
        return matched
    if mode is Mode.FIXED:
        return min(int(value or "0"), matched)
    percent = float(value or "0")
    if mode is Mode.FIXED_PERCENT:
        return max(1, math.ceil(matched * percent / 100)) if percent > 0 else 0
    # random-max-percent: anything from 0 up to this many. Chaos Mesh rounds a roll up
    # (ceil, since 2.2), so the maximum is rounded up too: 50% of 3 pods may hit 2.
    return math.ceil(matched * percent / 100)


def apply_mode(
    pods: Sequence[PodInfo], mode: Mode, value: str | None, *, rng: random.Random
) -> list[PodInfo]:
    """The pods the mode selects, chosen at random like Chaos Mesh does."""
    if mode is Mode.RANDOM_MAX_PERCENT:
        count = rng.randint(0, count_for_mode(mode, value, len(pods)))
    else:
        count = count_for_mode(mode, value, len(pods))
    if count >= len(pods):
        return list(pods)
    return rng.sample(list(pods), count)


def running(pods: Sequence[PodInfo]) -> list[PodInfo]:
    return [p for p in pods if p.phase == "Running"]
