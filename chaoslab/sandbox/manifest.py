"""Chaos Mesh manifests in the sandbox: parse and check one into model values.

The manifest dict (``apiVersion: chaos-mesh.org/v1alpha1``, ``kind``, ``metadata``,
``spec``) is the fault request at the Chaos Toolkit boundary and the wire format of
the supervisor's control API, so the sandbox reads exactly what a cluster would.
Checks mirror the CRD and its webhook where the sandbox depends on them. Manifests
are built and named by ``chaoslab.chaosmesh`` (``manifest``, ``objects``), the same
for both targets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaoslab.errors import InvalidInputError
from chaoslab.model import (
    EXPERIMENT_LABEL,
    RUN_ID_LABEL,
    ChaosKind,
    Direction,
    ExpressionRequirement,
    Mode,
    NetworkAction,
    NetworkChaos,
    NetworkTarget,
    PodAction,
    PodChaos,
    Selector,
    parse_go_duration,
)
from chaoslab.sandbox.manifest_spec import read_netem

API_VERSION = "chaos-mesh.org/v1alpha1"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NETWORK_KEYS = {"action", "mode", "value", "selector", "duration", "direction", "target",
                 "externalTargets", "device", "targetDevice", "delay", "loss", "duplicate",
                 "corrupt", "bandwidth", "remoteCluster"}
_POD_KEYS = {"action", "mode", "value", "selector", "duration", "gracePeriod", "containerNames",
             "remoteCluster"}
_SELECTOR_KEYS = {"namespaces", "labelSelectors", "expressionSelectors", "annotationSelectors",
                  "fieldSelectors", "podPhaseSelectors", "nodes", "nodeSelectors", "pods"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaosObject:
    """A parsed NetworkChaos or PodChaos. ``fault.selector`` is its whole selector."""

    kind: ChaosKind
    name: str
    namespace: str
    labels: Mapping[str, str]
    fault: NetworkChaos | PodChaos
    duration_s: float | None  # None: until deleted (one-shot pod-kill/container-kill)

    @property
    def selector(self) -> Selector:
        return self.fault.selector or Selector()

    @property
    def experiment(self) -> str:
        return self.labels.get(EXPERIMENT_LABEL, self.name)

    @property
    def run_id(self) -> str | None:
        return self.labels.get(RUN_ID_LABEL)


class _Reader:
    """Typed access to a manifest with errors located by field path."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, path: str, reason: str) -> InvalidInputError:
        return InvalidInputError(self.origin, path, reason)

    def mapping(self, raw: Any, path: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise self.fail(path, "expected a mapping")
        for key in raw:
            if allowed is not None and key not in allowed:
                raise self.fail(f"{path}.{key}", "unknown field")
        return raw

    def strings(self, raw: Any, path: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise self.fail(path, "expected a list of strings")
        return tuple(raw)

    def string_map(self, raw: Any, path: str) -> dict[str, str]:
        raw = self.mapping(raw, path)
        return {str(k): str(v) for k, v in raw.items()}

    def text(self, raw: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
        value = raw.get(key)
        if value is None:
            if required:
                raise self.fail(f"{path}.{key}", "required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(f"{path}.{key}", f"expected a string, got {value!r}")
        return str(value)

    def enum(self, raw: Mapping[str, Any], key: str, path: str, kind: Any) -> Any:
        value = self.text(raw, key, path, required=True)
        try:
            return kind(value)
        except ValueError:
            allowed = "|".join(m.value for m in kind)
            raise self.fail(f"{path}.{key}", f"{value!r} is not one of {allowed}") from None


def parse_manifest(manifest: Any, *, origin: str = "manifest") -> ChaosObject:
    """A Chaos Mesh manifest dict → ``ChaosObject``; ``InvalidInputError`` when it is wrong."""
    r = _Reader(origin)
    top = r.mapping(manifest, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    if top.get("apiVersion", API_VERSION) != API_VERSION:
        raise r.fail("apiVersion", f"expected {API_VERSION}")
    kind = r.enum(top, "kind", "", ChaosKind)
    meta = r.mapping(top.get("metadata"), "metadata")
    name = r.text(meta, "name", "metadata", required=True) or ""
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise r.fail("metadata.name", f"{name!r} is not a DNS-1123 label (lowercase, digits, '-', ≤ 63)")
    namespace = r.text(meta, "namespace", "metadata") or "default"
    labels = r.string_map(meta.get("labels"), "metadata.labels")
    spec = r.mapping(top.get("spec"), "spec", _NETWORK_KEYS if kind is ChaosKind.NETWORK_CHAOS else _POD_KEYS)
    selector = _selector(r, spec.get("selector"), "spec.selector")
    mode = r.enum(spec, "mode", "spec", Mode)
    value = r.text(spec, "value", "spec")
    _check_mode_value(r, mode, value, "spec")
    duration = r.text(spec, "duration", "spec")
    duration_s = _duration(r, duration, "spec.duration")
    fault: NetworkChaos | PodChaos
    if kind is ChaosKind.NETWORK_CHAOS:
        fault = _network(r, spec, selector=selector, mode=mode, value=value, duration=duration or "")
        if duration_s is None:
            raise r.fail("spec.duration", "required: the sandbox never runs a network fault unbounded")
    else:
        fault = _pod(r, spec, selector=selector, mode=mode, value=value, duration=duration or "")
        if fault.action is PodAction.POD_FAILURE and duration_s is None:
            raise r.fail("spec.duration", "required for pod-failure, which only ends at its duration")
    return ChaosObject(kind=kind, name=name, namespace=namespace, labels=labels,
                       fault=fault, duration_s=duration_s)


def _duration(r: _Reader, text: str | None, path: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_go_duration(text)
    except ValueError as exc:
        raise r.fail(path, str(exc)) from exc


def _check_mode_value(r: _Reader, mode: Mode, value: str | None, path: str) -> None:
    if mode in (Mode.ONE, Mode.ALL):
        return
    try:
        number = float(value) if value is not None else None
    except ValueError:
        number = None
    if mode is Mode.FIXED:
        if number is None or not number.is_integer() or number < 1:
            raise r.fail(f"{path}.value", f"mode fixed needs an integer ≥ 1, got {value!r}")
    elif number is None or (not 0 < number <= 100 and not (mode is Mode.RANDOM_MAX_PERCENT and number == 0)):
        raise r.fail(f"{path}.value", f"mode {mode.value} needs a percentage in (0, 100], got {value!r}")


def _selector(r: _Reader, raw: Any, path: str) -> Selector:
    raw = r.mapping(raw, path, _SELECTOR_KEYS)
    expressions = []
    for i, item in enumerate(raw.get("expressionSelectors") or []):
        where = f"{path}.expressionSelectors[{i}]"
        item = r.mapping(item, where, {"key", "operator", "values"})
        operator = r.text(item, "operator", where, required=True)
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise r.fail(f"{where}.operator", f"{operator!r} is not In|NotIn|Exists|DoesNotExist")
        expressions.append(ExpressionRequirement(
            key=r.text(item, "key", where, required=True) or "",
            operator=operator, values=r.strings(item.get("values"), f"{where}.values")))
    pods = {str(ns): r.strings(names, f"{path}.pods.{ns}")
            for ns, names in r.mapping(raw.get("pods"), f"{path}.pods").items()}
    return Selector(
        namespaces=r.strings(raw.get("namespaces"), f"{path}.namespaces"),
        label_selectors=r.string_map(raw.get("labelSelectors"), f"{path}.labelSelectors"),
        expression_selectors=tuple(expressions),
        annotation_selectors=r.string_map(raw.get("annotationSelectors"), f"{path}.annotationSelectors"),
        field_selectors=r.string_map(raw.get("fieldSelectors"), f"{path}.fieldSelectors"),
        pod_phase_selectors=r.strings(raw.get("podPhaseSelectors"), f"{path}.podPhaseSelectors"),
        nodes=r.strings(raw.get("nodes"), f"{path}.nodes"),
        node_selectors=r.string_map(raw.get("nodeSelectors"), f"{path}.nodeSelectors"),
        pods=pods,
    )


def _network(r: _Reader, spec: dict[str, Any], *, selector: Selector, mode: Mode,
             value: str | None, duration: str) -> NetworkChaos:
    action = r.enum(spec, "action", "spec", NetworkAction)
    direction = Direction.TO
    if spec.get("direction") is not None:
        direction = r.enum(spec, "direction", "spec", Direction)
    target = None
    if spec.get("target"):
        raw_target = r.mapping(spec["target"], "spec.target", {"selector", "mode", "value"})
        target_mode = r.enum(raw_target, "mode", "spec.target", Mode)
        target_value = r.text(raw_target, "value", "spec.target")
        _check_mode_value(r, target_mode, target_value, "spec.target")
        target = NetworkTarget(selector=_selector(r, raw_target.get("selector"), "spec.target.selector"),
                               mode=target_mode, value=target_value)
    externals = r.strings(spec.get("externalTargets"), "spec.externalTargets")
    if direction is not Direction.TO and target is None:
        raise r.fail("spec.target", f"direction {direction.value} needs a target")
    if direction is not Direction.TO and externals:
        raise r.fail("spec.externalTargets", f"not allowed with direction {direction.value}")
    netem = read_netem(r, spec, action)
    return NetworkChaos(action=action, mode=mode, value=value, duration=duration, selector=selector,
                        direction=direction, target=target, external_targets=externals,
                        device=r.text(spec, "device", "spec"),
                        target_device=r.text(spec, "targetDevice", "spec"), **netem)


def _pod(r: _Reader, spec: dict[str, Any], *, selector: Selector, mode: Mode,
         value: str | None, duration: str) -> PodChaos:
    action = r.enum(spec, "action", "spec", PodAction)
    grace = spec.get("gracePeriod")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 0):
        raise r.fail("spec.gracePeriod", f"expected an integer ≥ 0, got {grace!r}")
    containers = r.strings(spec.get("containerNames"), "spec.containerNames")
    if action is PodAction.CONTAINER_KILL and not containers:
        raise r.fail("spec.containerNames", "required for container-kill")
    return PodChaos(action=action, mode=mode, value=value, duration=duration, selector=selector,
                    grace_period=grace, container_names=containers)
