"""Domain rules over model values that the plan, the manifests, the loader and the Python
API share, without any of them reading files: which service an experiment injects into
and how a fault's selector narrows it, the selectors and namespaces chaoslab refuses,
which services a matrix crosses, how ramp levels and run-window days are named.

The loader applies these rules to files (locating each mistake in the file); everything
else applies them to values built in code.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Collection, Mapping

from chaoslab.errors import InvalidInputError
from chaoslab.model import (
    Catalog,
    Direction,
    Experiment,
    Fault,
    Matrix,
    NetworkChaos,
    Selector,
    Service,
    Tier,
)

KUBE_SYSTEM = "kube-system"
# Run-window days, Monday first (the index is ``datetime.weekday()``).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NARROWING = ("labelSelectors, expressionSelectors (In or Exists), annotationSelectors, "
             "fieldSelectors or pods")
_INCLUDING = ("In", "Exists")


def suggest(word: str, choices: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``word``, else nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- selectors -------------------------------------------------------------------


def selects_whole_namespace(selector: Selector) -> bool:
    """True when nothing but phase, node or exclusions narrows the selection: every pod
    of the namespace would be a candidate. ``NotIn`` and ``DoesNotExist`` only exclude
    pods, so on their own they still match every pod that lacks the label."""
    return not (
        selector.label_selectors
        or any(e.operator in _INCLUDING for e in selector.expression_selectors)
        or selector.annotation_selectors
        or selector.field_selectors
        or selector.pods
    )


def whole_namespace_reason(namespace: str) -> str:
    return (f"selects every pod in namespace {namespace}; chaoslab refuses that: "
            f"narrow it with {NARROWING}")


def _union(base: Mapping[str, str], extra: Mapping[str, str], name: str) -> dict[str, str]:
    for key, value in extra.items():
        if key in base and base[key] != value:
            raise ValueError(f"{name}.{key}: {value!r} conflicts with the service's {key}={base[key]!r} "
                             "(a fault selector can only narrow the service's selector)")
    return {**base, **extra}


def _intersect(base: tuple[str, ...], extra: tuple[str, ...], name: str) -> tuple[str, ...]:
    if not base or not extra:
        return base or extra
    both = tuple(item for item in base if item in extra)
    if not both:
        raise ValueError(f"{name}: none of {', '.join(extra)} is among the service's {', '.join(base)}")
    return both


def narrow_selector(base: Selector, extra: Selector) -> Selector:
    """``base`` narrowed by ``extra``. Raises ValueError naming the field on a conflict.
    Narrowing twice with the same selector gives the same result."""
    if extra.pods:
        raise ValueError("pods: a fault selector cannot list pods (pods overrides every other selector "
                         "field in Chaos Mesh); put pods on the service instead")
    expressions = base.expression_selectors + tuple(
        e for e in extra.expression_selectors if e not in base.expression_selectors
    )
    return dataclasses.replace(
        base,
        label_selectors=_union(base.label_selectors, extra.label_selectors, "labelSelectors"),
        expression_selectors=expressions,
        annotation_selectors=_union(base.annotation_selectors, extra.annotation_selectors,
                                    "annotationSelectors"),
        field_selectors=_union(base.field_selectors, extra.field_selectors, "fieldSelectors"),
        pod_phase_selectors=_intersect(base.pod_phase_selectors, extra.pod_phase_selectors,
                                       "podPhaseSelectors"),
        nodes=_intersect(base.nodes, extra.nodes, "nodes"),
        node_selectors=_union(base.node_selectors, extra.node_selectors, "nodeSelectors"),
    )


def narrow_service(service: Service, extra: Selector | None) -> Service:
    """The service whose selector is narrowed by a fault's selector (the same object when
    the fault has none)."""
    if extra is None:
        return service
    return dataclasses.replace(service, selector=narrow_selector(service.selector, extra))


# --- services and namespaces ----------------------------------------------------------


def kube_system_refusal(service: Service, fault: Fault) -> str | None:
    """Why ``fault`` on ``service`` touches kube-system, or None."""
    if service.namespace == KUBE_SYSTEM:
        return f"service {service.name!r} is in namespace kube-system"
    if isinstance(fault, NetworkChaos) and fault.target is not None and fault.direction is not Direction.TO \
            and KUBE_SYSTEM in fault.target.selector.namespaces:
        return f"direction {fault.direction.value} injects into the target pods, which are in kube-system"
    return None


def resolve_service(experiment: Experiment, catalog: Catalog | None) -> Service:
    """The service ``experiment`` injects into, its selector narrowed by the fault's.

    Raises InvalidInputError when the experiment names a service the catalog lacks."""
    if experiment.target is not None:
        service = experiment.target
    else:
        if catalog is None:
            raise InvalidInputError(experiment.source, "spec.service",
                                    f"names catalog service {experiment.service!r} but no catalog was given")
        found = catalog.get(experiment.service or "")
        if found is None:
            names = [s.name for s in catalog.services]
            wanted = experiment.service or ""
            raise InvalidInputError(experiment.source, "spec.service",
                                    f"unknown service {wanted!r}{suggest(wanted, names)}; "
                                    f"catalog {catalog.name} has: {', '.join(names)}")
        service = found
    try:
        return narrow_service(service, experiment.fault.selector)
    except ValueError as exc:
        kind = "networkChaos" if isinstance(experiment.fault, NetworkChaos) else "podChaos"
        raise InvalidInputError(experiment.source, f"spec.fault.{kind}.selector", str(exc)) from exc


# --- game days -------------------------------------------------------------------------


def matrix_services(matrix: Matrix, catalog: Catalog) -> tuple[Service, ...]:
    """The catalog services a matrix crosses with its faults, in catalog order."""
    if matrix.services is None:
        return catalog.services
    if isinstance(matrix.services, Tier):
        return tuple(s for s in catalog.services if s.tier is matrix.services)
    wanted = set(matrix.services)
    return tuple(s for s in catalog.services if s.name in wanted)


def ramp_suffix(levels: int, level: int) -> str:
    """What a ramp level adds to a step name: nothing for one level, else ``-r1``, ``-r2``…"""
    return f"-r{level + 1}" if levels > 1 else ""
