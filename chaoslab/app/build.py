"""Catalogs, experiments, faults and game days built in Python, checked by the loader's own
rules as they are built: a wrong value raises ``InvalidInputError`` naming the field
(``fault.networkChaos.delay.latency``), here and never later in a run.

Each constructor returns the value the loader would have read from the equivalent file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from chaoslab.app.document import catalog_dict, experiment_dict, fault_dict, service_dict
from chaoslab.errors import InvalidInputError
from chaoslab.loader import document_from, parse_fault
from chaoslab.loader.catalog import catalog_from
from chaoslab.loader.experiment import read_experiment
from chaoslab.model import (
    Catalog,
    Delay,
    Direction,
    Experiment,
    Fault,
    Loss,
    Matrix,
    MatrixFault,
    Mode,
    NetworkAction,
    NetworkChaos,
    NetworkTarget,
    PodAction,
    PodChaos,
    Selector,
    Service,
    Tier,
)

logger = logging.getLogger(__name__)

INPUT = "<input>"
ModeName = Mode | Literal["one", "all", "fixed", "fixed-percent", "random-max-percent"]
Value = str | int | None


def checked_fault(fault: Fault, *, where: str = INPUT) -> Fault:
    """``fault`` through the loader's fault rules (CRD and webhook); the value read back."""
    return parse_fault(fault_dict(fault), path=where, field_prefix="fault")


def _mode(mode: ModeName) -> Mode:
    try:
        return Mode(mode)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise InvalidInputError(INPUT, "mode", f"must be one of {choices}, got {mode!r}") from None


def _value(value: Value) -> str | None:
    return None if value is None else str(value)


def _network(action: NetworkAction, *, mode: ModeName, duration: str, value: Value,
             selector: Selector | None, **specs: object) -> NetworkChaos:
    fault = NetworkChaos(action=action, mode=_mode(mode), duration=duration, value=_value(value),
                         selector=selector, **specs)  # type: ignore[arg-type]
    checked = checked_fault(fault)
    assert isinstance(checked, NetworkChaos)
    return checked


def network_delay(*, latency: str, duration: str, mode: ModeName = "one", value: Value = None,
                  jitter: str | None = None, correlation: str | None = None,
                  selector: Selector | None = None) -> NetworkChaos:
    """Added latency on the service's pods: ``network_delay(latency="200ms", duration="30s")``."""
    return _network(NetworkAction.DELAY, mode=mode, duration=duration, value=value, selector=selector,
                    delay=Delay(latency=latency, jitter=jitter, correlation=correlation))


def network_loss(*, loss: str | int, duration: str, mode: ModeName = "one", value: Value = None,
                 correlation: str | None = None, selector: Selector | None = None) -> NetworkChaos:
    """Dropped packets, ``loss`` in percent: ``network_loss(loss="25", duration="30s")``."""
    return _network(NetworkAction.LOSS, mode=mode, duration=duration, value=value, selector=selector,
                    loss=Loss(loss=str(loss), correlation=correlation))


def network_partition(*, duration: str, mode: ModeName = "one", value: Value = None,
                      direction: Direction | Literal["to", "from", "both"] = "to",
                      target: NetworkTarget | None = None, external_targets: Sequence[str] = (),
                      selector: Selector | None = None) -> NetworkChaos:
    """Cut the service off from ``target`` pods or ``external_targets`` (hosts, CIDRs)."""
    return _network(NetworkAction.PARTITION, mode=mode, duration=duration, value=value, selector=selector,
                    direction=Direction(direction), target=target,
                    external_targets=tuple(external_targets))


def _pod(action: PodAction, *, mode: ModeName, duration: str, value: Value, selector: Selector | None,
         grace_period: int | None = None, container_names: Sequence[str] = ()) -> PodChaos:
    fault = PodChaos(action=action, mode=_mode(mode), duration=duration, value=_value(value),
                     selector=selector, grace_period=grace_period, container_names=tuple(container_names))
    checked = checked_fault(fault)
    assert isinstance(checked, PodChaos)
    return checked


def pod_kill(*, duration: str, mode: ModeName = "one", value: Value = None, grace_period: int | None = None,
             selector: Selector | None = None) -> PodChaos:
    """Kill pods of the service: ``pod_kill(mode="one", duration="20s")``."""
    return _pod(PodAction.POD_KILL, mode=mode, duration=duration, value=value, selector=selector,
                grace_period=grace_period)


