"""Chaos Mesh manifests built from model objects: fields, labels and the rules that
chaostoolkit-kubernetes gets wrong."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaoslab.chaosmesh.manifest import API_VERSION, build_manifest, merge_selectors
from chaoslab.errors import InvalidInputError
from chaoslab.model import (
    Delay,
    Direction,
    ExpressionRequirement,
    Mode,
    NetworkAction,
    NetworkChaos,
    NetworkTarget,
    PodAction,
    PodChaos,
    Selector,
    Service,
    Tier,
)
from tests.support.chaos_cases import MODE_VALUES, PAYMENT, all_faults, network_faults, pod_faults

FAULTS = all_faults()
DELAY = NetworkChaos(action=NetworkAction.DELAY, mode=Mode.ONE, duration="30s", delay=Delay(latency="200ms"))


def _spec(fault: NetworkChaos | PodChaos) -> dict[str, object]:
    return build_manifest(name="n", service=PAYMENT, fault=fault, experiment="e")["spec"]


def test_manifest_identity_labels_and_namespace() -> None:
    doc = build_manifest(name="payment-delay", service=PAYMENT, fault=DELAY, experiment="payment-delay")
    assert doc["apiVersion"] == "chaos-mesh.org/v1alpha1" == API_VERSION
    assert doc["kind"] == "NetworkChaos"
    assert doc["metadata"] == {
        "name": "payment-delay",
        "namespace": "shop",
        "labels": {"app.kubernetes.io/managed-by": "chaoslab", "chaoslab.io/experiment": "payment-delay"},
    }


def test_run_id_and_step_labels_only_when_given() -> None:
    doc = build_manifest(name="s1", service=PAYMENT, fault=DELAY, experiment="e",
                         run_id="20261127T101500Z-3f2a", step="s1")
    labels = doc["metadata"]["labels"]
    assert labels["chaoslab.io/run-id"] == "20261127T101500Z-3f2a"
    assert labels["chaoslab.io/step"] == "s1"


@pytest.mark.parametrize("case", sorted(network_faults()))
def test_network_spec_carries_action_duration_direction(case: str) -> None:
    fault = network_faults()[case]
    spec = _spec(fault)
    assert spec["action"] == fault.action.value
    assert spec["duration"] == fault.duration
    assert spec["direction"] == fault.direction.value
    assert spec["selector"] == {"namespaces": ["shop"], "labelSelectors": {"app": "payment"}}
    assert ("target" in spec) == (fault.target is not None)
    assert ("externalTargets" in spec) == bool(fault.external_targets)


@pytest.mark.parametrize("case", sorted(pod_faults()))
def test_pod_spec_fields(case: str) -> None:
    fault = pod_faults()[case]
    spec = _spec(fault)
    assert spec["action"] == fault.action.value
    assert spec["duration"] == fault.duration
    assert spec.get("gracePeriod") == fault.grace_period
    assert spec.get("containerNames", []) == list(fault.container_names)
    assert not {"direction", "target", "externalTargets"} & set(spec)


@pytest.mark.parametrize(("mode", "value"), list(MODE_VALUES.items()), ids=[m.value for m in MODE_VALUES])
def test_value_is_a_string_exactly_when_the_mode_reads_it(mode: Mode, value: str | None) -> None:
    for fault in (replace(DELAY, mode=mode, value=value),
                  PodChaos(action=PodAction.POD_KILL, mode=mode, value=value, duration="5s")):
        spec = _spec(fault)
        assert spec["mode"] == mode.value
        if mode in (Mode.ONE, Mode.ALL):
            assert "value" not in spec
        else:
            assert spec["value"] == value
            assert isinstance(spec["value"], str)


def test_value_is_dropped_for_modes_that_ignore_it() -> None:
    assert "value" not in _spec(replace(DELAY, mode=Mode.ALL, value="50"))


@pytest.mark.parametrize("mode", [Mode.FIXED, Mode.FIXED_PERCENT, Mode.RANDOM_MAX_PERCENT])
def test_value_mode_without_value_is_refused(mode: Mode) -> None:
    with pytest.raises(InvalidInputError, match=f"mode {mode.value} needs a value"):
        _spec(replace(DELAY, mode=mode))


@pytest.mark.parametrize(("mode", "value"), [(Mode.ONE, None), (Mode.FIXED, "3")])
def test_target_value_follows_the_same_rule(mode: Mode, value: str | None) -> None:
    target = NetworkTarget(selector=Selector(label_selectors={"app": "db"}), mode=mode, value=value)
    spec = _spec(replace(DELAY, direction=Direction.FROM, target=target))
    expected = {"mode": mode.value, "selector": {"labelSelectors": {"app": "db"}}}
    if value is not None:
        expected["value"] = value
    assert spec["target"] == expected


def test_target_keeps_an_empty_selector_because_the_crd_requires_it() -> None:
    target = NetworkTarget(selector=Selector(), mode=Mode.ALL)
    assert _spec(replace(DELAY, direction=Direction.TO, target=target))["target"] == {
        "mode": "all", "selector": {}}


def test_bandwidth_is_spelt_right_with_all_fields() -> None:
    spec = _spec(FAULTS["bandwidth"])
    assert spec["action"] == "bandwidth"
    assert spec["bandwidth"] == {"rate": "1mbps", "limit": 100, "buffer": 10000,
                                 "peakrate": 1000000, "minburst": 1000000}
    assert _spec(FAULTS["bandwidth-minimal"])["bandwidth"] == {"rate": "10kbit", "limit": 1, "buffer": 1}


def test_delay_with_reorder_and_netem_merging_all_subspecs() -> None:
    assert _spec(FAULTS["delay"])["delay"] == {
        "latency": "200ms", "jitter": "50ms", "correlation": "25",
        "reorder": {"reorder": "10", "correlation": "5", "gap": 3},
    }
    netem = _spec(FAULTS["netem"])
    assert {"delay", "loss", "duplicate", "corrupt"} <= set(netem)
    assert netem["corrupt"] == {"corrupt": "3"}


def test_partition_has_no_subspec_and_devices_when_set() -> None:
    assert not {"delay", "loss", "bandwidth"} & set(_spec(FAULTS["partition"]))
    spec = _spec(FAULTS["delay-devices"])
    assert (spec["device"], spec["targetDevice"]) == ("eth0", "eth1")


def test_narrowing_selector_is_anded_with_the_service_selector() -> None:
    spec = _spec(FAULTS["narrowed-pod"])
    selector = spec["selector"]
    assert selector["namespaces"] == ["shop"]
    assert selector["labelSelectors"] == {"app": "payment", "version": "v2"}
    assert selector["expressionSelectors"] == [
        {"key": "track", "operator": "In", "values": ["canary"]},
        {"key": "legacy", "operator": "DoesNotExist"},
    ]
    assert selector["podPhaseSelectors"] == ["Running"]


def test_namespaces_always_the_services_own() -> None:
    fault = replace(DELAY, selector=Selector(namespaces=("kube-system",), label_selectors={"v": "1"}))
    assert _spec(fault)["selector"]["namespaces"] == ["shop"]


@pytest.mark.parametrize(
    ("narrow", "needle"),
    [
        (Selector(label_selectors={"app": "frontend"}), "labelSelectors.app"),
        (Selector(pod_phase_selectors=("Pending",)), "podPhaseSelectors"),
        (Selector(pods={"shop": ("frontend-0",)}), "pods"),
    ],
    ids=["relabel", "phase", "pods"],
)
def test_narrowing_that_would_retarget_is_refused(narrow: Selector, needle: str) -> None:
    service = replace(PAYMENT, selector=Selector(label_selectors={"app": "payment"},
                                                 pod_phase_selectors=("Running",)))
    with pytest.raises(InvalidInputError) as info:
        build_manifest(name="n", service=service, fault=replace(DELAY, selector=narrow), experiment="e")
    assert info.value.field == "selector"
    assert needle in info.value.reason


def test_service_pods_selector_is_kept() -> None:
    service = replace(PAYMENT, selector=Selector(pods={"shop": ("payment-0", "payment-1")}))
    spec = build_manifest(name="n", service=service, fault=DELAY, experiment="e")["spec"]
    assert spec["selector"] == {"namespaces": ["shop"], "pods": {"shop": ["payment-0", "payment-1"]}}


def test_expression_selectors_are_not_duplicated() -> None:
    req = ExpressionRequirement(key="track", operator="Exists")
    service = replace(PAYMENT, selector=Selector(expression_selectors=(req,)))
    assert merge_selectors(service, Selector(expression_selectors=(req,))).expression_selectors == (req,)


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        (NetworkChaos(action=NetworkAction.DELAY, mode=Mode.ONE, duration="5s"), "delay"),
        (NetworkChaos(action=NetworkAction.BANDWIDTH, mode=Mode.ONE, duration="5s"), "bandwidth"),
        (NetworkChaos(action=NetworkAction.NETEM, mode=Mode.ONE, duration="5s"), "netem"),
        (replace(DELAY, direction=Direction.FROM), "target"),
        (replace(DELAY, direction=Direction.BOTH, external_targets=("1.1.1.1",),
                 target=NetworkTarget(selector=Selector(), mode=Mode.ONE)), "externalTargets"),
        (PodChaos(action=PodAction.CONTAINER_KILL, mode=Mode.ONE, duration="5s"), "containerNames"),
        (NetworkChaos(action=NetworkAction.PARTITION, mode=Mode.ONE, duration="5s", direction=Direction.BOTH),
         "target"),
    ],
    ids=["delay-no-subspec", "bandwidth-no-subspec", "netem-empty", "from-no-target",
         "both-external", "container-kill-no-names", "partition-both-with-nothing"],
)
def test_faults_chaos_mesh_would_fail_at_run_time_are_refused(
    fault: NetworkChaos | PodChaos, field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        _spec(fault)
    assert info.value.field == field


@pytest.mark.parametrize(
    "fault",
    [
        NetworkChaos(action=NetworkAction.PARTITION, mode=Mode.ALL, duration="5s", direction=Direction.BOTH,
                     external_targets=("example.com:443",)),
        NetworkChaos(action=NetworkAction.PARTITION, mode=Mode.ONE, duration="5s", direction=Direction.FROM,
                     external_targets=("10.0.0.0/8",),
                     target=NetworkTarget(selector=Selector(label_selectors={"app": "db"}), mode=Mode.ALL)),
    ],
    ids=["both-external-only", "from-target-and-external"],
)
def test_partition_from_or_both_may_not_use_external_targets(fault: NetworkChaos) -> None:
    # The webhook skips partition; chaoslab holds it to the rule of every other action
    # (externalTargets only with direction to), in files and in Python alike.
    with pytest.raises(InvalidInputError) as info:
        _spec(fault)
    assert info.value.field.endswith("externalTargets")


def test_values_built_in_python_get_the_same_rules_as_files() -> None:
    """A fault built in Python skips the loader, but every manifest goes through its rules."""
    service = Service(name="payment", namespace="shop", tier=Tier.CORE,
                      selector=Selector(label_selectors={"app": "payment"}))
    bad_latency = NetworkChaos(action=NetworkAction.DELAY, mode=Mode.ONE, duration="30s",
                               delay=Delay(latency="200"))
    with pytest.raises(InvalidInputError, match=r"NetworkChaos/x: spec.delay.latency"):
        build_manifest(name="x", service=service, fault=bad_latency, experiment="x")
    everything = Service(name="payment", namespace="shop", tier=Tier.CORE, selector=Selector())
    ok = NetworkChaos(action=NetworkAction.DELAY, mode=Mode.ONE, duration="30s", delay=Delay(latency="200ms"))
    with pytest.raises(InvalidInputError, match="selects every pod in namespace shop"):
        build_manifest(name="x", service=everything, fault=ok, experiment="x")
