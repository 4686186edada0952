"""Chaos Mesh manifests, pure: a fault on a service → a ``chaos-mesh.org/v1alpha1``
NetworkChaos or PodChaos object as a dict.

The manifest is the universal fault request at the Chaos Toolkit boundary: both
backends accept it. Field names are exactly the CRD's (camelCase), and only fields
that are set are written, so what we emit is what Chaos Mesh stores. Unlike
chaostoolkit-kubernetes, every manifest carries a ``duration``, writes ``value`` for
every mode that reads it, never adds an empty ``target``, and spells ``bandwidth``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from chaoslab.errors import InvalidInputError
from chaoslab.loader.faults import parse_network_chaos, parse_pod_chaos
from chaoslab.loader.fields import Where
from chaoslab.model import (
    EXPERIMENT_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RUN_ID_LABEL,
    STEP_LABEL,
    Bandwidth,
    Catalog,
    Delay,
    Direction,
    Experiment,
    Mode,
    NetworkAction,
    NetworkChaos,
    NetworkTarget,
    PodAction,
    PodChaos,
    Selector,
    Service,
)
from chaoslab.scope import narrow_selector, resolve_service, selects_whole_namespace, whole_namespace_reason

logger = logging.getLogger(__name__)

API_VERSION = "chaos-mesh.org/v1alpha1"

# The modes whose `value` Chaos Mesh reads; for `one` and `all` it is ignored, so we omit it.
VALUE_MODES = frozenset({Mode.FIXED, Mode.FIXED_PERCENT, Mode.RANDOM_MAX_PERCENT})

# The sub-spec each single-purpose action needs. Chaos Mesh admits the object without
# it and fails only at injection time, so the gap is caught before anything is sent.
_ACTION_SUBSPEC = {
    NetworkAction.DELAY: "delay",
    NetworkAction.LOSS: "loss",
    NetworkAction.DUPLICATE: "duplicate",
    NetworkAction.CORRUPT: "corrupt",
    NetworkAction.BANDWIDTH: "bandwidth",
}
_NETEM_SUBSPECS = ("delay", "loss", "duplicate", "corrupt")


def build_manifest(
    *,
    name: str,
    service: Service,
    fault: NetworkChaos | PodChaos,
    experiment: str,
    run_id: str | None = None,
    step: str | None = None,
) -> dict[str, Any]:
    """The Chaos Mesh object for ``fault`` on ``service``, in the service's namespace.

    ``run_id`` and ``step`` add their labels when given (a backend adds the run id
    at injection time when the manifest was built without one)."""
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, EXPERIMENT_LABEL: experiment}
    if step:
        labels[STEP_LABEL] = step
    if run_id:
        labels[RUN_ID_LABEL] = run_id
    selector = merge_selectors(service, fault.selector)
    spec = _network_spec(fault, selector) if isinstance(fault, NetworkChaos) else _pod_spec(fault, selector)
    _check_spec(fault, spec, selector=selector, origin=f"{fault.kind.value}/{name}")
    logger.debug("built %s/%s in %s", fault.kind.value, name, service.namespace)
    return {
        "apiVersion": API_VERSION,
        "kind": fault.kind.value,
        "metadata": {"name": name, "namespace": service.namespace, "labels": labels},
        "spec": spec,
    }


def _check_spec(fault: NetworkChaos | PodChaos, spec: dict[str, Any], *, selector: Selector,
                origin: str) -> None:
    """The emitted spec through the loader's own rules (the CRD, the webhook, and chaoslab's
    rule against whole-namespace selectors; kube-system is the plan's to refuse or allow).

    A file was checked when it was loaded; values built in Python were not, and every
    fault leaves chaoslab through here, so both get the same rules."""
    where = Where(None, f"{origin}: spec")
    rest = {key: value for key, value in spec.items() if key != "selector"}
    if isinstance(fault, NetworkChaos):
        parse_network_chaos(rest, where)
    else:
        parse_pod_chaos(rest, where)
    if selects_whole_namespace(selector):
        raise where.key(spec, "selector").fail(whole_namespace_reason(selector.namespaces[0]))


def experiment_manifest(
    experiment: Experiment, catalog: Catalog | None, *, run_id: str | None = None
) -> dict[str, Any]:
    """The manifest of a single experiment, its service resolved through the catalog."""
    return build_manifest(
        name=experiment.name,
        service=resolve_service(experiment, catalog),
        fault=experiment.fault,
        experiment=experiment.name,
        run_id=run_id,
    )


# --- selectors -----------------------------------------------------------------


def selector_dict(selector: Selector) -> dict[str, Any]:
    """A Selector as a Chaos Mesh PodSelectorSpec, with only the fields that are set."""
    out: dict[str, Any] = {}
    if selector.namespaces:
        out["namespaces"] = list(selector.namespaces)
    if selector.label_selectors:
        out["labelSelectors"] = dict(selector.label_selectors)
    if selector.expression_selectors:
        out["expressionSelectors"] = [
            {"key": e.key, "operator": e.operator, **({"values": list(e.values)} if e.values else {})}
            for e in selector.expression_selectors
        ]
    if selector.annotation_selectors:
        out["annotationSelectors"] = dict(selector.annotation_selectors)
    if selector.field_selectors:
        out["fieldSelectors"] = dict(selector.field_selectors)
    if selector.pod_phase_selectors:
        out["podPhaseSelectors"] = list(selector.pod_phase_selectors)
    if selector.nodes:
        out["nodes"] = list(selector.nodes)
    if selector.node_selectors:
        out["nodeSelectors"] = dict(selector.node_selectors)
    if selector.pods:
        out["pods"] = {ns: list(names) for ns, names in selector.pods.items()}
    return out


def merge_selectors(service: Service, narrowing: Selector | None) -> Selector:
    """The service's selector narrowed by a fault's selector (the loader's rules: maps are
    merged, expressions appended, phases and nodes intersected, conflicts refused),
    confined to the service's namespace."""
    try:
        narrowed = narrow_selector(service.selector, narrowing) if narrowing else service.selector
    except ValueError as exc:
        raise InvalidInputError(None, "selector", str(exc)) from exc
    return dataclasses.replace(narrowed, namespaces=(service.namespace,))


