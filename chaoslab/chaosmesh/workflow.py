"""Chaos Mesh Workflow and Schedule, pure: a planned game day → a ``Workflow`` (or a
``Schedule`` wrapping one) that runs the stages as ``chaoslab run`` would, guarded by
chaoslab's SLO gate (``chaoslab gate serve``).

The shape, for stages non-core then core::

    game-day (Serial)
      gate-non-core    StatusCheck, Synchronous: the stage starts only on a healthy system
      stage-non-core   (Parallel)
        watch-non-core StatusCheck, Continuous, for the stage's length
        steps-non-core (Serial): the steps in plan order (ramp levels in order)
      gate-core, stage-core ...

Every StatusCheck carries ``abortWithStatusCheck: true`` on its own template (Chaos Mesh
reads it nowhere else), checks every second and fails at the first failed answer
(``failureThreshold: 1``), instead of Chaos Mesh's 10 s × 3 defaults. Chaos templates
carry ``deadline`` (the step's duration) and no ``duration``, which the Workflow webhook
refuses. Steps refused by the game day's safety rules are left out.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chaoslab.chaosmesh.manifest import API_VERSION, build_manifest
from chaoslab.errors import InvalidInputError, PlanError
from chaoslab.model import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    ChaosKind,
    Plan,
    Stage,
    Step,
    format_seconds,
    parse_go_duration,
)

logger = logging.getLogger(__name__)

GAMEDAY_LABEL = "chaoslab.io/gameday"

# Chaos Mesh names a node `<template>-<5 random>` and puts that name in a label (at most
# 63 characters), so a template name may have 57. A Schedule names its Workflows the same
# way, and the Workflow's name is a label value too.
MAX_TEMPLATE_NAME = 57
MAX_OBJECT_NAME = 57

# The Continuous watch outlasts its steps by this margin, so that the last step is still
# watched while Chaos Mesh moves from one step to the next (a stage ends when both end).
WATCH_MARGIN_S = 10.0
WATCH_MARGIN_PER_STEP_S = 5.0

_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,\-]+$")
_CRON_DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_TEMPLATE_FIELD = {ChaosKind.NETWORK_CHAOS: "networkChaos", ChaosKind.POD_CHAOS: "podChaos"}


@dataclass(frozen=True, slots=True, kw_only=True)
class GateCheck:
    """How every StatusCheck calls the gate: one GET, judged by its status code only."""

    url: str
    interval_s: int = 1
    failure_threshold: int = 1
    timeout_s: int = 1


def build_workflow(plan: Plan, *, gate: GateCheck, namespace: str | None = None,
                   name: str | None = None) -> dict[str, Any]:
    """The ``Workflow`` object for ``plan`` (see the module docstring)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": _metadata(plan, namespace=namespace, name=name),
        "spec": workflow_spec(plan, gate=gate),
    }


def build_schedule(plan: Plan, *, gate: GateCheck, cron: str, namespace: str | None = None,
                   name: str | None = None, history_limit: int = 5) -> dict[str, Any]:
    """A ``Schedule`` that starts the game day's Workflow on ``cron``, never two at once."""
    check_cron(cron)
    return {
        "apiVersion": API_VERSION,
        "kind": "Schedule",
        "metadata": _metadata(plan, namespace=namespace, name=name),
        "spec": {
            "schedule": cron,
            "type": "Workflow",
            "concurrencyPolicy": "Forbid",
            "historyLimit": history_limit,
            "workflow": workflow_spec(plan, gate=gate),
        },
    }


def workflow_spec(plan: Plan, *, gate: GateCheck) -> dict[str, Any]:
    """``{entry, templates}``: what a Workflow's and a Schedule's ``workflow`` hold."""
    check_gate_url(gate.url)
    names = _Names()
    entry = names.take("game-day")
    templates: list[dict[str, Any]] = []
    children: list[str] = []
    for stage in plan.stages:
        steps = [s for s in stage.steps if s.refusal is None]
        if not steps:
            logger.info("stage %s: every step is refused by the safety rules", stage.tier.label)
            continue
        gate_name, stage_templates = _stage(stage, steps, gate=gate, names=names)
        children.extend([gate_name, stage_templates[1]["name"]])
        templates.extend(stage_templates)
    if not children:
        raise PlanError(f"every step of game day {plan.gameday.name} is refused by its safety rules")
    return {"entry": entry, "templates": [_serial(entry, children), *templates]}


def _stage(stage: Stage, steps: list[Step], *, gate: GateCheck, names: _Names
           ) -> tuple[str, list[dict[str, Any]]]:
    """The gate before a stage, and the stage: [gate, Parallel, watch, Serial, steps...]."""
    tier = stage.tier.label
    gate_name, stage_name = names.take(f"gate-{tier}"), names.take(f"stage-{tier}")
    watch_name, serial_name = names.take(f"watch-{tier}"), names.take(f"steps-{tier}")
    step_templates = [_chaos_template(step, names.take(step.name)) for step in steps]
    length = sum(parse_go_duration(step.fault.duration) for step in steps)
    watch_for = format_seconds(length + WATCH_MARGIN_S + WATCH_MARGIN_PER_STEP_S * len(steps))
    return gate_name, [
        _status_check(gate_name, gate, continuous_for=None),
        {"name": stage_name, "templateType": "Parallel", "children": [watch_name, serial_name]},
        _status_check(watch_name, gate, continuous_for=watch_for),
        _serial(serial_name, [t["name"] for t in step_templates]),
        *step_templates,
    ]


