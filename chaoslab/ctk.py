"""Chaos Toolkit documents: an experiment on a service → a CTK experiment dict, and
reading back the journal a run writes.

The exported experiment is plain Chaos Toolkit: ``chaos run exported.json`` works
wherever chaoslab is installed. Its activities are chaoslab's python providers —
inject (the Chaos Mesh manifest is the argument), hold (interruptible), and a
rollback that removes the fault whatever happened (``runtime.rollbacks.strategy:
always``). chaoslab's own data rides in ``extensions``, as CTK intends.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from chaoslab.chaosmesh.manifest import build_manifest
from chaoslab.errors import InvalidInputError
from chaoslab.model import Experiment, NetworkChaos, Service

logger = logging.getLogger(__name__)

TARGETS = ("kubernetes", "sandbox")
# The python-provider module holding inject_fault/remove_fault, per target.
ACTIONS_MODULE = {"kubernetes": "chaoslab.chaosmesh.actions", "sandbox": "chaoslab.sandbox.actions",
                  "port": "chaoslab.runner.port_actions"}
# Inside a chaoslab run only: inject and remove through the run's own ChaosBackend (any
# implementation of the port, e.g. one a Python user brings). Not exportable: outside a run
# there is no backend to call.
PORT_TARGET = "port"
HOLD_MODULE = "chaoslab.halt"
PROMETHEUS_URL_ENV = "CHAOSLAB_PROMETHEUS_URL"
# When the export does not know the URL it is read from the environment at run time.
# chaoslib refuses to load an `env` entry without a default when the variable is unset,
# so the default is empty: the probes then report "not met: no Prometheus to ask"
# rather than asking some Prometheus that happens to listen on localhost.
DEFAULT_PROMETHEUS_URL = ""
INJECT_TIMEOUT_S = 30.0
REMOVE_TIMEOUT_S = 60.0
RUNTIME = {"rollbacks": {"strategy": "always"}, "hypothesis": {"strategy": "default"}}

Phase = Literal["before", "after", "during"]


def build_ctk_experiment(
    *,
    experiment: Experiment,
    service: Service,
    target: str = "kubernetes",
    prometheus_url: str | None = None,
    hypothesis: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    step_name: str | None = None,
    sandbox_dir: str | None = None,
    inject_timeout_s: float = INJECT_TIMEOUT_S,
    remove_timeout_s: float = REMOVE_TIMEOUT_S,
) -> dict[str, Any]:
    """A valid Chaos Toolkit experiment that injects ``experiment.fault`` into ``service``,
    holds it for its duration and always removes it.

    ``step_name`` names the Chaos Mesh object (a game day step); ``hypothesis`` is a
    CTK steady-state-hypothesis block (see chaoslab.prometheus.hypothesis)."""
    if target not in TARGETS and target != PORT_TARGET:
        raise InvalidInputError(None, "chaoslab_target", f"{target!r} is not one of {', '.join(TARGETS)}")
    fault = experiment.fault
    name = step_name or experiment.name
    manifest = build_manifest(
        name=name, service=service, fault=fault, experiment=experiment.name, step=step_name
    )
    doc: dict[str, Any] = {
        "title": f"chaoslab: {fault.kind.value} {fault.action.value} on {service.name} ({name})",
        "description": experiment.description
        or f"{fault.kind.value} {fault.action.value} on {service.namespace}/{service.name} "
        f"for {fault.duration}, removed afterwards whatever happens.",
        "tags": _tags(experiment, service),
        "configuration": _configuration(
            target=target, prometheus_url=prometheus_url, needs_prometheus=hypothesis is not None,
            run_id=run_id, sandbox_dir=sandbox_dir,
        ),
    }
    if hypothesis is not None:
        doc["steady-state-hypothesis"] = dict(hypothesis)
    doc["method"], doc["rollbacks"] = _activities(
        manifest, experiment=experiment, service=service, target=target,
        timeouts=(inject_timeout_s, remove_timeout_s),
    )
    doc["runtime"] = copy.deepcopy(RUNTIME)  # a fresh copy the caller may edit
    doc["extensions"] = [_extension(experiment, service, target=target, step_name=step_name)]
    logger.debug("built CTK experiment %s for target %s", name, target)
    return doc


def _activities(
    manifest: dict[str, Any], *, experiment: Experiment, service: Service, target: str,
    timeouts: tuple[float, float],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The method (inject, hold) and the rollbacks (remove)."""
    fault = experiment.fault
    module = ACTIONS_MODULE[target]
    kind = fault.kind.value
    method = [
        _python_action(f"inject-{kind.lower()}-{fault.action.value}", module, "inject_fault",
                       {"manifest": manifest, "timeout": timeouts[0]}),
        _python_action("hold-fault", HOLD_MODULE, "hold", {"duration": fault.duration}),
    ]
    remove = {"kind": kind, "namespace": service.namespace, "experiment": experiment.name,
              "timeout": timeouts[1]}
    rollbacks = [_python_action(f"remove-{kind.lower()}", module, "remove_fault", remove)]
    return method, rollbacks


