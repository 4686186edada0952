"""``kind: Catalog`` files: the services chaoslab knows, their tier and their pods.

Also :func:`find_catalog`, the rule that finds the catalog for a file that does not
name one: ``catalog.yaml`` beside it, or in a parent up to two levels up.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chaoslab.loader.document import Document, read_document, type_name
from chaoslab.loader.fields import Fields, Where, check_dns_label, top_fields
from chaoslab.loader.guards import catalog_guards
from chaoslab.loader.selectors import check_service_selector, parse_selector
from chaoslab.model import Catalog, Service, Tier

logger = logging.getLogger(__name__)

CATALOG_FILE = "catalog.yaml"
SERVICE_FIELDS = ("name", "namespace", "tier", "selector", "owner", "alerts")
SERVICE_REQUIRED = ("name", "namespace", "tier", "selector")
SPEC_FIELDS = ("services", "guards")
SPEC_REQUIRED = ("services",)
TIERS = tuple(tier.label for tier in Tier)


def parse_tier(value: object, where: Where) -> Tier:
    if not isinstance(value, str) or value not in TIERS:
        shown = repr(value) if isinstance(value, str) else type_name(value)
        raise where.fail(f"must be one of {', '.join(TIERS)}, got {shown}")
    return Tier.parse(value)


def parse_metadata(data: object, where: Where, *, extra: tuple[str, ...] = ()) -> Fields:
    """``metadata`` with a DNS-1123 ``name``; ``extra`` lists other allowed keys."""
    fields = Fields(data, where, allowed=("name", *extra), required=("name",))
    check_dns_label(fields.raw("name"), fields.at("name"))
    return fields


def _service(value: object, where: Where) -> Service:
    fields = Fields(value, where, allowed=SERVICE_FIELDS, required=SERVICE_REQUIRED)
    name = check_dns_label(fields.raw("name"), fields.at("name"), what="a service name")
    namespace = check_dns_label(fields.raw("namespace"), fields.at("namespace"), what="a namespace")
    selector = parse_selector(fields.raw("selector"), fields.at("selector"), namespaces=False)
    return Service(
        name=name,
        namespace=namespace,
        tier=parse_tier(fields.raw("tier"), fields.at("tier")),
        selector=check_service_selector(selector, fields.at("selector"), namespace=namespace),
        owner=fields.opt_text("owner"),
        alerts=fields.text_list("alerts"),
    )


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a ``kind: Catalog`` file."""
    return catalog_from(read_document(path, kinds=("Catalog",)))


def catalog_from(doc: Document) -> Catalog:
    """The catalog in a document already read."""
    top = top_fields(doc)
    metadata = parse_metadata(top.raw("metadata"), top.at("metadata"))
    spec = Fields(top.raw("spec"), top.at("spec"), allowed=SPEC_FIELDS, required=SPEC_REQUIRED)
    services: list[Service] = []
    seen: dict[str, int] = {}
    for index, (raw, where) in enumerate(spec.items("services")):
        service = _service(raw, where)
        if service.name in seen:
            raise where.key(raw, "name").fail(
                f"service {service.name!r} is listed twice (also spec.services[{seen[service.name]}])")
        seen[service.name] = index
        services.append(service)
    if not services:
        raise spec.at("services").fail("lists no services")
    logger.debug("catalog %s: %d services", doc.path, len(services))
    return Catalog(name=metadata.text("name"), services=tuple(services), source=doc.path,
                   guards=catalog_guards(spec))


def find_catalog(path: str | Path) -> Path | None:
    """``catalog.yaml`` beside ``path`` (a file or a directory), or in a parent up to
    two levels up; None when there is none."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    for candidate in (folder, folder.parent, folder.parent.parent):
        found = candidate / CATALOG_FILE
        if found.is_file():
            return found
    return None
