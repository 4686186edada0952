"""chaoslab: disciplined chaos experiments on Kubernetes.

The public API is re-exported here; there is no logic in this module.
"""

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
    Catalog,
    Experiment,
    GameDay,
    Mode,
    NetworkAction,
    NetworkChaos,
    Plan,
    PodAction,
    PodChaos,
    Selector,
    Service,
    Tier,
    Verdict,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "Catalog",
    "ChaoslabError",
    "CleanupError",
    "Experiment",
    "GameDay",
    "InvalidInputError",
    "KubernetesError",
    "Mode",
    "NetworkAction",
    "NetworkChaos",
    "Plan",
    "PlanError",
    "PodAction",
    "PodChaos",
    "PrometheusError",
    "Selector",
    "Service",
    "Tier",
    "Verdict",
    "__version__",
]