def _tags(experiment: Experiment, service: Service) -> list[str]:
    fault = experiment.fault
    tags = ["chaoslab", service.tier.label, fault.kind.value, fault.action.value, *experiment.tags]
    return list(dict.fromkeys(t for t in tags if t))


def _configuration(
    *, target: str, prometheus_url: str | None, needs_prometheus: bool,
    run_id: str | None, sandbox_dir: str | None,
) -> dict[str, Any]:
    config: dict[str, Any] = {"chaoslab_target": target}
    if prometheus_url:
        config["prometheus_url"] = prometheus_url
    elif needs_prometheus:
        config["prometheus_url"] = {
            "type": "env", "key": PROMETHEUS_URL_ENV, "default": DEFAULT_PROMETHEUS_URL,
        }
    if run_id:
        config["chaoslab_run_id"] = run_id
    if sandbox_dir:
        config["chaoslab_sandbox_dir"] = sandbox_dir
    return config


def _python_action(name: str, module: str, func: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "action",
        "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": dict(arguments)},
    }


def _extension(
    experiment: Experiment, service: Service, *, target: str, step_name: str | None
) -> dict[str, Any]:
    fault = experiment.fault
    ext: dict[str, Any] = {
        "name": "chaoslab",
        "experiment": experiment.name,
        "service": service.name,
        "namespace": service.namespace,
        "tier": service.tier.label,
        "kind": fault.kind.value,
        "action": fault.action.value,
        "mode": fault.mode.value,
        "value": fault.value,
        "duration": fault.duration,
        "step": step_name,
        "target": target,
    }
    if isinstance(fault, NetworkChaos):
        ext["direction"] = fault.direction.value
    return ext


# --- journals ------------------------------------------------------------------


def read_journal(path: str | Path) -> dict[str, Any]:
    """A Chaos Toolkit journal file as a dict."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(path, "", f"cannot read journal: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(path, "", f"not JSON: {exc.msg}", line=exc.lineno) from exc
    if not isinstance(doc, dict) or "steady_states" not in doc:
        raise InvalidInputError(path, "steady_states", "missing: this is not a Chaos Toolkit journal")
    return doc


def steady_state_met(journal: Mapping[str, Any], phase: Phase) -> bool | None:
    """Whether the hypothesis held in ``phase``; None when it was not checked
    (no hypothesis, or the run ended before that phase). ``during`` holds only
    when every continuous check held."""
    states = journal.get("steady_states") or {}
    if phase == "during":
        during = [s for s in states.get("during") or [] if s is not None]
        if not during:
            return None
        return all(s.get("steady_state_met") is True for s in during)
    state = states.get(phase)
    if not isinstance(state, Mapping) or state.get("steady_state_met") is None:
        return None
    return bool(state["steady_state_met"])
