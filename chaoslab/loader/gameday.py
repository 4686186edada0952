"""``kind: GameDay`` files: which experiments run, in which order, within which limits.

Paths in a game day (catalog, rules, experiment globs) are relative to the game day
file. The catalog is loaded once and every experiment is checked against it.
"""

from __future__ import annotations

import glob
import logging
import re
import zoneinfo
from datetime import time
from pathlib import Path

from chaoslab.loader.catalog import find_catalog, load_catalog, parse_metadata, parse_tier
from chaoslab.loader.document import Document, read_document, type_name
from chaoslab.loader.experiment import effective_service, read_experiment, rule_paths
from chaoslab.loader.faults import FAULT_KEYS, parse_fault, parse_mode
from chaoslab.loader.fields import Fields, Where, check_dns_label, check_duration, top_fields
from chaoslab.loader.guards import refine_catalog
from chaoslab.loader.silence import parse_silence
from chaoslab.model import (
    Catalog,
    Experiment,
    GameDay,
    Gate,
    Matrix,
    MatrixFault,
    RampLevel,
    Safety,
    Tier,
    Window,
    parse_go_duration,
)
from chaoslab.scope import DAYS, KUBE_SYSTEM, matrix_services, ramp_suffix, suggest

logger = logging.getLogger(__name__)

SPEC_FIELDS = ("catalog", "rules", "experiments", "matrix", "blastRadius", "gate", "safety", "window",
               "recoveryTimeout", "recoveryTarget", "guards", "readiness", "silence")
DEFAULT_RECOVERY_TIMEOUT = "120s"
DEFAULT_RECOVERY_TARGET = "60s"  # a recovery slower than this is a finding (an Act item)
METADATA_EXTRA = ("description",)
SAFETY_FIELDS = ("allowNamespaces", "maxPercent", "allowKubeSystem")
MATRIX_FIELDS, MATRIX_REQUIRED = ("services", "faults"), ("faults",)
RAMP_FIELDS, RAMP_REQUIRED = ("mode", "value"), ("mode",)
WINDOW_FIELDS = ("days", "from", "to", "timezone")  # all required
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_MAX_NAME = 63
CLOCK_PATTERN = _CLOCK.pattern


def _catalog(spec: Fields, path: Path, catalog_path: str | Path | None) -> Catalog:
    if catalog_path is not None:
        return load_catalog(catalog_path)
    if "catalog" in spec:
        found = path.parent / spec.text("catalog")
        if not found.is_file():
            raise spec.at("catalog").fail(f"catalog file {found} not found")
        return load_catalog(found)
    default = find_catalog(path)
    if default is None:
        raise spec.at("catalog").fail("is not given and no catalog.yaml was found beside the game day "
                                      "or up to two folders above")
    return load_catalog(default)


def _safety(spec: Fields) -> Safety:
    fields = spec.sub("safety", allowed=SAFETY_FIELDS)
    if fields is None:
        return Safety()
    namespaces = fields.text_list("allowNamespaces")
    for namespace, (_, where) in zip(namespaces, fields.items("allowNamespaces"), strict=True):
        check_dns_label(namespace, where, what="a namespace")
    allow_kube_system = fields.boolean("allowKubeSystem", default=False)
    if KUBE_SYSTEM in namespaces and not allow_kube_system:
        raise fields.at("allowNamespaces").fail("lists kube-system; that also needs allowKubeSystem: true")
    return Safety(allow_namespaces=namespaces,
                  max_percent=fields.opt_integer("maxPercent", minimum=1, maximum=100),
                  allow_kube_system=allow_kube_system)


def _experiment_paths(spec: Fields, base: Path) -> list[tuple[Path, Where]]:
    found: list[tuple[Path, Where]] = []
    seen: set[Path] = set()
    for raw, where in spec.items("experiments"):
        if not isinstance(raw, str) or not raw:
            raise where.fail(f"must be a path or glob such as exp/*.yaml, got {type_name(raw)}")
        pattern = raw if Path(raw).is_absolute() else str(base / raw)
        matches = sorted(Path(m) for m in glob.glob(pattern, recursive=True) if Path(m).is_file())
        if not matches:
            raise where.fail(f"{raw!r} matches no file (relative to {base})")
        for match in matches:
            # A file listed first keeps its place when a later glob matches it again.
            if match.resolve() not in seen:
                seen.add(match.resolve())
                found.append((match, where))
    return found


