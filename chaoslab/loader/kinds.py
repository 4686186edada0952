"""Loading any chaoslab file by its ``kind``."""

from __future__ import annotations

from pathlib import Path

from chaoslab.errors import InvalidInputError
from chaoslab.loader.catalog import catalog_from, load_catalog
from chaoslab.loader.document import Document, read_document
from chaoslab.loader.experiment import read_experiment
from chaoslab.loader.gameday import gameday_from
from chaoslab.model import Catalog, Experiment, GameDay

LOADABLE = ("Catalog", "Experiment", "GameDay")


def load_document(doc: Document, *, catalog_path: str | Path | None = None) -> Catalog | Experiment | GameDay:
    """:func:`load_any` for a document already read with ``read_document``."""
    if doc.kind == "Catalog":
        return catalog_from(doc)
    if doc.kind == "Experiment":
        catalog = load_catalog(catalog_path) if catalog_path is not None else None
        return read_experiment(doc, catalog=catalog, allow_kube_system=None)
    if doc.kind == "GameDay":
        return gameday_from(doc, catalog_path=catalog_path)
    raise InvalidInputError(doc.path, "kind", f"{doc.kind} files are read by `chaoslab {doc.kind.lower()}`; "
                                              f"this loads {', '.join(LOADABLE)}",
                            line=doc.data.key_lines.get("kind"))


def load_any(path: str | Path, *, catalog_path: str | Path | None = None) -> Catalog | Experiment | GameDay:
    """A Catalog, Experiment or GameDay, whichever the file's ``kind`` says.

    ``catalog_path`` is the catalog for experiments and game days (default: the one
    :func:`find_catalog` finds)."""
    return load_document(read_document(path), catalog_path=catalog_path)
