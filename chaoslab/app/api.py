"""The Python API's functions, re-exported by ``chaoslab``: files in and out, checks,
plans, exports, hypotheses, cleanup and runs. Each is the use case the CLI command of the
same name calls, with typed values instead of flags and printed output."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from chaoslab.errors import ChaoslabError, InvalidInputError
from chaoslab.model import Catalog, Experiment, FaultHandle, GameDay, Plan, RunResult, Service

if TYPE_CHECKING:
    from chaoslab.model import AlertRule
    from chaoslab.ports import ChaosBackend, MetricsSource
    from chaoslab.runner.events import EventSink

logger = logging.getLogger(__name__)

Loadable = Catalog | Experiment | GameDay
L = TypeVar("L", Catalog, Experiment, GameDay)
Target = Literal["kubernetes", "sandbox"]


def load(path: str | Path, *, catalog: str | Path | None = None) -> Catalog | Experiment | GameDay:
    """The Catalog, Experiment or GameDay in ``path`` (YAML or JSON), whichever its ``kind``.

    Paths in the result are absolute, so that ``load(path) == load(save(...))`` wherever
    the copy is written."""
    from chaoslab.loader import load_any

    return load_any(Path(path).absolute(), catalog_path=Path(catalog).absolute() if catalog else None)


def dump(value: Catalog | Experiment | GameDay, *, relative_to: str | Path | None = None) -> str:
    """``value`` as a chaoslab YAML file; ``load`` of that file gives ``value`` back. A game
    day names its catalog and experiments by the files they came from: absolute paths, or
    relative to ``relative_to`` (the folder the file goes to) when they are inside it."""
    from chaoslab.app.document import to_yaml

    return to_yaml(value, relative_to=Path(relative_to).absolute() if relative_to is not None else None)


def save(value: L, path: str | Path) -> L:
    """Write ``value`` to ``path`` (YAML) and return it as loaded from there. A game day's
    catalog and experiments that were built in code are written beside it first
    (``catalog.yaml``, ``exp/<name>.yaml``)."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(value, GameDay):
        value = _with_files(value, path.parent)
    path.write_text(dump(value, relative_to=path.parent), encoding="utf-8")
    loaded = load(path)
    assert isinstance(loaded, type(value))
    return loaded


def _with_files(gameday: GameDay, folder: Path) -> GameDay:
    catalog = gameday.catalog
    if catalog.source is None:
        catalog = save(catalog, folder / "catalog.yaml")
    experiments = tuple(
        e if e.source is not None else save(e, folder / "exp" / f"{e.name}.yaml")
        for e in gameday.experiments
    )
    return dataclasses.replace(gameday, catalog=catalog, experiments=experiments)


@overload
def validate(value: Catalog, *, catalog: Catalog | None = None) -> Catalog: ...
@overload
def validate(value: Experiment, *, catalog: Catalog | None = None) -> Experiment: ...
@overload
def validate(value: GameDay, *, catalog: Catalog | None = None) -> GameDay: ...
def validate(value: Loadable, *, catalog: Catalog | None = None) -> Loadable:
    """Check ``value`` with every rule the loader applies to the equivalent file, and return
    it as the loader reads it. An experiment that names a catalog service needs ``catalog``.
    Raises InvalidInputError naming the field."""
    from chaoslab.app.build import checked_experiment
    from chaoslab.app.document import catalog_dict
    from chaoslab.loader import document_from
    from chaoslab.loader.catalog import catalog_from

    if isinstance(value, Catalog):
        loaded = catalog_from(document_from(catalog_dict(value), path=value.source or "<input>"))
        return dataclasses.replace(loaded, source=value.source)
    if isinstance(value, Experiment):
        return checked_experiment(value, catalog=catalog)
    return _validate_gameday(value)


def _validate_gameday(gameday: GameDay) -> GameDay:
    """Through the loader as files, in a scratch folder; the sources are then put back."""
    with tempfile.TemporaryDirectory(prefix="chaoslab-validate-") as scratch:
        try:
            loaded = save(gameday, Path(scratch) / "gameday.yaml")
        except InvalidInputError as exc:
            if exc.path is None or not exc.path.startswith(str(Path(scratch).absolute())):
                raise
            shown = exc.path[len(str(Path(scratch).absolute())) + 1:]
            raise InvalidInputError(f"<{gameday.name}: {shown}>", exc.field, exc.reason) from None
    experiments = tuple(dataclasses.replace(new, source=old.source)
                        for new, old in zip(loaded.experiments, gameday.experiments, strict=True))
    restored = dataclasses.replace(loaded.catalog, source=gameday.catalog.source)
    return dataclasses.replace(loaded, catalog=restored, experiments=experiments, source=gameday.source)


def to_plan(value: GameDay | Experiment, *, catalog: Catalog | None = None) -> Plan:
    """The ordered stages and steps of a game day (or a one-step plan of an experiment).
    (Not ``plan``: ``chaoslab.plan`` is the planning module.)"""
    from chaoslab.plan import build_plan, experiment_gameday

    if isinstance(value, Experiment):
        return build_plan(experiment_gameday(value, catalog))
    return build_plan(value)


def _catalog_beside(path: Path) -> Catalog | None:
    """The catalog the CLI would use for an experiment file: catalog.yaml beside it or above."""
    from chaoslab.loader import find_catalog, load_catalog

    found = find_catalog(path)
    return load_catalog(found) if found is not None else None


def to_chaos_mesh(experiment: Experiment, catalog: Catalog | None = None, *,
                  run_id: str | None = None) -> dict[str, Any]:
    """The Chaos Mesh object (NetworkChaos/PodChaos) of ``experiment``, as a dict."""
    from chaoslab.chaosmesh.manifest import experiment_manifest

    return experiment_manifest(experiment, catalog, run_id=run_id)