def _matrix(spec: Fields, catalog: Catalog) -> Matrix | None:
    fields = spec.sub("matrix", allowed=MATRIX_FIELDS, required=MATRIX_REQUIRED)
    if fields is None:
        return None
    faults: list[MatrixFault] = []
    for raw, where in fields.items("faults"):
        item = Fields(raw, where, allowed=("name", *FAULT_KEYS), required=("name",))
        name = check_dns_label(item.raw("name"), item.at("name"), what="a fault name")
        if any(f.name == name for f in faults):
            raise item.at("name").fail(f"fault name {name!r} is used twice in this matrix")
        fault = parse_fault(raw, path=where.path, field_prefix=where.field, line=where.line,
                            extra_keys=("name",))
        faults.append(MatrixFault(name=name, fault=fault))
    if not faults:
        raise fields.at("faults").fail("lists no faults")
    matrix = Matrix(faults=tuple(faults), services=_matrix_services(fields, catalog))
    if not matrix_services(matrix, catalog):
        assert isinstance(matrix.services, Tier)  # `all` and listed names always find services
        raise fields.at("services").fail(f"selects no service: catalog {catalog.name} has no "
                                         f"{matrix.services.label} service")
    wheres = [where for _, where in fields.items("faults")]
    for service in matrix_services(matrix, catalog):
        for entry, where in zip(matrix.faults, wheres, strict=True):
            effective_service(service, entry.fault, where, selector_where=where)
    return matrix


def _matrix_services(fields: Fields, catalog: Catalog) -> Tier | tuple[str, ...] | None:
    raw = fields.raw("services")
    where = fields.at("services")
    if raw is None or raw == "all":
        return None
    if isinstance(raw, dict):
        by_tier = Fields(raw, where, allowed=("tier",), required=("tier",))
        return parse_tier(by_tier.raw("tier"), by_tier.at("tier"))
    if not isinstance(raw, list):
        raise where.fail("must be all, a list of service names or {tier: non-core|core}, "
                         f"got {type_name(raw)}")
    names = fields.text_list("services")
    known = [s.name for s in catalog.services]
    for name, (_, item) in zip(names, fields.items("services"), strict=True):
        if name not in known:
            raise item.fail(f"unknown service {name!r}{suggest(name, known)}; "
                            f"the catalog has: {', '.join(known)}")
    if not names:
        raise where.fail("lists no services (use all for every catalog service)")
    return names


def _ramp(spec: Fields) -> tuple[RampLevel, ...]:
    levels = []
    for raw, where in spec.items("blastRadius"):
        mode, value = parse_mode(Fields(raw, where, allowed=RAMP_FIELDS, required=RAMP_REQUIRED))
        levels.append(RampLevel(mode=mode, value=value))
    return tuple(levels)


def _clock(fields: Fields, key: str) -> time:
    value = fields.raw(key)
    if not isinstance(value, str) or not _CLOCK.match(value):
        shown = repr(value) if isinstance(value, str) else type_name(value)
        raise fields.at(key).fail(f"must be a time of day \"HH:MM\" (quoted, 24-hour), got {shown}")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _window(spec: Fields) -> Window | None:
    fields = spec.sub("window", allowed=WINDOW_FIELDS, required=WINDOW_FIELDS)
    if fields is None:
        return None
    days = fields.text_list("days")
    for day, (_, where) in zip(days, fields.items("days"), strict=True):
        if day not in DAYS:
            raise where.fail(f"must be one of {', '.join(DAYS)}, got {day!r}{suggest(day, DAYS)}")
    if not days:
        raise fields.at("days").fail("lists no days")
    start, end = _clock(fields, "from"), _clock(fields, "to")
    if start == end:
        raise fields.at("to").fail("equals from: the window would be empty")
    timezone = fields.text("timezone")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise fields.at("timezone").fail(
            f"{timezone!r} is not an IANA time zone such as Europe/Paris") from exc
    return Window(days=days, start=start, end=end, timezone=timezone)


