"""Fault blocks through `chaoslab validate`: every action, mode and direction is
accepted, and every Chaos Mesh CRD / webhook rule and chaoslab safety rule rejects
bad input with exit 2, naming the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaoslab.errors import InvalidInputError
from chaoslab.loader import load_experiment, parse_fault
from chaoslab.model import Direction, Mode, NetworkAction, NetworkChaos, PodAction, PodChaos
from tests.support.files import assert_rejected, experiment_doc, network, pod, run_cli, shop, write

NC = "spec.fault.networkChaos"
PC = "spec.fault.podChaos"
TARGET = {"selector": {"labelSelectors": {"app": "cart"}}, "mode": "all"}

VALID_FAULTS: list[tuple[str, dict[str, Any]]] = [
    (
        "netem",
        network(
            action="netem",
            delay={"latency": "90ms", "jitter": "10ms", "correlation": "25"},
            loss={"loss": "5", "correlation": "25"},
        ),
    ),
    ("delay", network(action="delay", delay={"latency": "1.5s", "reorder": {"reorder": "10", "gap": 5}})),
    ("loss", network(action="loss", delay=None, loss={"loss": 25})),
    ("duplicate", network(action="duplicate", delay=None, duplicate={"duplicate": "40", "correlation": "0"})),
    ("corrupt", network(action="corrupt", delay=None, corrupt={"corrupt": "0.5"})),
    ("partition", network(action="partition", delay=None, direction="both", target=TARGET)),
    (
        "bandwidth",
        network(
            action="bandwidth",
            delay=None,
            bandwidth={
                "rate": "1mbps",
                "limit": 20971520,
                "buffer": 10000,
                "peakrate": 1000000,
                "minburst": 1000000,
            },
        ),
    ),
    (
        "bandwidth-bits",
        network(action="bandwidth", delay=None, bandwidth={"rate": "100KBit", "limit": 1, "buffer": 1}),
    ),
    ("pod-kill", pod(action="pod-kill", gracePeriod=0)),
    ("pod-failure", pod(action="pod-failure", duration="30s")),
    ("container-kill", pod(action="container-kill", containerNames=["app", "sidecar"])),
    ("mode-one", network(mode="one")),
    ("mode-all", network(mode="all")),
    ("mode-fixed", network(mode="fixed", value="2")),
    ("mode-fixed-number", pod(mode="fixed", value=3)),
    ("mode-fixed-percent", pod(mode="fixed-percent", value="50")),
    ("mode-random-max-percent", network(mode="random-max-percent", value=100)),
    ("direction-to", network(direction="to")),
    ("direction-to-target", network(direction="to", target=TARGET)),
    ("direction-from", network(direction="from", target={**TARGET, "mode": "fixed", "value": "1"})),
    (
        "direction-both",
        network(direction="both",
                target={"selector": {"namespaces": ["db"], "labelSelectors": {"app": "db"}}, "mode": "one"}),
    ),
    (
        "external-targets",
        network(externalTargets=["8.8.8.8", "www.example.com", "10.0.0.0/8:22", "1.1.1.1:80"]),
    ),
    (
        "narrowing-selector",
        network(
            selector={
                "labelSelectors": {"version": "v2"},
                "expressionSelectors": [{"key": "track", "operator": "Exists"}],
                "podPhaseSelectors": ["Running"],
            }
        ),
    ),
    ("devices", network(device="eth0", targetDevice="eth1", target=TARGET)),
    # With direction `to` the target pods are only a destination: any target selector will do.
    ("to-target-whole-namespace", network(target={"selector": {}, "mode": "all"})),
]


@pytest.mark.parametrize(("name", "fault"), VALID_FAULTS, ids=[v[0] for v in VALID_FAULTS])
def test_every_action_mode_and_direction_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, fault: dict[str, Any]
) -> None:
    path = write(shop(tmp_path) / "exp" / f"{name}.yaml", experiment_doc(name, fault=fault))
    code, out, err = run_cli(capsys, "validate", path)
    assert (code, err) == (0, "")
    assert out == f"ok  {path} (Experiment {name})\n"


BAD_FAULTS: list[tuple[str, dict[str, Any], str, str]] = [
    # fault block
    ("no-kind", {}, "spec.fault", "exactly one of networkChaos, podChaos"),
    ("both-kinds", {**network(), **pod()}, "spec.fault", "got both"),
    (
        "kind-typo",
        {"networkchaos": network()["networkChaos"]},
        "spec.fault.networkchaos",
        "did you mean 'networkChaos'",
    ),
    # action
    ("action-missing", network(action=None), f"{NC}.action", "is required"),
    ("action-typo", network(action="delayy"), f"{NC}.action", "did you mean 'delay'"),
    ("pod-action-typo", pod(action="pod-kil"), f"{PC}.action", "did you mean 'pod-kill'"),
    # modes
    ("mode-missing", network(mode=None), f"{NC}.mode", "is required"),
    ("mode-unknown", network(mode="some"), f"{NC}.mode", "must be one of one, all, fixed"),
    ("fixed-no-value", network(mode="fixed"), f"{NC}.value", "is required with mode fixed"),
    ("fixed-zero", network(mode="fixed", value="0"), f"{NC}.value", "whole number of pods ≥ 1"),
    ("fixed-text", pod(mode="fixed", value="two"), f"{PC}.value", "whole number of pods ≥ 1"),
    # str.isdigit() takes these; Go's Atoi (the webhook) does not, and int() crashed on '²'.
    ("fixed-superscript", pod(mode="fixed", value="²"), f"{PC}.value", "whole number of pods ≥ 1"),
    ("fixed-arabic-indic", pod(mode="fixed", value="١"), f"{PC}.value", "whole number of pods ≥ 1"),
    ("fixed-over-int64", pod(mode="fixed", value=str(2**63)), f"{PC}.value", "whole number of pods ≥ 1"),
    ("percent-superscript", pod(mode="random-max-percent", value="⁵"), f"{PC}.value", "(0, 100]"),
    ("fixed-bool", pod(mode="fixed", value=True), f"{PC}.value", "must be a string"),
    # Chaos Mesh ignores value for one/all: "all 50" would hit every pod, not half.
    ("all-with-value", pod(mode="all", value="50"), f"{PC}.value", "takes no value"),
    ("one-with-value", pod(mode="one", value="1"), f"{PC}.value", "takes no value"),
    ("percent-no-value", pod(mode="fixed-percent"), f"{PC}.value", "is required with mode fixed-percent"),
    ("percent-zero", network(mode="fixed-percent", value="0"), f"{NC}.value", "(0, 100]"),
    ("percent-over", network(mode="fixed-percent", value=101), f"{NC}.value", "(0, 100]"),
    (
        "random-percent-fraction",
        pod(mode="random-max-percent", value="50.5"),
        f"{PC}.value",
        "whole percentage",
    ),
    # duration
    ("duration-missing", network(duration=None), f"{NC}.duration", "never runs a fault without an end"),
    ("pod-duration-missing", pod(duration=None), f"{PC}.duration", "is required"),
    ("duration-not-go", network(duration="20 seconds"), f"{NC}.duration", "not a Go duration"),
    ("duration-number", pod(duration=20), f"{PC}.duration", "Go duration"),
    ("duration-zero", network(duration="0s"), f"{NC}.duration", "longer than zero"),
    # the sub-spec each action needs
    ("delay-without-delay", network(delay=None), f"{NC}.delay", "is required with action delay"),
    ("loss-without-loss", network(action="loss", delay=None), f"{NC}.loss", "is required with action loss"),
    ("duplicate-without", network(action="duplicate", delay=None), f"{NC}.duplicate", "is required"),
    ("corrupt-without", network(action="corrupt", delay=None), f"{NC}.corrupt", "is required"),
    ("bandwidth-without", network(action="bandwidth", delay=None), f"{NC}.bandwidth", "is required"),
    ("netem-without-any", network(action="netem", delay=None), f"{NC}.action", "netem needs at least one"),
    (
        "netem-with-bandwidth",
        network(action="netem", bandwidth={"rate": "1mbps", "limit": 1, "buffer": 1}),
        f"{NC}.bandwidth",
        "is set but action is netem",
    ),
    ("delay-with-loss", network(loss={"loss": "5"}), f"{NC}.loss", "is set but action is delay"),
    ("partition-with-delay", network(action="partition"), f"{NC}.delay", "is set but action is partition"),
    # delay
    ("latency-missing", network(delay={"jitter": "5ms"}), f"{NC}.delay.latency", "is required"),
    ("latency-no-unit", network(delay={"latency": "200"}), f"{NC}.delay.latency", "one unit"),
    ("latency-two-units", network(delay={"latency": "1s500ms"}), f"{NC}.delay.latency", "one unit"),
    ("latency-number", network(delay={"latency": 200}), f"{NC}.delay.latency", "one unit"),
    ("jitter-bad", network(delay={"latency": "10ms", "jitter": "fast"}), f"{NC}.delay.jitter", "one unit"),
    (
        "delay-correlation-over",
        network(delay={"latency": "10ms", "correlation": "101"}),
        f"{NC}.delay.correlation",
        "percentage",
    ),
    (
        "reorder-no-gap",
        network(delay={"latency": "10ms", "reorder": {"reorder": "5"}}),
        f"{NC}.delay.reorder.gap",
        "is required",
    ),
    (
        "reorder-bad",
        network(delay={"latency": "10ms", "reorder": {"reorder": "x", "gap": 1}}),
        f"{NC}.delay.reorder.reorder",
        "percentage",
    ),
    # percentages
    ("loss-over", network(action="loss", delay=None, loss={"loss": "150"}), f"{NC}.loss.loss", "percentage"),
    ("loss-text", network(action="loss", delay=None, loss={"loss": "abc"}), f"{NC}.loss.loss", "percentage"),
    (
        "loss-correlation",
        network(action="loss", delay=None, loss={"loss": "5", "correlation": "-1"}),
        f"{NC}.loss.correlation",
        "percentage",
    ),
    (
        "duplicate-negative",
        network(action="duplicate", delay=None, duplicate={"duplicate": "-1"}),
        f"{NC}.duplicate.duplicate",
        "percentage",
    ),
    (
        "corrupt-text",
        network(action="corrupt", delay=None, corrupt={"corrupt": "lots"}),
        f"{NC}.corrupt.corrupt",
        "percentage",
    ),
    # bandwidth
    (
        "rate-no-unit",
        network(action="bandwidth", delay=None, bandwidth={"rate": "100", "limit": 1, "buffer": 1}),
        f"{NC}.bandwidth.rate",
        "a unit",
    ),
    (
        "rate-bad-unit",
        network(action="bandwidth", delay=None, bandwidth={"rate": "100mbytes", "limit": 1, "buffer": 1}),
        f"{NC}.bandwidth.rate",
        "a unit",
    ),
    (
        "rate-zero",
        network(action="bandwidth", delay=None, bandwidth={"rate": "0kbps", "limit": 1, "buffer": 1}),
        f"{NC}.bandwidth.rate",
        "more than zero",
    ),
    (
        "limit-zero",
        network(action="bandwidth", delay=None, bandwidth={"rate": "1mbps", "limit": 0, "buffer": 1}),
        f"{NC}.bandwidth.limit",
        "at least 1",
    ),
    (
        "buffer-zero",
        network(action="bandwidth", delay=None, bandwidth={"rate": "1mbps", "limit": 1, "buffer": 0}),
        f"{NC}.bandwidth.buffer",
        "at least 1",
    ),
    (
        "limit-missing",
        network(action="bandwidth", delay=None, bandwidth={"rate": "1mbps", "buffer": 1}),
        f"{NC}.bandwidth.limit",
        "is required",
    ),
    # direction and target
    ("direction-unknown", network(direction="sideways"), f"{NC}.direction", "must be one of to, from, both"),
    ("from-without-target", network(direction="from"), f"{NC}.direction", "needs target"),
    ("both-without-target", network(direction="both"), f"{NC}.direction", "needs target"),
    (
        "both-with-external",
        network(direction="both", target=TARGET, externalTargets=["8.8.8.8"]),
        f"{NC}.externalTargets",
        "cannot be used with direction both",
    ),
    (
        "from-with-external",
        network(direction="from", target=TARGET, externalTargets=["8.8.8.8"]),
        f"{NC}.externalTargets",
        "cannot be used with direction from",
    ),
    (
        "partition-both-nothing",
        network(action="partition", delay=None, direction="both"),
        f"{NC}.direction",
        "needs target",
    ),
    (
        "partition-both-with-external",
        network(action="partition", delay=None, direction="both", externalTargets=["example.com:443"]),
        f"{NC}.externalTargets",
        "cannot be used with direction both",
    ),
    (
        "partition-from-with-external",
        network(action="partition", delay=None, direction="from", target=TARGET, externalTargets=["1.2.3.4"]),
        f"{NC}.externalTargets",
        "cannot be used with direction from",
    ),
    ("target-no-mode", network(target={"selector": {}}), f"{NC}.target.mode", "is required"),
    ("target-no-selector", network(target={"mode": "one"}), f"{NC}.target.selector", "is required"),
    (
        "target-fixed-no-value",
        network(target={"selector": {}, "mode": "fixed"}),
        f"{NC}.target.value",
        "is required with mode fixed",
    ),
    (
        "target-percent-over",
        network(target={"selector": {}, "mode": "fixed-percent", "value": "200"}),
        f"{NC}.target.value",
        "(0, 100]",
    ),
    (
        "external-target-bad",
        network(externalTargets=["not a host!"]),
        f"{NC}.externalTargets[0]",
        "not an IP address",
    ),
    (
        "external-target-port",
        network(externalTargets=["example.com:99999"]),
        f"{NC}.externalTargets[0]",
        "1-65535",
    ),
    (
        "both-target-whole-namespace",
        network(direction="both", target={"selector": {}, "mode": "one"}),
        f"{NC}.target.selector",
        "direction both injects into the target pods too",
    ),
    (
        "from-target-only-exclusions",
        network(direction="from", target={"mode": "all", "selector": {
            "namespaces": ["db"], "expressionSelectors": [{"key": "tier", "operator": "DoesNotExist"}]}}),
        f"{NC}.target.selector",
        "selects every pod in db",
    ),
    (
        "partition-both-target-whole-namespace",
        network(action="partition", delay=None, direction="both", target={"selector": {}, "mode": "one"}),
        f"{NC}.target.selector",
        "injects into the target pods too",
    ),
    (
        "external-target-port-not-ascii",
        network(externalTargets=["example.com:²"]),
        f"{NC}.externalTargets[0]",
        "1-65535",
    ),
    (
        "peakrate-over-uint64",
        network(action="bandwidth", delay=None,
                bandwidth={"rate": "1mbps", "limit": 1, "buffer": 1, "peakrate": 2**64}),
        f"{NC}.bandwidth.peakrate",
        "must be at most",
    ),
    # unknown and unsupported fields
    ("typo-latency", network(delay={"latencyy": "10ms"}), f"{NC}.delay.latencyy", "did you mean 'latency'"),
    ("typo-duration", network(durations="20s"), f"{NC}.durations", "did you mean 'duration'"),
    ("typo-grace", pod(graceperiod=0), f"{PC}.graceperiod", "did you mean 'gracePeriod'"),
    ("remote-cluster", network(remoteCluster="east"), f"{NC}.remoteCluster", "not supported"),
    ("netem-rate", network(action="netem", rate={"rate": "1mbps"}), f"{NC}.rate", "use action: bandwidth"),
    # pod chaos
    ("container-kill-no-names", pod(action="container-kill"), f"{PC}.containerNames", "needs containerNames"),
    (
        "container-names-not-strings",
        pod(action="container-kill", containerNames=[1]),
        f"{PC}.containerNames[0]",
        "non-empty string",
    ),
    ("grace-negative", pod(gracePeriod=-1), f"{PC}.gracePeriod", "at least 0"),
    ("grace-text", pod(gracePeriod="5"), f"{PC}.gracePeriod", "whole number"),
    # the narrowing selector
    (
        "selector-namespaces",
        network(selector={"namespaces": ["other"]}),
        f"{NC}.selector.namespaces",
        "namespaces come from the service",
    ),
    (
        "selector-conflict",
        pod(selector={"labelSelectors": {"app": "cart"}}),
        f"{PC}.selector",
        "conflicts with the service's app='payment'",
    ),
    ("selector-pods", pod(selector={"pods": {"shop": ["payment-0"]}}), f"{PC}.selector", "cannot list pods"),
    (
        "selector-phase-typo",
        pod(selector={"podPhaseSelectors": ["Runnin"]}),
        f"{PC}.selector.podPhaseSelectors[0]",
        "must be one of Pending, Running",
    ),
    (
        "selector-operator",
        pod(selector={"expressionSelectors": [{"key": "a", "operator": "Equals"}]}),
        f"{PC}.selector.expressionSelectors[0].operator",
        "must be one of In, NotIn",
    ),
    (
        "selector-in-no-values",
        pod(selector={"expressionSelectors": [{"key": "a", "operator": "In"}]}),
        f"{PC}.selector.expressionSelectors[0].values",
        "needs at least one value",
    ),
    (
        "selector-number-label",
        pod(selector={"labelSelectors": {"version": 2}}),
        f"{PC}.selector.labelSelectors.version",
        "quote it",
    ),
    (
        "selector-bad-label-value",
        pod(selector={"labelSelectors": {"version": "v 2"}}),
        f"{PC}.selector.labelSelectors.version",
        "not a valid label value",
    ),
    (
        "selector-typo",
        pod(selector={"labelSelector": {"a": "b"}}),
        f"{PC}.selector.labelSelector",
        "did you mean 'labelSelectors'",
    ),
]


@pytest.mark.parametrize(("name", "fault", "field", "reason"), BAD_FAULTS, ids=[b[0] for b in BAD_FAULTS])
def test_each_fault_rule_rejects_bad_input(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    fault: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    path = write(shop(tmp_path) / "bad.yaml", experiment_doc(name, fault=fault))
    assert_rejected(capsys, path, field, reason)


def test_error_names_the_line_of_the_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = """apiVersion: chaoslab/v1
kind: Experiment
metadata: {name: payment-delay}
spec:
  service: payment
  fault:
    networkChaos:
      action: delay
      mode: one
      delay:
        latency: 200ms
        jiter: 5ms
      duration: 20s
