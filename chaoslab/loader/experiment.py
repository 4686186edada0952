"""``kind: Experiment`` files: one fault against one service.

The service is a catalog entry (``spec.service``) or given inline (``spec.target``).
Here the fault is checked against that service: its selector may only narrow the
service's, the result must not select a whole namespace, and ``kube-system`` is
refused unless a game day allows it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from chaoslab.loader.catalog import SERVICE_FIELDS, find_catalog, load_catalog, parse_metadata, parse_tier
from chaoslab.loader.document import Document, read_document
from chaoslab.loader.faults import parse_fault
from chaoslab.loader.fields import Fields, Where, check_dns_label, top_fields
from chaoslab.loader.selectors import check_service_selector, overridden_by_pods, parse_selector
from chaoslab.model import Catalog, Experiment, Fault, NetworkChaos, Service
from chaoslab.scope import (
    kube_system_refusal,
    narrow_service,
    selects_whole_namespace,
    suggest,
    whole_namespace_reason,
)

logger = logging.getLogger(__name__)

SPEC_FIELDS = ("service", "target", "fault", "hypothesis", "readiness")
SPEC_REQUIRED = ("fault",)
METADATA_EXTRA = ("description", "tags")
TARGET_REQUIRED = ("namespace", "tier")
HYPOTHESIS_FIELDS = ("rules",)
KUBE_SYSTEM_BARE = (
    "chaoslab refuses kube-system for a single experiment; to run it, "
    "list it in a GameDay with spec.safety.allowKubeSystem: true"
)
KUBE_SYSTEM_GAMEDAY = "this game day does not allow kube-system (set spec.safety.allowKubeSystem: true)"


def effective_service(service: Service, fault: Fault, where: Where, *, selector_where: Where) -> Service:
    """``service`` narrowed by ``fault.selector``; conflicts and whole-namespace
    selection are errors (at ``selector_where`` and ``where``)."""
    if fault.selector is not None and overridden_by_pods(dataclasses.replace(fault.selector,
                                                                             pods=service.selector.pods)):
        raise selector_where.fail(
            f"service {service.name!r} lists its pods by name (pods), which overrides every other "
            "selector field in Chaos Mesh: this fault selector would be ignored; remove it")
    try:
        narrowed = narrow_service(service, fault.selector)
    except ValueError as exc:
        raise selector_where.fail(str(exc)) from exc
    if selects_whole_namespace(narrowed.selector):
        raise where.fail(f"service {service.name!r} " + whole_namespace_reason(service.namespace))
    return narrowed


def _inline_target(spec: Fields, name: str) -> Service:
    fields = spec.sub("target", allowed=SERVICE_FIELDS, required=TARGET_REQUIRED)
    assert fields is not None
    namespace = check_dns_label(fields.raw("namespace"), fields.at("namespace"), what="a namespace")
    selector = parse_selector(fields.raw("selector") or {}, fields.at("selector"), namespaces=False)
    return Service(
        name=check_dns_label(fields.raw("name"), fields.at("name")) if "name" in fields else name,
        namespace=namespace,
        tier=parse_tier(fields.raw("tier"), fields.at("tier")),
        # A fault selector may still narrow it; the whole-namespace check comes after.
        selector=check_service_selector(selector, fields.at("selector"), namespace=namespace,
                                        require_narrow=False),
        owner=fields.opt_text("owner"),
        alerts=fields.text_list("alerts"),
    )


def _catalog_service(spec: Fields, path: Path, catalog: Catalog | None) -> tuple[Service, Catalog]:
    where = spec.at("service")
    name = spec.text("service")
    if catalog is None:
        found = find_catalog(path)
        if found is None:
            raise where.fail(
                f"names catalog service {name!r} but no catalog was given and no catalog.yaml was found "
                "beside the file or up to two folders above (use --catalog)")
        catalog = load_catalog(found)
    service = catalog.get(name)
    if service is None:
        names = [s.name for s in catalog.services]
        raise where.fail(f"unknown service {name!r}{suggest(name, names)}; "
                         f"catalog {catalog.source or catalog.name} has: {', '.join(names)}")
    return service, catalog


def _rules(spec: Fields, base: Path) -> tuple[Path, ...]:
    hypothesis = spec.sub("hypothesis", allowed=HYPOTHESIS_FIELDS)
    if hypothesis is None:
        return ()
    return rule_paths(hypothesis, "rules", base)


def rule_paths(fields: Fields, key: str, base: Path) -> tuple[Path, ...]:
    """Paths of alert rule files, relative to ``base``; each must exist.

    ``k8s://NAMESPACE[/NAME]`` names PrometheusRule objects in the cluster; it is kept
    as given and read when the rules are loaded."""
    out = []
    for raw, where in fields.items(key):
        if not isinstance(raw, str) or not raw:
            raise where.fail("must be a path to a Prometheus rule file or a k8s://NAMESPACE/ address")
        if raw.startswith("k8s:"):
            out.append(Path(raw))
            continue
        path = base / raw
        if not path.is_file():
            raise where.fail(f"rule file {path} not found")
        out.append(path)
    return tuple(out)


def read_experiment(
    path: str | Path | Document, *, catalog: Catalog | None, allow_kube_system: bool | None
) -> Experiment:
    """:func:`load_experiment` for a game day: ``allow_kube_system`` is its
    ``safety.allowKubeSystem``, or None for a single experiment (always refused)."""
    doc = path if isinstance(path, Document) else read_document(path, kinds=("Experiment",))
    top = top_fields(doc)
    metadata = parse_metadata(top.raw("metadata"), top.at("metadata"), extra=METADATA_EXTRA)
    name = metadata.text("name")
    spec = Fields(top.raw("spec"), top.at("spec"), allowed=SPEC_FIELDS, required=SPEC_REQUIRED)
    if ("service" in spec) == ("target" in spec):
        raise spec.where.fail("needs exactly one of service (a catalog service) "
                              "or target (an inline service)")
    fault_where = spec.at("fault")
    fault = parse_fault(spec.raw("fault"), path=doc.path, field_prefix="spec.fault", line=fault_where.line)
    kind_key = "networkChaos" if isinstance(fault, NetworkChaos) else "podChaos"
    selector_where = fault_where.key(spec.raw("fault"), kind_key).key(spec.raw("fault")[kind_key], "selector")
    inline = None
    if "service" in spec:
        service, _ = _catalog_service(spec, doc.path, catalog)
        where = spec.at("service")
    else:
        service = inline = _inline_target(spec, name)
        where = spec.at("target")
    service = effective_service(service, fault, where, selector_where=selector_where)
    refusal = None if allow_kube_system else kube_system_refusal(service, fault)
    if refusal is not None:
        hint = KUBE_SYSTEM_BARE if allow_kube_system is None else KUBE_SYSTEM_GAMEDAY
        raise where.fail(f"{refusal}: {hint}")
    logger.debug("experiment %s: %s %s on %s", name, fault.kind.value, fault.action.value, service.name)
    return Experiment(
        name=name,
        fault=fault,
        service=service.name if inline is None else None,
        target=inline,
        description=metadata.opt_text("description") or "",
        tags=metadata.text_list("tags"),
        rules=_rules(spec, doc.path.parent),
        source=doc.path,
        readiness=None if spec.raw("readiness") is None else spec.boolean("readiness", default=True),
    )


def load_experiment(path: str | Path, *, catalog: Catalog | None = None) -> Experiment:
    """Read and validate a ``kind: Experiment`` file.

    Without ``catalog``, an experiment that names a catalog service uses the catalog
    :func:`find_catalog` finds. A single experiment never targets kube-system."""
    return read_experiment(path, catalog=catalog, allow_kube_system=None)