def _check_names(experiments: tuple[Experiment, ...], matrix: Matrix | None, catalog: Catalog,
                 spec: Fields, ramp: int) -> None:
    """Step names become Kubernetes label values: unique and at most 63 characters."""
    names: dict[str, str] = {}
    suffix = len(ramp_suffix(ramp, ramp - 1))
    for experiment in experiments:
        if experiment.name in names:
            raise spec.at("experiments").fail(
                f"experiment name {experiment.name!r} is used by both {names[experiment.name]} "
                f"and {experiment.source}")
        if len(experiment.name) + suffix > _MAX_NAME:
            raise spec.at("blastRadius").fail(f"step names of {experiment.name!r} would exceed {_MAX_NAME} "
                                              "characters with the ramp suffix; shorten the experiment name")
        names[experiment.name] = str(experiment.source)
    if matrix is None:
        return
    for service in matrix_services(matrix, catalog):
        for entry in matrix.faults:
            name = f"{service.name}-{entry.name}"
            if name in names:
                raise spec.at("matrix").fail(
                    f"step {name!r} (matrix) has the name of experiment {names[name]}")
            if len(name) + suffix > _MAX_NAME:
                raise spec.at("matrix").fail(f"step name {name!r} would exceed {_MAX_NAME} characters; "
                                             "shorten the fault name")
            names[name] = "the matrix"


def load_gameday(path: str | Path, *, catalog_path: str | Path | None = None) -> GameDay:
    """Read and validate a ``kind: GameDay`` file with its catalog and experiments.

    ``catalog_path`` overrides ``spec.catalog`` (which is relative to the file); with
    neither, :func:`find_catalog` applies."""
    return gameday_from(read_document(path, kinds=("GameDay",)), catalog_path=catalog_path)


def gameday_from(doc: Document, *, catalog_path: str | Path | None = None) -> GameDay:
    """The game day in a document already read."""
    top = top_fields(doc)
    metadata = parse_metadata(top.raw("metadata"), top.at("metadata"), extra=METADATA_EXTRA)
    spec = Fields(top.raw("spec"), top.at("spec"), allowed=SPEC_FIELDS)
    catalog = refine_catalog(_catalog(spec, doc.path, catalog_path), spec)
    safety = _safety(spec)
    experiments = tuple(
        read_experiment(found, catalog=catalog, allow_kube_system=safety.allow_kube_system)
        for found, _ in _experiment_paths(spec, doc.path.parent)
    )
    matrix = _matrix(spec, catalog)
    if not experiments and matrix is None:
        raise spec.where.fail("has nothing to run: give experiments, a matrix, or both")
    ramp = _ramp(spec)
    _check_names(experiments, matrix, catalog, spec, len(ramp))
    timeout = spec.raw("recoveryTimeout") or DEFAULT_RECOVERY_TIMEOUT
    check_duration(timeout, spec.at("recoveryTimeout"))
    target = spec.raw("recoveryTarget") or DEFAULT_RECOVERY_TARGET
    check_duration(target, spec.at("recoveryTarget"))
    logger.debug("game day %s: %d experiments, matrix %s", doc.path, len(experiments), matrix is not None)
    return GameDay(
        name=metadata.text("name"),
        catalog=catalog,
        experiments=experiments,
        rules=rule_paths(spec, "rules", doc.path.parent),
        matrix=matrix,
        blast_radius=ramp,
        gate=spec.enum("gate", Gate, default=Gate.STOP),
        safety=safety,
        window=_window(spec),
        recovery_timeout_s=parse_go_duration(timeout),
        description=metadata.opt_text("description") or "",
        source=doc.path,
        recovery_target_s=parse_go_duration(target),
        readiness=spec.boolean("readiness", default=True),
        silence=parse_silence(spec),
    )
