"""The plan, pure: a game day becomes ordered stages of steps, with safety refusals.

- Stages follow the tier order: non-core, then core; an empty stage is left out.
- Within a stage: the game day's experiments in ``spec.experiments`` order, then the
  matrix (catalog order of services × the matrix's fault order), each step named
  ``<service>-<fault>``.
- A ``blastRadius`` ramp turns each of those into one step per level, with the
  level's mode and value. The levels of one entry stay together, in ramp order, and
  are named ``<name>-r1``, ``<name>-r2``… (a one-level ramp keeps ``<name>``).
- Safety rules (``allowNamespaces``, ``maxPercent``, kube-system) do not remove a
  step: they set ``Step.refusal``. A game day whose own rules refuse one of its steps
  is invalid input (``check_safety``): the CLI refuses it before anything is injected.
  A matrix is the exception for namespaces: services outside ``allowNamespaces`` are
  left out of its expansion, and the plan says which (``Plan.excluded``).

Also the run window check and the plan's JSON form.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from chaoslab.errors import InvalidInputError, PlanError
from chaoslab.model import (
    Catalog,
    Direction,
    Experiment,
    Fault,
    GameDay,
    Mode,
    NetworkChaos,
    Plan,
    RampLevel,
    Safety,
    Service,
    Stage,
    Step,
    Tier,
    Window,
)
from chaoslab.scope import (
    DAYS,
    kube_system_refusal,
    matrix_services,
    narrow_service,
    ramp_suffix,
    resolve_service,
)

logger = logging.getLogger(__name__)


def selected_percent(fault: Fault) -> int | None:
    """The share of matched pods a fault's mode selects, or None when the mode counts pods
    (``one``, ``fixed``) rather than a percentage."""
    if fault.mode is Mode.ALL:
        return 100
    if fault.mode in (Mode.FIXED_PERCENT, Mode.RANDOM_MAX_PERCENT) and fault.value is not None:
        return int(fault.value)
    return None


def refusal(safety: Safety, service: Service, fault: Fault) -> str | None:
    """Why the game day's safety rules refuse ``fault`` on ``service``, or None."""
    if not safety.allow_kube_system:
        reason = kube_system_refusal(service, fault)
        if reason is not None:
            return f"{reason}; safety.allowKubeSystem is not set"
    allowed = safety.allow_namespaces
    if allowed and service.namespace not in allowed:
        return f"namespace {service.namespace} is not in safety.allowNamespaces ({', '.join(allowed)})"
    if allowed and isinstance(fault, NetworkChaos) and fault.target is not None \
            and fault.direction is not Direction.TO:
        outside = [ns for ns in fault.target.selector.namespaces if ns not in allowed]
        if outside:
            return (f"direction {fault.direction.value} injects into target namespace {outside[0]}, "
                    f"which is not in safety.allowNamespaces ({', '.join(allowed)})")
    percent = selected_percent(fault)
    if safety.max_percent is not None and percent is not None and percent > safety.max_percent:
        return (f"mode {fault.mode.value} selects up to {percent}% of the pods, "
                f"over safety.maxPercent {safety.max_percent}%")
    return None


def _ramp(
    gameday: GameDay, name: str, experiment: Experiment, service: Service
) -> Iterator[Step]:
    levels: tuple[RampLevel | None, ...] = gameday.blast_radius or (None,)
    for index, level in enumerate(levels):
        exp = experiment
        if level is not None:
            exp = dataclasses.replace(
                experiment, fault=dataclasses.replace(experiment.fault, mode=level.mode, value=level.value)
            )
        yield Step(
            name=name + ramp_suffix(len(levels), index),
            experiment=exp,
            service=service,
            level=index,
            refusal=refusal(gameday.safety, service, exp.fault),
        )


def _outside(gameday: GameDay, service: Service) -> str | None:
    """Why a matrix leaves ``service`` out: its namespace is not allowed."""
    allowed = gameday.safety.allow_namespaces
    if not allowed or service.namespace in allowed:
        return None
    return (f"{service.name}: namespace {service.namespace} is not in safety.allowNamespaces "
            f"({', '.join(allowed)})")


def _excluded(gameday: GameDay) -> tuple[str, ...]:
    if gameday.matrix is None:
        return ()
    found = (_outside(gameday, s) for s in matrix_services(gameday.matrix, gameday.catalog))
    return tuple(reason for reason in found if reason is not None)


def _matrix_steps(gameday: GameDay) -> Iterator[Step]:
    if gameday.matrix is None:
        return
    for service in matrix_services(gameday.matrix, gameday.catalog):
        if _outside(gameday, service) is not None:
            continue
        for entry in gameday.matrix.faults:
            name = f"{service.name}-{entry.name}"
            experiment = Experiment(
                name=name,
                fault=entry.fault,
                service=service.name,
                description=f"{entry.name} on {service.name} (matrix)",
                tags=("matrix",),
                source=gameday.source,
            )
            try:
                narrowed = narrow_service(service, entry.fault.selector)
            except ValueError as exc:  # only for game days built in code: the loader checks this
                raise PlanError(f"matrix fault {entry.name} on service {service.name}: {exc}") from exc
            yield from _ramp(gameday, name, experiment, narrowed)


