"""Every shape of fault chaoslab can emit, as model objects, and the upstream Chaos Mesh
CRD schemas to check them against.

The CRDs are read from ``../shared/chaos-mesh`` beside the repository; tests skip with
a clear reason when that directory is absent.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.model import (
    Bandwidth,
    Corrupt,
    Delay,
    Direction,
    Duplicate,
    ExpressionRequirement,
    Loss,
    Mode,
    NetworkAction,
    NetworkChaos,
    NetworkTarget,
    PodAction,
    PodChaos,
    Reorder,
    Selector,
    Service,
    Tier,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAOS_MESH_DIR = REPO_ROOT.parent / "shared" / "chaos-mesh"
CRD_DIR = CHAOS_MESH_DIR / "crds"
EXAMPLES_DIR = CHAOS_MESH_DIR / "examples"

PAYMENT = Service(
    name="payment", namespace="shop", tier=Tier.CORE,
    selector=Selector(label_selectors={"app": "payment"}), owner="team-payments",
)
# A service pinned to pods by name, with expression selectors: the other selector shape.
PINNED = Service(
    name="ledger", namespace="bank", tier=Tier.CORE,
    selector=Selector(pods={"bank": ("ledger-0", "ledger-1")},
                      expression_selectors=(ExpressionRequirement(key="tier", operator="NotIn",
                                                                  values=("batch",)),)),
)
RECOMMENDATION = Service(
    name="recommendation", namespace="shop", tier=Tier.NON_CORE,
    selector=Selector(label_selectors={"app": "recommendation"}),
)

# mode → the value each mode is exercised with (None: the mode ignores value)
MODE_VALUES: dict[Mode, str | None] = {
    Mode.ONE: None,
    Mode.ALL: None,
    Mode.FIXED: "2",
    Mode.FIXED_PERCENT: "50",
    Mode.RANDOM_MAX_PERCENT: "30",
}

DELAY = Delay(latency="200ms", jitter="50ms", correlation="25",
              reorder=Reorder(reorder="10", correlation="5", gap=3))
LOSS = Loss(loss="25", correlation="10")
DUPLICATE = Duplicate(duplicate="5", correlation="1")
CORRUPT = Corrupt(corrupt="3")
BANDWIDTH = Bandwidth(rate="1mbps", limit=100, buffer=10000, peakrate=1000000, minburst=1000000)
DB_TARGET = NetworkTarget(selector=Selector(namespaces=("shop",), label_selectors={"app": "cart"}),
                          mode=Mode.FIXED_PERCENT, value="50")

CART_TARGET = NetworkTarget(selector=Selector(label_selectors={"app": "cart"}), mode=Mode.ALL)

DB_FIXED_TARGET = NetworkTarget(selector=Selector(label_selectors={"app": "db"}), mode=Mode.FIXED, value="1")


def network_faults() -> dict[str, NetworkChaos]:
    """One NetworkChaos per action with its sub-spec(s), plus direction/target variants."""
    base = {"mode": Mode.ONE, "duration": "30s"}
    return {
        "netem": NetworkChaos(action=NetworkAction.NETEM, delay=Delay(latency="100ms"), loss=LOSS,
                              duplicate=DUPLICATE, corrupt=CORRUPT, **base),
        "delay": NetworkChaos(action=NetworkAction.DELAY, delay=DELAY, **base),
        "loss": NetworkChaos(action=NetworkAction.LOSS, loss=LOSS, **base),
        "duplicate": NetworkChaos(action=NetworkAction.DUPLICATE, duplicate=DUPLICATE, **base),
        "corrupt": NetworkChaos(action=NetworkAction.CORRUPT, corrupt=CORRUPT, **base),
        "partition": NetworkChaos(action=NetworkAction.PARTITION, direction=Direction.BOTH,
                                  target=DB_TARGET, **base),
        "bandwidth": NetworkChaos(action=NetworkAction.BANDWIDTH, bandwidth=BANDWIDTH, **base),
        "bandwidth-minimal": NetworkChaos(action=NetworkAction.BANDWIDTH,
                                          bandwidth=Bandwidth(rate="10kbit", limit=1, buffer=1), **base),
        "delay-to-target": NetworkChaos(action=NetworkAction.DELAY, delay=DELAY, direction=Direction.TO,
                                        target=DB_TARGET, **base),
        "delay-from-target": NetworkChaos(action=NetworkAction.DELAY, delay=DELAY, direction=Direction.FROM,
                                          target=CART_TARGET, **base),
        "loss-both-target": NetworkChaos(action=NetworkAction.LOSS, loss=LOSS, direction=Direction.BOTH,
                                         target=DB_FIXED_TARGET, **base),
        "delay-external": NetworkChaos(action=NetworkAction.DELAY, delay=DELAY,
                                       external_targets=("8.8.8.8", "10.0.0.0/8", "example.com"), **base),
        "partition-external": NetworkChaos(action=NetworkAction.PARTITION,
                                           external_targets=("payments.example.com",), **base),
        "delay-devices": NetworkChaos(action=NetworkAction.DELAY, delay=Delay(latency="1.5s"),
                                      device="eth0", target_device="eth1", direction=Direction.BOTH,
                                      target=DB_TARGET, **base),
    }


def pod_faults() -> dict[str, PodChaos]:
    return {
        "pod-kill": PodChaos(action=PodAction.POD_KILL, mode=Mode.ONE, duration="20s", grace_period=0),
        "pod-failure": PodChaos(action=PodAction.POD_FAILURE, mode=Mode.FIXED, value="1", duration="1m"),
        "container-kill": PodChaos(action=PodAction.CONTAINER_KILL, mode=Mode.ALL, duration="15s",
                                   container_names=("payment", "istio-proxy"), grace_period=5),
    }


def mode_faults() -> dict[str, NetworkChaos | PodChaos]:
    """Every mode on both kinds."""
    out: dict[str, NetworkChaos | PodChaos] = {}
    for mode, value in MODE_VALUES.items():
        out[f"network-{mode.value}"] = NetworkChaos(action=NetworkAction.LOSS, loss=LOSS, mode=mode,
                                                    value=value, duration="10s")
        out[f"pod-{mode.value}"] = PodChaos(action=PodAction.POD_KILL, mode=mode, value=value, duration="10s")
        out[f"target-{mode.value}"] = NetworkChaos(
            action=NetworkAction.PARTITION, mode=Mode.ONE, duration="10s", direction=Direction.FROM,
            target=NetworkTarget(selector=Selector(label_selectors={"app": "cart"}), mode=mode, value=value),
        )
    return out


def narrowed_faults() -> dict[str, NetworkChaos | PodChaos]:
    """Faults whose own selector narrows the service's: every selector field."""
    narrow = Selector(
        label_selectors={"version": "v2"},
        expression_selectors=(ExpressionRequirement(key="track", operator="In", values=("canary",)),
                              ExpressionRequirement(key="legacy", operator="DoesNotExist")),
        annotation_selectors={"chaos": "allowed"},
        field_selectors={"spec.nodeName": "node-1"},
        pod_phase_selectors=("Running",),
        nodes=("node-1",),
        node_selectors={"zone": "a"},
    )
    return {
        "narrowed-network": NetworkChaos(action=NetworkAction.DELAY, delay=Delay(latency="10ms"),
                                         mode=Mode.ALL, duration="5s", selector=narrow),
        "narrowed-pod": PodChaos(action=PodAction.POD_KILL, mode=Mode.ONE, duration="5s", selector=narrow),
    }