def _serial(name: str, children: list[str]) -> dict[str, Any]:
    return {"name": name, "templateType": "Serial", "children": children}


def _status_check(name: str, gate: GateCheck, *, continuous_for: str | None) -> dict[str, Any]:
    """A check of the gate. Continuous (``continuous_for`` set): runs that long, aborting at
    the first failure. Synchronous: one healthy answer passes, one failure aborts; it has
    no deadline, since a deadline that passed would let the Workflow go on unchecked."""
    check: dict[str, Any] = {
        "mode": "Continuous" if continuous_for else "Synchronous",
        "type": "HTTP",
        "intervalSeconds": gate.interval_s,
        "timeoutSeconds": gate.timeout_s,
        "failureThreshold": gate.failure_threshold,
        "http": {"url": gate.url, "method": "GET", "criteria": {"statusCode": "200"}},
    }
    template: dict[str, Any] = {"name": name, "templateType": "StatusCheck"}
    if continuous_for:
        check["duration"] = continuous_for
        template["deadline"] = continuous_for
    else:
        check["successThreshold"] = 1
    return {**template, "abortWithStatusCheck": True, "statusCheck": check}


def _chaos_template(step: Step, name: str) -> dict[str, Any]:
    """The step's fault as a chaos template: the manifest's spec (checked by the same rules
    as every manifest), without ``duration``, ending at ``deadline``."""
    manifest = build_manifest(name=name, service=step.service, fault=step.fault,
                              experiment=step.experiment.name, step=step.name)
    spec = {key: value for key, value in manifest["spec"].items() if key != "duration"}
    kind = step.fault.kind
    return {"name": name, "templateType": kind.value, "deadline": step.fault.duration,
            _TEMPLATE_FIELD[kind]: spec}


def _metadata(plan: Plan, *, namespace: str | None, name: str | None) -> dict[str, Any]:
    gameday = plan.gameday.name
    return {
        "name": name or dns_label(gameday, limit=MAX_OBJECT_NAME),
        "namespace": namespace or workflow_namespace(plan),
        "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, GAMEDAY_LABEL: dns_label(gameday)},
    }


def workflow_namespace(plan: Plan) -> str:
    """The namespace every runnable step's service lives in; a game day spanning several
    needs one named (a Workflow lives in one namespace, its faults select in others)."""
    found = sorted({s.service.namespace for s in plan.steps if s.refusal is None})
    if len(found) == 1:
        return found[0]
    if not found:
        raise PlanError(f"every step of game day {plan.gameday.name} is refused by its safety rules")
    raise InvalidInputError(plan.gameday.source, "--namespace",
                            f"the services span namespaces {', '.join(found)}; "
                            "name the Workflow's own with --namespace")


def check_gate_url(url: str) -> None:
    """What Chaos Mesh's webhook asks of a StatusCheck URL (``url.ParseRequestURI``), and
    an http(s) scheme with a host, which its HTTP check needs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise InvalidInputError(None, "--gate-url",
                                f"{url!r} is not an http(s) URL such as http://chaoslab-gate.chaoslab:8080/gate")


def check_cron(expr: str) -> None:
    """A cron expression Chaos Mesh's parser could accept: 5 fields, 6 with seconds, a
    descriptor (``@daily``), or ``@every <Go duration>``. Raises InvalidInputError."""
    text = expr.strip()
    if text.startswith("@every "):
        try:
            if parse_go_duration(text.removeprefix("@every ").strip()) > 0:
                return
        except ValueError:
            pass
    elif text in _CRON_DESCRIPTORS:
        return
    else:
        fields = text.split()
        if len(fields) in (5, 6) and all(_CRON_FIELD.match(f) for f in fields):
            return
    raise InvalidInputError(None, "--cron", f"{expr!r} is not a cron expression "
                            "(5 fields such as '0 9 * * 2', or @daily, or @every 24h)")


def dns_label(text: str, *, limit: int = 63) -> str:
    """``text`` as a DNS-1123 label of at most ``limit`` characters; a shortened or changed
    name keeps a hash of the original so that two names never fold into one."""
    base = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"
    if base == text and len(base) <= limit:
        return base
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    head = base[: limit - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}" if head else digest


class _Names:
    """Unique template names (DNS-1123 labels short enough for Chaos Mesh's node names)."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = set(taken)

    def take(self, wanted: str) -> str:
        name = dns_label(wanted, limit=MAX_TEMPLATE_NAME)
        candidate, n = name, 1
        while candidate in self._taken:
            n += 1
            suffix = f"-{n}"
            candidate = name[: MAX_TEMPLATE_NAME - len(suffix)].rstrip("-") + suffix
        self._taken.add(candidate)
        return candidate
