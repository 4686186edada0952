"""Loading chaoslab files (``apiVersion: chaoslab/v1``) into the typed model.

YAML and JSON are read with line marks, and every mistake is an
``InvalidInputError`` naming the file, the field path and the line. The modules, by
stage: ``document`` (reading, envelope), ``fields`` (typed access), ``selectors``,
``faults`` (Chaos Mesh CRD and webhook rules), ``catalog``, ``experiment``,
``gameday`` and ``kinds`` (any file by its kind).
"""

from chaoslab.loader.catalog import find_catalog, load_catalog
from chaoslab.loader.document import Document, document_from, read_document
from chaoslab.loader.experiment import load_experiment
from chaoslab.loader.faults import check_mode_value, parse_fault
from chaoslab.loader.gameday import load_gameday
from chaoslab.loader.kinds import load_any, load_document

# Domain rules live in chaoslab.scope; the loader re-exports them for existing callers.
from chaoslab.scope import (
    DAYS,
    kube_system_refusal,
    matrix_services,
    narrow_selector,
    narrow_service,
    ramp_suffix,
    resolve_service,
    selects_whole_namespace,
)

__all__ = [
    "DAYS",
    "Document",
    "check_mode_value",
    "document_from",
    "find_catalog",
    "kube_system_refusal",
    "load_any",
    "load_catalog",
    "load_document",
    "load_experiment",
    "load_gameday",
    "matrix_services",
    "narrow_selector",
    "narrow_service",
    "parse_fault",
    "ramp_suffix",
    "read_document",
    "resolve_service",
    "selects_whole_namespace",
]
