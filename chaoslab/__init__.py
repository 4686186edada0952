"""chaoslab: disciplined chaos experiments on Kubernetes.

The typed Python API (docs/python-api.md). Values (``Experiment``, ``NetworkChaos``,
``GameDay``…) and errors are re-exported eagerly; functions that pull in YAML, HTTP or
Chaos Toolkit are resolved on first use, so that ``chaoslab --help`` stays fast (see
``_LAZY``)::

    import chaoslab

    catalog = chaoslab.load("experiments/catalog.yaml")
    delay = chaoslab.network_delay(latency="200ms", mode="one", duration="30s")
    kill = chaoslab.pod_kill(mode="one", duration="20s")
    day = chaoslab.GameDay(name="weekly", catalog=catalog,
                           matrix=chaoslab.matrix({"delay": delay, "kill": kill},
                                                  services=chaoslab.Tier.NON_CORE))
    plan = chaoslab.to_plan(day)
"""

from __future__ import annotations

import gc as _gc
from importlib import import_module
from typing import TYPE_CHECKING, Any

# The model's classes live as long as the process: the cyclic collector, run some ten times
# while they are made, has nothing to find in them. It is paused for these imports only.
_collecting = _gc.isenabled()
_gc.disable()
try:
    from chaoslab.errors import (
        AlertmanagerError,
        BackendError,
        ChaoslabError,
        CleanupError,
        InjectionError,
        InvalidInputError,
        KubernetesError,
        LedgerError,
        PlanError,
        PreflightError,
        PrometheusError,
    )
    from chaoslab.model import (
        AlertRule,
        Bandwidth,
        Catalog,
        ChaosKind,
        Corrupt,
        Delay,
        Direction,
        Duplicate,
        Experiment,
        ExpressionRequirement,
        FaultHandle,
        GameDay,
        Gate,
        HaltRecord,
        HypothesisCheck,
        Loss,
        Matrix,
        MatrixFault,
        Mode,
        NetworkAction,
        NetworkChaos,
        NetworkTarget,
        Plan,
        PodAction,
        PodChaos,
        RampLevel,
        Reorder,
        RunResult,
        Safety,
        Selector,
        Service,
        Stage,
        Step,
        StepResult,
        Tier,
        Verdict,
        Window,
    )
finally:
    if _collecting:
        _gc.enable()

if TYPE_CHECKING:
    from chaoslab.app.api import (
        cleanup,
        dump,
        hypothesis,
        load,
        run,
        save,
        to_chaos_mesh,
        to_chaostoolkit,
        to_plan,
        validate,
    )
    from chaoslab.app.build import (
        catalog,
        container_kill,
        cross,
        experiment,
        matrix,
        network_delay,
        network_loss,
        network_partition,
        pod_failure,
        pod_kill,
        service,
    )
    from chaoslab.chaosmesh.manifest import build_manifest
    from chaoslab.ctk import build_ctk_experiment
    from chaoslab.loader import load_any, load_catalog, load_experiment, load_gameday
    from chaoslab.plan import build_plan, experiment_gameday, plan_to_dict
    from chaoslab.prometheus.client import PrometheusClient
    from chaoslab.prometheus.hypothesis import bind_alerts, build_hypothesis
    from chaoslab.prometheus.rules import load_rules
    from chaoslab.report.record import run_to_dict, write_run
    from chaoslab.runner import run_plan
    from chaoslab.settings import Settings, load_settings

__version__ = "0.1.0"

# name → module; imported on first attribute access (PEP 562).
_LAZY = {
    **dict.fromkeys(("cleanup", "dump", "hypothesis", "load", "run", "save", "to_chaos_mesh",
                     "to_chaostoolkit", "to_plan", "validate"), "chaoslab.app.api"),
    **dict.fromkeys(("catalog", "container_kill", "cross", "experiment", "matrix", "network_delay",
                     "network_loss", "network_partition", "pod_failure", "pod_kill", "service"),
                    "chaoslab.app.build"),
    "build_manifest": "chaoslab.chaosmesh.manifest",
    "build_ctk_experiment": "chaoslab.ctk",
    "load_any": "chaoslab.loader",
    "load_catalog": "chaoslab.loader",
    "load_experiment": "chaoslab.loader",
    "load_gameday": "chaoslab.loader",
    "build_plan": "chaoslab.plan",
    "experiment_gameday": "chaoslab.plan",
    "plan_to_dict": "chaoslab.plan",
    "PrometheusClient": "chaoslab.prometheus.client",
    "bind_alerts": "chaoslab.prometheus.hypothesis",
    "build_hypothesis": "chaoslab.prometheus.hypothesis",
    "load_rules": "chaoslab.prometheus.rules",
    "run_to_dict": "chaoslab.report.record",
    "write_run": "chaoslab.report.record",
    "run_plan": "chaoslab.runner",
    "Settings": "chaoslab.settings",
    "load_settings": "chaoslab.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'chaoslab' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AlertRule",
    "AlertmanagerError",
    "BackendError",
    "Bandwidth",
    "Catalog",
    "ChaosKind",
    "ChaoslabError",
    "CleanupError",
    "Corrupt",
    "Delay",
    "Direction",
    "Duplicate",
    "Experiment",
    "ExpressionRequirement",
    "FaultHandle",
    "GameDay",
    "Gate",
    "HaltRecord",
    "HypothesisCheck",
    "InjectionError",
    "InvalidInputError",
    "KubernetesError",
    "LedgerError",
    "Loss",
    "Matrix",
    "MatrixFault",
    "Mode",
    "NetworkAction",
    "NetworkChaos",
    "NetworkTarget",
    "Plan",
    "PlanError",
    "PodAction",
    "PodChaos",
    "PreflightError",
    "PrometheusClient",
    "PrometheusError",
    "RampLevel",
    "Reorder",
    "RunResult",
    "Safety",
    "Selector",
    "Service",
    "Settings",
    "Stage",
    "Step",
    "StepResult",
    "Tier",
    "Verdict",
    "Window",
    "__version__",
    "bind_alerts",
    "build_ctk_experiment",
    "build_hypothesis",
    "build_manifest",
    "build_plan",
    "catalog",
    "cleanup",
    "container_kill",
    "cross",
    "dump",
    "experiment",
    "experiment_gameday",
    "hypothesis",
    "load",
    "load_any",
    "load_catalog",
    "load_experiment",
    "load_gameday",
    "load_rules",
    "load_settings",
    "matrix",
    "network_delay",
    "network_loss",
    "network_partition",
    "plan_to_dict",
    "pod_failure",
    "pod_kill",
    "run",
    "run_plan",
    "run_to_dict",
    "save",
    "service",
    "to_chaos_mesh",
    "to_chaostoolkit",
    "to_plan",
    "validate",
    "write_run",
]
