"""What a command is pointed at: an experiment or a game day file, with its catalog, and
the plan it gives."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from chaoslab.errors import InvalidInputError
from chaoslab.loader import find_catalog, load_catalog, load_experiment, load_gameday, read_document
from chaoslab.model import Catalog, Experiment, GameDay, Plan
from chaoslab.plan import build_plan, check_safety, experiment_gameday

logger = logging.getLogger(__name__)

# What an error says about a file of another kind, after "a <Kind> ".
NO_PLAN = "has no plan; give a GameDay or an Experiment"


@dataclass(frozen=True, slots=True, kw_only=True)
class Subject:
    """A loaded experiment or game day. ``catalog`` is the game day's, or the catalog an
    experiment was checked against (None for an inline target without a catalog)."""

    loaded: Experiment | GameDay
    catalog: Catalog | None

    def gameday(self, *, recovery_timeout_s: float | None = None) -> GameDay:
        """The game day to plan: a lone experiment becomes a one-step game day, whose
        recovery timeout is ``recovery_timeout_s`` when given (it has none of its own)."""
        if isinstance(self.loaded, GameDay):
            return self.loaded
        gameday = experiment_gameday(self.loaded, self.catalog)
        if recovery_timeout_s is not None:
            gameday = dataclasses.replace(gameday, recovery_timeout_s=recovery_timeout_s)
        return gameday


def load_subject(path: str | Path, *, catalog: str | Path | None = None, refusal: str = NO_PLAN) -> Subject:
    """The GameDay or Experiment in ``path``. ``catalog`` overrides the game day's
    ``spec.catalog``; without it, the catalog.yaml beside the file or up to two folders
    above applies. Any other kind is an InvalidInputError on ``kind`` that says
    ``a <Kind> <refusal>``."""
    path = Path(path)
    doc = read_document(path)
    if doc.kind == "GameDay":
        gameday = load_gameday(path, catalog_path=catalog)
        return Subject(loaded=gameday, catalog=gameday.catalog)
    if doc.kind == "Experiment":
        found = catalog if catalog is not None else find_catalog(path)
        loaded_catalog = load_catalog(found) if found is not None else None
        return Subject(loaded=load_experiment(path, catalog=loaded_catalog), catalog=loaded_catalog)
    raise InvalidInputError(path, "kind", f"a {doc.kind} {refusal}", line=doc.data.key_lines.get("kind"))


def load_plan(
    path: str | Path, *, catalog: str | Path | None = None, recovery_timeout_s: float | None = None,
    refusal: str = NO_PLAN,
) -> Plan:
    """The plan of the game day (or the single experiment) in ``path``; see
    :func:`load_subject` and :meth:`Subject.gameday`."""
    subject = load_subject(path, catalog=catalog, refusal=refusal)
    plan = build_plan(subject.gameday(recovery_timeout_s=recovery_timeout_s))
    check_safety(plan)  # before anything is injected: a step its own safety rules refuse is bad input
    return plan
