"""Chaos Mesh manifests in the sandbox: parse and check one into model values.

The manifest dict (``apiVersion: chaos-mesh.org/v1alpha1``, ``kind``, ``metadata``,
``spec``) is the fault request at the Chaos Toolkit boundary and the wire format of
the supervisor's control API, so the sandbox reads exactly what a cluster would.
The envelope is checked by ``chaoslab.chaosmesh.objects`` as for the Kubernetes
target, and the spec by the loader's CRD and webhook rules (``chaoslab.loader``), so
the sandbox accepts what a chaoslab file accepts and yields the same model values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaoslab.chaosmesh.objects import check_manifest
from chaoslab.loader.faults import parse_network_chaos, parse_pod_chaos
from chaoslab.loader.fields import Fields, Where, check_dns_label, check_enum
from chaoslab.loader.selectors import parse_selector
from chaoslab.model import (
    EXPERIMENT_LABEL,
    RUN_ID_LABEL,
    ChaosKind,
    NetworkChaos,
    PodAction,
    PodChaos,
    Selector,
    parse_go_duration,
)

_TOP_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")
# Chaos Mesh runs these once and is done, so they need no duration (chaoslab's own
# files always give one; a hand-written manifest may not).
_ONE_SHOT = (PodAction.POD_KILL.value, PodAction.CONTAINER_KILL.value)


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


def parse_manifest(manifest: Any, *, origin: str = "manifest") -> ChaosObject:
    """A Chaos Mesh manifest dict → ``ChaosObject``; ``InvalidInputError`` when it is wrong."""
    top = check_manifest(manifest, where=origin)
    root = Where(None, origin)
    Fields(top, root, allowed=_TOP_KEYS)  # refuses unknown top-level keys
    kind = check_enum(top["kind"], root.key(top, "kind"), ChaosKind)
    meta = Fields(top["metadata"], root.key(top, "metadata"), allowed=tuple(top["metadata"]))
    name = check_dns_label(meta.raw("name"), meta.at("name"))
    namespace = check_dns_label(meta.raw("namespace"), meta.at("namespace"), what="a namespace")
    labels = meta.text_map("labels")
    fault = _fault(kind, top["spec"], root.key(top, "spec"))
    return ChaosObject(kind=kind, name=name, namespace=namespace, labels=labels, fault=fault,
                       duration_s=parse_go_duration(fault.duration) if fault.duration else None)


def _fault(kind: ChaosKind, spec: Mapping[str, Any], where: Where) -> NetworkChaos | PodChaos:
    """The spec through the loader's rules. Its fault-level selector takes no
    ``namespaces`` (a chaoslab file gets them from the service), while a manifest's
    selector carries them, so the selector is read here and the rest there."""
    rest = {key: value for key, value in spec.items() if key != "selector"}
    one_shot = kind is ChaosKind.POD_CHAOS and spec.get("action") in _ONE_SHOT
    if one_shot and spec.get("duration") is None:
        rest["duration"] = "1s"  # stands in for the absent duration, dropped below
    fault: NetworkChaos | PodChaos
    if kind is ChaosKind.NETWORK_CHAOS:
        fault = parse_network_chaos(rest, where)
    else:
        fault = parse_pod_chaos(rest, where)
    raw_selector = spec.get("selector")
    selector = parse_selector({} if raw_selector is None else raw_selector, where.key(spec, "selector"),
                              namespaces=True)
    duration = fault.duration if spec.get("duration") is not None else ""
    return dataclasses.replace(fault, selector=selector, duration=duration)
