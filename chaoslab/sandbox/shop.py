"""The shop's topology: services, tiers, who calls whom, and the defaults.

This is a contract shared with ``experiments/catalog.yaml``: the names, tiers
and ``app=<name>`` labels must match. Per-run overrides come from a
``kind: Sandbox`` file (see ``chaoslab.sandbox.config``).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaoslab.model import Tier

NAMESPACE = "shop"
APP_LABEL = "app"


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    """A downstream call. ``fallback``: a failure is absorbed, not passed on."""

    service: str
    fallback: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSpec:
    """One service of the shop.

    ``retries``: extra attempts this service makes on a failed downstream call.
    ``timeout_s``: how long a caller waits for one attempt on *this* service.
    """

    name: str
    tier: Tier
    calls: tuple[Dependency, ...] = ()
    replicas: int = 2
    retries: int = 0
    timeout_s: float = 1.0

    @property
    def labels(self) -> dict[str, str]:
        return {APP_LABEL: self.name}


SHOP: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="frontend",
        tier=Tier.CORE,
        calls=(
            Dependency(service="catalog"),
            Dependency(service="recommendation", fallback=True),
            Dependency(service="cart"),
        ),
        timeout_s=3.0,
    ),
    ServiceSpec(name="catalog", tier=Tier.NON_CORE, timeout_s=1.0),
    ServiceSpec(name="recommendation", tier=Tier.NON_CORE, timeout_s=0.3),
    # Cart's budget covers up to three payment attempts.
    ServiceSpec(name="cart", tier=Tier.CORE, calls=(Dependency(service="payment"),), timeout_s=2.0),
    # The built-in weakness: a single payment replica and no retry in cart.
    ServiceSpec(name="payment", tier=Tier.CORE, replicas=1, timeout_s=0.5),
)

SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SHOP)
ENTRY_SERVICE = "frontend"


def shop_service(name: str) -> ServiceSpec:
    for spec in SHOP:
        if spec.name == name:
            return spec
    raise KeyError(name)