def all_faults() -> dict[str, NetworkChaos | PodChaos]:
    return {**network_faults(), **pod_faults(), **mode_faults(), **narrowed_faults()}


# --- CRD schemas -------------------------------------------------------------------


def require_chaos_mesh_dir() -> None:
    if not CRD_DIR.is_dir():
        pytest.skip(f"upstream Chaos Mesh CRDs not found at {CRD_DIR} (they live beside the repository)")


def _strict(node: Any) -> Any:
    """A copy where every object with declared properties forbids unknown ones.

    The API server prunes unknown fields of a structural schema silently, so a
    misspelt field would be dropped rather than rejected; refusing them here makes
    a typo (``externalTarget``) fail the conformance test."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def load_crd_schemas(*, strict: bool = True) -> dict[str, dict[str, Any]]:
    """kind → the openAPIV3Schema of its first served version."""
    require_chaos_mesh_dir()
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        schemas[crd["spec"]["names"]["kind"]] = _strict(schema) if strict else copy.deepcopy(schema)
    return schemas


def iter_nulls(node: Any, path: str = "") -> Iterator[str]:
    """Paths of every None in a document (a CRD field is never null in what we emit)."""
    if node is None:
        yield path or "<root>"
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from iter_nulls(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from iter_nulls(value, f"{path}[{i}]")


def _int_range(bits: int) -> Any:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(value: object) -> bool:
        return not isinstance(value, int) or low <= value <= high

    return check


def schema_errors(doc: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every way ``doc`` breaks its kind's CRD schema (Draft 7 validation; OpenAPI's
    ``format: int32/int64`` are checked as integer ranges)."""
    from jsonschema import Draft7Validator, FormatChecker

    kind = doc.get("kind")
    if kind not in schemas:
        return [f"kind {kind!r} has no CRD (known: {sorted(schemas)})"]
    checker = FormatChecker()
    checker.checks("int32")(_int_range(32))
    checker.checks("int64")(_int_range(64))
    validator = Draft7Validator(schemas[str(kind)], format_checker=checker)
    return [f"{'.'.join(str(p) for p in err.absolute_path) or '<root>'}: {err.message}"
            for err in validator.iter_errors(doc)]
