"""chaoslab: disciplined chaos experiments on Kubernetes.

The typed Python API. Values (``Experiment``, ``NetworkChaos``, ``GameDay``…) are
re-exported eagerly; functions that pull in YAML, HTTP or Chaos Toolkit are resolved
on first use, so that ``chaoslab --help`` stays fast (see ``_LAZY``)::

    from chaoslab import (NetworkChaos, NetworkAction, Mode, Delay, Experiment,
                          load_catalog, build_plan, experiment_gameday)

    catalog = load_catalog("experiments/catalog.yaml")
    fault = NetworkChaos(action=NetworkAction.DELAY, mode=Mode.ONE, duration="30s",
                         delay=Delay(latency="200ms"))
    plan = build_plan(experiment_gameday(Experiment(name="payment-delay", service="payment",
                                                    fault=fault), catalog))
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from chaoslab.errors import (
    BackendError,
    ChaoslabError,
    CleanupError,
    InvalidInputError,
    KubernetesError,
    PlanError,
    PrometheusError,
)
from chaoslab.model import (
    Bandwidth,
    Catalog,
    Corrupt,
    Delay,
    Direction,
    Duplicate,
    Experiment,
    GameDay,
    Gate,
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
    RunResult,
    Safety,
    Selector,
    Service,
    StepResult,
    Tier,
    Verdict,
    Window,
)

if TYPE_CHECKING:
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
    "BackendError",
    "Bandwidth",
    "Catalog",
    "ChaoslabError",
    "CleanupError",
    "Corrupt",
    "Delay",
    "Direction",
    "Duplicate",
    "Experiment",
    "GameDay",
    "Gate",
    "InvalidInputError",
    "KubernetesError",
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
    "PrometheusClient",
    "PrometheusError",
    "RampLevel",
    "RunResult",
    "Safety",
    "Selector",
    "Service",
    "Settings",
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
    "experiment_gameday",
    "load_any",
    "load_catalog",
    "load_experiment",
    "load_gameday",
    "load_rules",
    "load_settings",
    "plan_to_dict",
    "run_plan",
    "run_to_dict",
    "write_run",
]