def to_chaostoolkit(experiment: Experiment, catalog: Catalog | None = None, *,
                    target: Target = "kubernetes", prometheus: str | None = None,
                    rules: Sequence[str | Path] = ()) -> dict[str, Any]:
    """A Chaos Toolkit experiment (dict) that injects, holds and always removes the fault;
    with alert ``rules`` (files or ``k8s://`` addresses; default the experiment's own) it
    carries the steady-state hypothesis built from them."""
    from chaoslab.ctk import build_ctk_experiment
    from chaoslab.scope import resolve_service

    service = resolve_service(experiment, catalog)
    sources = tuple(rules) or experiment.rules
    built = hypothesis(service, sources, catalog) if sources else None
    return build_ctk_experiment(experiment=experiment, service=service, target=target,
                                prometheus_url=prometheus, hypothesis=built)


def hypothesis(service: Service | str, rules: Sequence[str | Path] | Sequence[AlertRule],
               catalog: Catalog | None) -> dict[str, Any]:
    """The Chaos Toolkit steady-state hypothesis of ``service`` from alert rules (rule files,
    PrometheusRule files, ``k8s://`` addresses, or ``AlertRule`` values). PlanError when no
    alert binds to the service."""
    from chaoslab.app.rules import load_rules_from
    from chaoslab.model import AlertRule
    from chaoslab.prometheus.hypothesis import build_hypothesis

    if isinstance(service, str):
        found = catalog.get(service) if catalog is not None else None
        if found is None:
            raise InvalidInputError(catalog.source if catalog else None, "service",
                                    f"unknown service {service!r}")
        service = found
    alert_rules = [r for r in rules if isinstance(r, AlertRule)]
    sources = [r for r in rules if not isinstance(r, AlertRule)]
    loaded = (*alert_rules, *load_rules_from(sources)) if sources else tuple(alert_rules)
    return build_hypothesis(service, loaded, catalog, sources=sources)


def cleanup(*, target: Target = "kubernetes", run_id: str | None = None, namespace: str | None = None,
            dry_run: bool = False, force: bool = False, timeout_s: float = 60.0,
            context: str | None = None) -> tuple[FaultHandle, ...]:
    """Remove the faults chaoslab left in ``target`` (one run's, or every run's without
    ``run_id``); returns them. CleanupError names what may remain."""
    from chaoslab.app.cleanup import cleanup as run_cleanup

    return run_cleanup(target=target, run_id=run_id, namespace=namespace, dry_run=dry_run, force=force,
                       timeout_s=timeout_s, context=context)


def run(value: GameDay | Experiment | Plan, *, target: Target = "kubernetes", prometheus: str | None = None,
        reports: str | Path | None = None, catalog: Catalog | None = None, rules: Sequence[str | Path] = (),
        dry_run: bool = False, cleanup_orphans: bool = False, events: EventSink | None = None,
        context: str | None = None, junit: str | Path | None = None,
        ports: tuple[ChaosBackend, MetricsSource] | None = None) -> RunResult:
    """Run a game day, an experiment or a plan, as ``chaoslab run --yes`` does, and write
    its record (run.json, report.md) under ``reports`` (default: reports/). Core-tier
    steps are not confirmed: calling this is the confirmation. An experiment that names a
    catalog service uses ``catalog``, else the catalog.yaml beside its file (as the CLI).

    Must be called from the main thread: SIGINT and SIGTERM then remove the active fault
    and end the run (``result.interrupted`` names the signal) instead of killing Python.
    From any other thread it raises ChaoslabError before anything runs (Chaos Toolkit
    installs signal handlers, which only the main thread may do); run ``chaoslab run`` in a
    subprocess there. Errors before the first step raise (InvalidInputError, PlanError,
    BackendError); everything after is in the result.

    ``ports=(backend, metrics)`` runs against your own ``ChaosBackend`` and ``MetricsSource``
    (see chaoslab.ports) instead of ``target`` and ``prometheus``: faults are injected and
    removed, and alerts checked, through them. The metrics source then also needs
    ``rules()`` when no rule file is named."""
    from chaoslab.app.execution import execute, write_reports
    from chaoslab.runner.signals import SignalWatch
    from chaoslab.settings import load_settings

    if threading.current_thread() is not threading.main_thread():
        raise ChaoslabError("chaoslab.run() must be called from the main thread: SIGINT/SIGTERM must "
                            "remove the active fault, and Chaos Toolkit installs signal handlers; "
                            "from other threads, run `chaoslab run` in a subprocess")
    settings = load_settings(overrides={"prometheus_url": prometheus, "reports_dir": reports,
                                        "kube_context": context})
    if isinstance(value, Experiment) and catalog is None and value.target is None and value.source:
        catalog = _catalog_beside(value.source)
    the_plan = value if isinstance(value, Plan) else to_plan(value, catalog=catalog)
    if isinstance(value, Experiment):
        the_plan = dataclasses.replace(the_plan, gameday=dataclasses.replace(
            the_plan.gameday, recovery_timeout_s=settings.recovery_timeout_s))
    from chaoslab.plan import check_safety

    check_safety(the_plan)  # a step its own safety rules refuse is bad input, before anything runs
    signals = SignalWatch()
    with signals.installed():
        result = execute(the_plan, settings=settings, target=target, rules=rules, events=events,
                         dry_run=dry_run, cleanup_orphans=cleanup_orphans, signals=signals,
                         notice=lambda message: logger.warning("%s", message), ports=ports)
    write_reports(result, junit=junit, secrets=(settings.prometheus_token,))
    return result