def pod_failure(*, duration: str, mode: ModeName = "one", value: Value = None,
                selector: Selector | None = None) -> PodChaos:
    """Make pods of the service unavailable for ``duration``."""
    return _pod(PodAction.POD_FAILURE, mode=mode, duration=duration, value=value, selector=selector)


def container_kill(*, containers: Sequence[str], duration: str, mode: ModeName = "one",
                   value: Value = None, selector: Selector | None = None) -> PodChaos:
    """Kill the named containers in pods of the service."""
    return _pod(PodAction.CONTAINER_KILL, mode=mode, duration=duration, value=value, selector=selector,
                container_names=containers)


def service(name: str, *, namespace: str, tier: Tier | Literal["non-core", "core"],
            labels: Mapping[str, str] | None = None, selector: Selector | None = None,
            owner: str | None = None, alerts: Sequence[str] = ()) -> Service:
    """A catalog service whose pods carry ``labels`` (or match ``selector``)."""
    chosen = selector if selector is not None else Selector(label_selectors=dict(labels or {}))
    fields = service_dict(Service(name=name, namespace=namespace, tier=Tier.NON_CORE, selector=chosen,
                                  owner=owner, alerts=tuple(alerts)))
    fields["tier"] = tier.label if isinstance(tier, Tier) else tier  # the loader names a wrong one
    data = {"apiVersion": "chaoslab/v1", "kind": "Catalog", "metadata": {"name": "inline"},
            "spec": {"services": [fields]}}
    try:
        return catalog_from(document_from(data, path=INPUT)).services[0]
    except InvalidInputError as exc:  # one service, not a catalog file: name its field alone
        field = exc.field.replace("spec.services[0]", "service", 1)
        raise InvalidInputError(INPUT, field, exc.reason) from None


def catalog(name: str, services: Iterable[Service], *, source: Path | None = None) -> Catalog:
    """A catalog of ``services``, checked as a Catalog file is (unique names, selectors)."""
    built = Catalog(name=name, services=tuple(services))
    loaded = catalog_from(document_from(catalog_dict(built), path=source or INPUT))
    return Catalog(name=loaded.name, services=loaded.services, source=source)


def experiment(name: str, *, service: str | Service, fault: Fault, catalog: Catalog | None = None,
               description: str = "", tags: Sequence[str] = (), rules: Sequence[str | Path] = ()
               ) -> Experiment:
    """``fault`` against a catalog service (its name, checked against ``catalog`` when given)
    or an inline ``Service``."""
    built = Experiment(name=name, fault=fault, service=service if isinstance(service, str) else None,
                       target=service if isinstance(service, Service) else None, description=description,
                       tags=tuple(tags), rules=tuple(Path(r) for r in rules))
    return checked_experiment(built, catalog=catalog)


def checked_experiment(value: Experiment, *, catalog: Catalog | None,
                       allow_kube_system: bool | None = None) -> Experiment:
    """``value`` through the loader's experiment rules (``source`` is kept)."""
    import dataclasses

    from chaoslab.scope import resolve_service

    if value.target is None:
        resolve_service(value, catalog)  # names the missing catalog or the unknown service
    doc = document_from(experiment_dict(value), path=value.source or INPUT)
    loaded = read_experiment(doc, catalog=catalog, allow_kube_system=allow_kube_system)
    return dataclasses.replace(loaded, source=value.source)


def matrix(faults: Mapping[str, Fault], *, services: Tier | Sequence[str] | Literal["all"] = "all") -> Matrix:
    """Faults (by name) crossed with catalog services: every service (``"all"``), one tier, or
    the services named. ``matrix({"delay": d, "kill": k}, services=Tier.NON_CORE)``."""
    chosen: Tier | tuple[str, ...] | None
    if services == "all":
        chosen = None
    elif isinstance(services, Tier):
        chosen = services
    else:
        chosen = tuple(services)
    return Matrix(faults=tuple(MatrixFault(name=n, fault=checked_fault(f, where=f"matrix fault {n}"))
                               for n, f in faults.items()), services=chosen)


def cross(
    catalog: Catalog, faults: Mapping[str, Fault], *, tier: Tier | None = None
) -> tuple[Experiment, ...]:
    """One experiment per service (of ``tier``, or all) and fault, named ``<service>-<fault>``
    as a matrix names its steps."""
    return tuple(
        experiment(f"{s.name}-{fault_name}", service=s.name, fault=fault, catalog=catalog,
                   description=f"{fault_name} on {s.name}")
        for s in catalog.services if tier is None or s.tier is tier
        for fault_name, fault in faults.items()
    )