def build_plan(gameday: GameDay) -> Plan:
    """The ordered stages and steps of a game day (see the module docstring)."""
    by_tier: dict[Tier, list[Step]] = {tier: [] for tier in Tier}
    for experiment in gameday.experiments:
        service = resolve_service(experiment, gameday.catalog)
        for step in _ramp(gameday, experiment.name, experiment, service):
            by_tier[service.tier].append(step)
    for step in _matrix_steps(gameday):
        by_tier[step.service.tier].append(step)
    stages = tuple(Stage(tier=tier, steps=tuple(steps)) for tier, steps in sorted(by_tier.items()) if steps)
    logger.info("plan %s: %d stages, %d steps", gameday.name, len(stages), sum(len(s.steps) for s in stages))
    return Plan(gameday=gameday, stages=stages, excluded=_excluded(gameday))


def check_safety(plan: Plan) -> None:
    """Raise InvalidInputError for the first step the game day's own safety rules refuse,
    naming the step, the field that asks for it and the rule: a game day that cannot run
    what it names must not pass (a CI job would pass without running the experiment)."""
    gameday = plan.gameday
    for step in plan.steps:
        if step.refusal is not None:
            raise InvalidInputError(
                gameday.source, _asking_field(gameday, step),
                f"step {step.name}{_file(gameday, step)} is refused by the game day's safety rules: "
                f"{step.refusal}",
            )


def _file(gameday: GameDay, step: Step) -> str:
    source = step.experiment.source
    if source is None or source == gameday.source or "matrix" in step.experiment.tags:
        return ""
    if gameday.source is not None and source.is_relative_to(gameday.source.parent):
        source = source.relative_to(gameday.source.parent)
    return f" ({source})"


def _asking_field(gameday: GameDay, step: Step) -> str:
    """The field of ``gameday`` that asks for ``step``."""
    if gameday.blast_radius and "safety.maxPercent" in (step.refusal or ""):
        return f"spec.blastRadius[{step.level}]"
    if "matrix" in step.experiment.tags and gameday.matrix is not None:
        for index, entry in enumerate(gameday.matrix.faults):
            if step.experiment.name == f"{step.service.name}-{entry.name}":
                return f"spec.matrix.faults[{index}]"
    if len(gameday.experiments) == 1 and gameday.experiments[0].source == gameday.source:
        return "spec.fault"  # a lone experiment run as a game day of its own
    return "spec.experiments"  # a glob may name it: the step and its file say which


def experiment_gameday(experiment: Experiment, catalog: Catalog | None) -> GameDay:
    """A one-experiment game day, so a single experiment can be planned and run alike."""
    return GameDay(
        name=experiment.name,
        catalog=catalog if catalog is not None else Catalog(name="inline", services=()),
        experiments=(experiment,),
        rules=experiment.rules,
        description=experiment.description,
        source=experiment.source,
    )


def window_allows(window: Window | None, now: datetime) -> tuple[bool, str]:
    """Whether ``now`` (timezone-aware) is inside the run window, and a sentence saying so.

    The window is ``[from, to)`` in its time zone on the listed days. When ``from`` is
    later than ``to`` the window runs overnight, and its day is the day it starts."""
    if window is None:
        return True, "no run window: any time"
    if now.tzinfo is None:
        raise ValueError("window_allows needs a timezone-aware datetime")
    local = now.astimezone(ZoneInfo(window.timezone))
    today = DAYS[local.weekday()]
    clock = local.time().replace(tzinfo=None)
    if window.start < window.end:
        inside = today in window.days and window.start <= clock < window.end
    else:
        yesterday = DAYS[(local.weekday() - 1) % 7]
        inside = (today in window.days and clock >= window.start) or (
            yesterday in window.days and clock < window.end
        )
    described = (f"{','.join(window.days)} {window.start:%H:%M}-{window.end:%H:%M} {window.timezone}")
    where = "inside" if inside else "outside"
    return inside, f"{where} the run window {described} (now {today} {clock:%H:%M})"


def step_to_dict(step: Step) -> dict[str, Any]:
    fault = step.fault
    return {
        "experiment": step.experiment.name,
        "service": step.service.name,
        "namespace": step.service.namespace,
        "kind": fault.kind.value,
        "action": fault.action.value,
        "mode": fault.mode.value,
        "value": fault.value,
        "duration": fault.duration,
        "step": step.name,
        "level": step.level,
        "refused": step.refusal,
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan's JSON form: ``{"gameday", "stages": [{"tier", "steps": [...]}], "excluded"}``."""
    return {
        "gameday": plan.gameday.name,
        "stages": [
            {"tier": stage.tier.label, "steps": [step_to_dict(step) for step in stage.steps]}
            for stage in plan.stages
        ],
        "excluded": list(plan.excluded),
    }