# --- specs ---------------------------------------------------------------------


def _mode_fields(mode: Mode, value: str | None, field: str) -> dict[str, Any]:
    if mode not in VALUE_MODES:
        return {"mode": mode.value}
    if value is None or str(value) == "":
        raise InvalidInputError(None, field, f"mode {mode.value} needs a value")
    return {"mode": mode.value, "value": str(value)}


def _without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _delay_dict(delay: Delay) -> dict[str, Any]:
    out = _without_none(latency=delay.latency, jitter=delay.jitter, correlation=delay.correlation)
    if delay.reorder is not None:
        r = delay.reorder
        out["reorder"] = _without_none(reorder=r.reorder, correlation=r.correlation, gap=r.gap)
    return out


def _bandwidth_dict(bandwidth: Bandwidth) -> dict[str, Any]:
    return _without_none(
        rate=bandwidth.rate, limit=bandwidth.limit, buffer=bandwidth.buffer,
        peakrate=bandwidth.peakrate, minburst=bandwidth.minburst,
    )


def _target_dict(target: NetworkTarget) -> dict[str, Any]:
    # `selector` is required by the CRD even when empty (empty namespaces = own namespace).
    mode = _mode_fields(target.mode, target.value, "target.value")
    return {**mode, "selector": selector_dict(target.selector)}


def _subspecs(fault: NetworkChaos) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if fault.delay is not None:
        out["delay"] = _delay_dict(fault.delay)
    if fault.loss is not None:
        out["loss"] = _without_none(loss=fault.loss.loss, correlation=fault.loss.correlation)
    if fault.duplicate is not None:
        out["duplicate"] = _without_none(
            duplicate=fault.duplicate.duplicate, correlation=fault.duplicate.correlation
        )
    if fault.corrupt is not None:
        out["corrupt"] = _without_none(corrupt=fault.corrupt.corrupt, correlation=fault.corrupt.correlation)
    if fault.bandwidth is not None:
        out["bandwidth"] = _bandwidth_dict(fault.bandwidth)
    return out


def _check_network(fault: NetworkChaos, subspecs: Mapping[str, Any]) -> None:
    needed = _ACTION_SUBSPEC.get(fault.action)
    if needed is not None and needed not in subspecs:
        raise InvalidInputError(None, needed, f"action {fault.action.value} needs a {needed} block")
    if fault.action is NetworkAction.NETEM and not any(k in subspecs for k in _NETEM_SUBSPECS):
        raise InvalidInputError(
            None, "netem", "action netem needs at least one of delay, loss, duplicate, corrupt"
        )
    if fault.direction is Direction.TO:
        return
    if fault.action is NetworkAction.PARTITION:
        # Chaos Mesh partitions from/both against the target pods, the external targets
        # or both (its webhook skips partition); the loader applies the same rule.
        if fault.target is None and not fault.external_targets:
            raise InvalidInputError(
                None, "target", f"direction {fault.direction.value} needs a target or externalTargets"
            )
        return
    if fault.target is None:
        raise InvalidInputError(None, "target", f"direction {fault.direction.value} needs a target")
    if fault.external_targets:
        raise InvalidInputError(
            None, "externalTargets", f"direction {fault.direction.value} cannot have externalTargets"
        )


def _network_spec(fault: NetworkChaos, selector: Selector) -> dict[str, Any]:
    subspecs = _subspecs(fault)
    _check_network(fault, subspecs)
    spec: dict[str, Any] = {
        "action": fault.action.value,
        **_mode_fields(fault.mode, fault.value, "value"),
        "selector": selector_dict(selector),
        "duration": fault.duration,
        "direction": fault.direction.value,
    }
    if fault.target is not None:
        spec["target"] = _target_dict(fault.target)
    if fault.external_targets:
        spec["externalTargets"] = list(fault.external_targets)
    if fault.device:
        spec["device"] = fault.device
    if fault.target_device:
        spec["targetDevice"] = fault.target_device
    spec.update(subspecs)
    return spec


def _pod_spec(fault: PodChaos, selector: Selector) -> dict[str, Any]:
    if fault.action is PodAction.CONTAINER_KILL and not fault.container_names:
        raise InvalidInputError(None, "containerNames", "action container-kill needs containerNames")
    spec: dict[str, Any] = {
        "action": fault.action.value,
        **_mode_fields(fault.mode, fault.value, "value"),
        "selector": selector_dict(selector),
        "duration": fault.duration,
    }
    if fault.grace_period is not None:
        spec["gracePeriod"] = fault.grace_period
    if fault.container_names:
        spec["containerNames"] = list(fault.container_names)
    return spec
