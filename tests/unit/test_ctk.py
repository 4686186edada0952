"""Chaos Toolkit export structure and journal reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaoslab.chaosmesh.manifest import build_manifest
from chaoslab.ctk import build_ctk_experiment, read_journal, steady_state_met
from chaoslab.errors import InvalidInputError
from chaoslab.model import Experiment, NetworkChaos, PodChaos
from tests.support.chaos_cases import PAYMENT, RECOMMENDATION, network_faults, pod_faults

DELAY = network_faults()["delay"]
POD_KILL = pod_faults()["pod-kill"]
HYPOTHESIS = {
    "title": "SLO alerts of payment are quiet",
    "probes": [{
        "type": "probe", "name": "alert-PaymentErrors-quiet",
        "tolerance": {"type": "regex", "target": "verdict", "pattern": "^met$"},
        "provider": {"type": "python", "module": "chaoslab.prometheus.probes", "func": "alert_quiet",
                     "arguments": {"alert": "PaymentErrors", "expr": "x > 0.01"}},
    }],
}


def _export(fault: NetworkChaos | PodChaos = DELAY, **kwargs: Any) -> dict[str, Any]:
    experiment = Experiment(name="payment-delay", fault=fault, service="payment",
                            description=kwargs.pop("description", ""), tags=("weekly", "core"))
    return build_ctk_experiment(experiment=experiment, service=kwargs.pop("service", PAYMENT), **kwargs)


def test_required_ctk_fields_and_tags() -> None:
    doc = _export()
    assert doc["title"] == "chaoslab: NetworkChaos delay on payment (payment-delay)"
    assert doc["description"].startswith("NetworkChaos delay on shop/payment for 30s")
    assert doc["tags"] == ["chaoslab", "core", "NetworkChaos", "delay", "weekly"]
    assert doc["runtime"] == {"rollbacks": {"strategy": "always"}, "hypothesis": {"strategy": "default"}}
    assert "secrets" not in doc
    assert "steady-state-hypothesis" not in doc


def test_description_comes_from_the_experiment_when_given() -> None:
    assert _export(description="Payment under 200ms extra latency")["description"] == (
        "Payment under 200ms extra latency")


@pytest.mark.parametrize(("target", "module"), [("kubernetes", "chaoslab.chaosmesh.actions"),
                                                 ("sandbox", "chaoslab.sandbox.actions")])
def test_method_injects_the_manifest_then_holds_and_rollback_removes(target: str, module: str) -> None:
    doc = _export(target=target)
    inject, hold = doc["method"]
    assert inject["type"] == hold["type"] == "action"
    assert inject["provider"] == {
        "type": "python", "module": module, "func": "inject_fault",
        "arguments": {"manifest": build_manifest(name="payment-delay", service=PAYMENT, fault=DELAY,
                                                 experiment="payment-delay"),
                      "timeout": 30.0},
    }
    assert hold["provider"] == {"type": "python", "module": "chaoslab.halt", "func": "hold",
                                "arguments": {"duration": "30s"}}
    [remove] = doc["rollbacks"]
    assert remove["provider"] == {
        "type": "python", "module": module, "func": "remove_fault",
        "arguments": {"kind": "NetworkChaos", "namespace": "shop", "experiment": "payment-delay",
                      "timeout": 60.0},
    }
    assert doc["configuration"] == {"chaoslab_target": target}


def test_rollback_experiment_label_matches_the_manifest() -> None:
    doc = _export(fault=POD_KILL, service=RECOMMENDATION, step_name="recommendation-pod-kill-l1")
    manifest = doc["method"][0]["provider"]["arguments"]["manifest"]
    remove = doc["rollbacks"][0]["provider"]["arguments"]
    assert manifest["metadata"]["name"] == "recommendation-pod-kill-l1"
    assert manifest["metadata"]["labels"]["chaoslab.io/experiment"] == remove["experiment"] == "payment-delay"
    assert (remove["kind"], remove["namespace"]) == ("PodChaos", "shop")
    assert "chaoslab.io/run-id" not in manifest["metadata"]["labels"]  # the backend adds it when it runs


def test_configuration_with_known_prometheus_and_run_id() -> None:
    doc = _export(prometheus_url="http://127.0.0.1:9090", run_id="20261127T101500Z-3f2a",
                  sandbox_dir="/tmp/sb", hypothesis=HYPOTHESIS)
    assert doc["configuration"] == {
        "chaoslab_target": "kubernetes", "prometheus_url": "http://127.0.0.1:9090",
        "chaoslab_run_id": "20261127T101500Z-3f2a", "chaoslab_sandbox_dir": "/tmp/sb",
    }
    assert doc["steady-state-hypothesis"] == HYPOTHESIS


def test_unknown_prometheus_url_with_a_hypothesis_reads_the_environment_at_run_time() -> None:
    from chaoslib.configuration import load_configuration

    doc = _export(hypothesis=HYPOTHESIS)
    entry = doc["configuration"]["prometheus_url"]
    assert entry == {"type": "env", "key": "CHAOSLAB_PROMETHEUS_URL", "default": ""}
    # chaoslib refuses an env entry without a default when the variable is unset; this one
    # loads either way, and `chaos run --var prometheus_url=URL` overrides it.
    assert isinstance(load_configuration(doc["configuration"])["prometheus_url"], str)
    loaded = load_configuration(doc["configuration"], extra_vars={"prometheus_url": "http://p:9090"})
    assert loaded["prometheus_url"] == "http://p:9090"


def test_extension_carries_chaoslab_metadata() -> None:
    [ext] = _export(step_name="s1", target="sandbox")["extensions"]
    assert ext == {
        "name": "chaoslab", "experiment": "payment-delay", "service": "payment", "namespace": "shop",
        "tier": "core", "kind": "NetworkChaos", "action": "delay", "mode": "one", "value": None,
        "duration": "30s", "step": "s1", "target": "sandbox", "direction": "to",
    }


def test_export_is_json_serialisable_and_unknown_target_refused() -> None:
    assert json.loads(json.dumps(_export(fault=POD_KILL))) == _export(fault=POD_KILL)
    with pytest.raises(InvalidInputError, match="chaoslab_target"):
        _export(target="docker")


# --- journals ------------------------------------------------------------------


def _journal(before: object, after: object, during: list[object] | None = None) -> dict[str, Any]:
    return {"status": "completed", "deviated": False,
            "steady_states": {"before": before, "after": after, "during": during or []}}


@pytest.mark.parametrize(
    ("journal", "phase", "expected"),
    [
        (_journal({"steady_state_met": True, "probes": []}, None), "before", True),
        (_journal({"steady_state_met": True, "probes": []}, None), "after", None),
        (_journal(None, {"steady_state_met": False, "probes": []}), "after", False),
        (_journal(None, None), "during", None),
        (_journal(None, None, [{"steady_state_met": True}, {"steady_state_met": False}]), "during", False),
        (_journal(None, None, [{"steady_state_met": True}]), "during", True),
        ({}, "before", None),
    ],
)
def test_steady_state_met(journal: dict[str, Any], phase: Any, expected: bool | None) -> None:
    assert steady_state_met(journal, phase) is expected


def test_read_journal_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(_journal({"steady_state_met": True, "probes": []}, None)), encoding="utf-8")
    assert steady_state_met(read_journal(path), "before") is True


@pytest.mark.parametrize(("text", "field"), [("{not json", ""), ('{"status": "x"}', "steady_states")])
def test_read_journal_rejects_what_is_not_a_journal(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "journal.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError) as info:
        read_journal(path)
    assert info.value.field == field
    assert info.value.path == str(path)


def test_read_journal_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read journal"):
        read_journal(tmp_path / "absent.json")
