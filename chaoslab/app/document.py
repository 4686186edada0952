"""Model values as chaoslab files: the dict (and YAML) form of a Catalog, an Experiment and
a GameDay, exactly as the loader reads them back, so that ``load(dump(x)) == x``.

A game day file names its catalog and experiments by path: they are written as the
absolute paths of the files they were loaded from (``source``). Values built in code have
none; :func:`chaoslab.app.api.save` writes them to files first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chaoslab.chaosmesh.manifest import selector_dict
from chaoslab.errors import InvalidInputError
from chaoslab.model import (
    API_VERSION,
    DEFAULT_GUARD_SEVERITIES,
    Catalog,
    Delay,
    Direction,
    Experiment,
    Fault,
    GameDay,
    GuardPolicy,
    Matrix,
    NetworkChaos,
    Service,
    SilenceSpec,
    Tier,
    Window,
    format_seconds,
)

logger = logging.getLogger(__name__)


def _set(**fields: Any) -> dict[str, Any]:
    """Only the fields that are set (not None, not empty)."""
    return {key: value for key, value in fields.items() if value not in (None, "", (), [], {})}


def _envelope(kind: str, metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def service_dict(service: Service, *, with_name: bool = True) -> dict[str, Any]:
    selector = selector_dict(service.selector)
    selector.pop("namespaces", None)  # always the service's namespace
    return _set(name=service.name if with_name else None, namespace=service.namespace,
                tier=service.tier.label, selector=selector, owner=service.owner,
                alerts=list(service.alerts))


def _delay(delay: Delay) -> dict[str, Any]:
    reorder = None
    if delay.reorder is not None:
        r = delay.reorder
        reorder = _set(reorder=r.reorder, correlation=r.correlation) | {"gap": r.gap}
    return _set(latency=delay.latency, jitter=delay.jitter, correlation=delay.correlation, reorder=reorder)


def _network(fault: NetworkChaos) -> dict[str, Any]:
    target = None
    if fault.target is not None:
        target = _set(mode=fault.target.mode.value, value=fault.target.value)
        target["selector"] = selector_dict(fault.target.selector)
    bandwidth = None
    if fault.bandwidth is not None:
        b = fault.bandwidth
        bandwidth = {"rate": b.rate, "limit": b.limit, "buffer": b.buffer} | _set(peakrate=b.peakrate,
                                                                                 minburst=b.minburst)
    return _set(
        action=fault.action.value, mode=fault.mode.value, value=fault.value,
        selector=selector_dict(fault.selector) if fault.selector is not None else None,
        duration=fault.duration,
        direction=None if fault.direction is Direction.TO else fault.direction.value,
        target=target, externalTargets=list(fault.external_targets), device=fault.device,
        targetDevice=fault.target_device,
        delay=_delay(fault.delay) if fault.delay is not None else None,
        loss=_set(loss=fault.loss.loss, correlation=fault.loss.correlation) if fault.loss else None,
        duplicate=_set(duplicate=fault.duplicate.duplicate, correlation=fault.duplicate.correlation)
        if fault.duplicate else None,
        corrupt=_set(corrupt=fault.corrupt.corrupt, correlation=fault.corrupt.correlation)
        if fault.corrupt else None,
        bandwidth=bandwidth,
    )


def fault_dict(fault: Fault) -> dict[str, Any]:
    """``{networkChaos: {...}}`` or ``{podChaos: {...}}``, as in ``spec.fault``."""
    if isinstance(fault, NetworkChaos):
        return {"networkChaos": _network(fault)}
    pod = _set(action=fault.action.value, mode=fault.mode.value, value=fault.value,
               selector=selector_dict(fault.selector) if fault.selector is not None else None,
               duration=fault.duration, containerNames=list(fault.container_names))
    if fault.grace_period is not None:
        pod["gracePeriod"] = fault.grace_period
    return {"podChaos": pod}


def guards_dict(policy: GuardPolicy) -> dict[str, Any] | None:
    """``spec.guards`` as written, or None for the default policy."""
    if policy == GuardPolicy():
        return None
    out: dict[str, Any] = {}
    if policy.severities != DEFAULT_GUARD_SEVERITIES:
        out["severities"] = list(policy.severities)
    return {**out, **_set(matchers=[f.text for f in policy.matchers], ignore=[f.text for f in policy.ignore])}


def silence_dict(silence: SilenceSpec) -> dict[str, Any]:
    out: dict[str, Any] = _set(alertmanager=silence.alertmanager)
    out["scope"] = silence.scope.value
    if silence.extra_matchers:
        out["extraMatchers"] = [m.describe() for m in silence.extra_matchers]
    out["required"] = silence.required
    return out


def catalog_dict(catalog: Catalog) -> dict[str, Any]:
    spec: dict[str, Any] = {"services": [service_dict(s) for s in catalog.services]}
    guards = guards_dict(catalog.guards)
    if guards is not None:
        spec["guards"] = guards
    return _envelope("Catalog", {"name": catalog.name}, spec)


def experiment_dict(experiment: Experiment) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if experiment.target is not None:
        spec["target"] = service_dict(experiment.target)
    else:
        spec["service"] = experiment.service
    spec["fault"] = fault_dict(experiment.fault)
    if experiment.rules:
        spec["hypothesis"] = {"rules": [_path(p) for p in experiment.rules]}
    if experiment.readiness is not None:
        spec["readiness"] = experiment.readiness
    metadata = _set(name=experiment.name, description=experiment.description, tags=list(experiment.tags))
    return _envelope("Experiment", metadata, spec)


def _path(path: Path) -> str:
    """A rule file as an absolute path (kept as given for a ``k8s://`` address)."""
    text = str(path)
    return text.replace("k8s:/", "k8s://", 1) if text.startswith("k8s:") else str(path.absolute())


def _matrix(matrix: Matrix) -> dict[str, Any]:
    services: Any = None
    if isinstance(matrix.services, Tier):
        services = {"tier": matrix.services.label}
    elif matrix.services is not None:
        services = list(matrix.services)
    faults = [{"name": entry.name, **fault_dict(entry.fault)} for entry in matrix.faults]
    return _set(services=services, faults=faults)


def _window(window: Window) -> dict[str, Any]:
    return {"days": list(window.days), "from": f"{window.start:%H:%M}", "to": f"{window.end:%H:%M}",
            "timezone": window.timezone}


def _source(path: Path | None, field: str, what: str, relative_to: Path | None) -> str:
    if path is None:
        raise InvalidInputError(None, field, f"{what} was built in code and has no file: save it first "
                                "(chaoslab.save) or load it from one")
    path = path.absolute()
    if relative_to is not None and path.is_relative_to(relative_to):
        return str(path.relative_to(relative_to))
    return str(path)


def gameday_dict(gameday: GameDay, *, relative_to: Path | None = None) -> dict[str, Any]:
    safety = gameday.safety
    spec = _set(
        catalog=_source(gameday.catalog.source, "spec.catalog", f"catalog {gameday.catalog.name}",
                        relative_to),
        rules=[_path(p) for p in gameday.rules],
        experiments=[_source(e.source, f"spec.experiments[{i}]", f"experiment {e.name}", relative_to)
                     for i, e in enumerate(gameday.experiments)],
        matrix=_matrix(gameday.matrix) if gameday.matrix is not None else None,
        blastRadius=[_set(mode=level.mode.value, value=level.value) for level in gameday.blast_radius],
    )
    spec["gate"] = gameday.gate.value
    safety_dict = _set(allowNamespaces=list(safety.allow_namespaces), maxPercent=safety.max_percent)
    if safety.allow_kube_system:
        safety_dict["allowKubeSystem"] = True
    if safety_dict:
        spec["safety"] = safety_dict
    if gameday.window is not None:
        spec["window"] = _window(gameday.window)
    spec["recoveryTimeout"] = format_seconds(gameday.recovery_timeout_s)
    spec["recoveryTarget"] = format_seconds(gameday.recovery_target_s)
    if not gameday.readiness:
        spec["readiness"] = False
    if gameday.silence is not None:
        spec["silence"] = silence_dict(gameday.silence)
    guards = guards_dict(gameday.catalog.guards)  # the catalog's policy as this game day refines it
    if guards is not None:
        spec["guards"] = guards
    return _envelope("GameDay", _set(name=gameday.name, description=gameday.description), spec)


def to_document(value: Catalog | Experiment | GameDay, *, relative_to: Path | None = None) -> dict[str, Any]:
    """The file form of ``value`` (a game day's files relative to ``relative_to`` when inside it)."""
    if isinstance(value, Catalog):
        return catalog_dict(value)
    if isinstance(value, Experiment):
        return experiment_dict(value)
    if isinstance(value, GameDay):
        return gameday_dict(value, relative_to=relative_to)
    raise TypeError(f"cannot write a {type(value).__name__} as a chaoslab file")


def to_yaml(value: Catalog | Experiment | GameDay, *, relative_to: Path | None = None) -> str:
    import yaml

    return str(yaml.safe_dump(to_document(value, relative_to=relative_to), sort_keys=False,
                              allow_unicode=True))