"""
    path = write(shop(tmp_path) / "exp.yaml", text)
    err = assert_rejected(capsys, path, f"{NC}.delay.jiter", "did you mean 'jitter'")
    assert err.startswith(f"{path}:12: ")


def _loaded(tmp_path: Path, fault: dict[str, Any]) -> NetworkChaos | PodChaos:
    path = write(shop(tmp_path) / "exp.yaml", experiment_doc("e", fault=fault))
    return load_experiment(path).fault


def test_numbers_become_the_strings_chaos_mesh_wants(tmp_path: Path) -> None:
    fault = _loaded(
        tmp_path,
        network(
            action="loss", delay=None, mode="fixed-percent", value=50, loss={"loss": 25, "correlation": 12.5}
        ),
    )
    assert isinstance(fault, NetworkChaos)
    assert (fault.value, fault.loss and fault.loss.loss, fault.loss and fault.loss.correlation) == (
        "50",
        "25",
        "12.5",
    )


def test_defaults_and_values_are_kept(tmp_path: Path) -> None:
    fault = _loaded(tmp_path, network(mode="fixed", value="7", delay={"latency": "200ms", "jitter": "5ms"}))
    assert isinstance(fault, NetworkChaos)
    assert fault.direction is Direction.TO
    assert fault.target is None
    assert fault.external_targets == ()
    assert (fault.action, fault.mode, fault.value) == (NetworkAction.DELAY, Mode.FIXED, "7")
    assert fault.delay is not None
    assert (fault.delay.latency, fault.delay.jitter) == ("200ms", "5ms")
    kill = _loaded(tmp_path, pod(action="container-kill", containerNames=["app"], gracePeriod=5))
    assert isinstance(kill, PodChaos)
    assert (kill.action, kill.container_names, kill.grace_period) == (PodAction.CONTAINER_KILL, ("app",), 5)


def test_target_selector_may_name_other_namespaces(tmp_path: Path) -> None:
    target = {
        "selector": {"namespaces": ["db"], "labelSelectors": {"app": "pg"}},
        "mode": "fixed",
        "value": 1,
    }
    fault = _loaded(tmp_path, network(direction="both", target=target))
    assert isinstance(fault, NetworkChaos)
    assert fault.target is not None
    assert fault.target.selector.namespaces == ("db",)
    assert (fault.target.mode, fault.target.value) == (Mode.FIXED, "1")


def test_parse_fault_is_shared_by_templates_and_locates_errors() -> None:
    fault = parse_fault(
        {"name": "kill", **pod()},
        path="gameday.yaml",
        field_prefix="spec.matrix.faults[0]",
        extra_keys=("name",),
    )
    assert isinstance(fault, PodChaos)
    assert fault.duration == "20s"
    with pytest.raises(InvalidInputError) as caught:
        parse_fault(network(duration="soon"), path="gameday.yaml", field_prefix="spec.matrix.faults[1]")
    assert caught.value.field == "spec.matrix.faults[1].networkChaos.duration"
    assert caught.value.path == "gameday.yaml"


# The webhook's direction rules (validateTargets), for every network action: `from`/`both`
# need target pods and never take externalTargets; `to` takes both.
ACTION_SPECS: dict[str, dict[str, Any]] = {
    "netem": {"delay": {"latency": "10ms"}},
    "delay": {"delay": {"latency": "10ms"}},
    "loss": {"loss": {"loss": "5"}},
    "duplicate": {"duplicate": {"duplicate": "5"}},
    "corrupt": {"corrupt": {"corrupt": "5"}},
    "bandwidth": {"bandwidth": {"rate": "1mbps", "limit": 1, "buffer": 1}},
    "partition": {},
}
DIRECTION_RULES: list[tuple[str, dict[str, Any], str | None, str]] = [
    ("to-with-external", {"direction": "to", "externalTargets": ["8.8.8.8"]}, None, ""),
    ("to-with-target", {"direction": "to", "target": TARGET}, None, ""),
    ("from-with-external", {"direction": "from", "target": TARGET, "externalTargets": ["8.8.8.8"]},
     f"{NC}.externalTargets", "cannot be used with direction from"),
    ("both-with-external", {"direction": "both", "target": TARGET, "externalTargets": ["8.8.8.8"]},
     f"{NC}.externalTargets", "cannot be used with direction both"),
    ("both-external-only", {"direction": "both", "externalTargets": ["8.8.8.8"]},
     f"{NC}.externalTargets", "cannot be used with direction both"),
    ("from-without-target", {"direction": "from"}, f"{NC}.direction", "needs target"),
    ("both-without-target", {"direction": "both"}, f"{NC}.direction", "needs target"),
]


@pytest.mark.parametrize("action", list(ACTION_SPECS))
@pytest.mark.parametrize(("rule", "spec", "field", "reason"), DIRECTION_RULES,
                         ids=[r[0] for r in DIRECTION_RULES])
def test_direction_rules_hold_for_every_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
    action: str, rule: str, spec: dict[str, Any], field: str | None, reason: str,
) -> None:
    fault = network(action=action, **{"delay": None, **ACTION_SPECS[action], **spec})
    path = write(shop(tmp_path) / "f.yaml", experiment_doc(f"{action}-{rule}", fault=fault))
    if field is None:
        assert run_cli(capsys, "validate", path)[0] == 0
    else:
        assert_rejected(capsys, path, field, reason)
