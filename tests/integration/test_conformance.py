"""Conformance: what chaoslab emits is what the upstream systems accept.

- Every Chaos Mesh manifest validates against the upstream CRD openAPIV3Schema
  (read from ../shared/chaos-mesh/crds), with unknown fields refused.
- Every exported Chaos Toolkit experiment passes chaoslib's own validation, and
  ``chaos validate`` on the written file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.chaosmesh.manifest import build_manifest
from chaoslab.ctk import build_ctk_experiment
from chaoslab.model import Experiment, NetworkChaos, PodChaos, Service
from tests.support.chaos_cases import (
    EXAMPLES_DIR,
    PAYMENT,
    PINNED,
    RECOMMENDATION,
    REPO_ROOT,
    all_faults,
    iter_nulls,
    load_crd_schemas,
    require_chaos_mesh_dir,
    schema_errors,
)

FAULTS = all_faults()
SHOP_RULES = REPO_ROOT / "experiments" / "rules" / "shop-slo.yaml"


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return load_crd_schemas()


def _examples() -> list[Path]:
    if not EXAMPLES_DIR.is_dir():
        return []
    return sorted(p for p in EXAMPLES_DIR.glob("*.yaml")
                  if yaml.safe_load(p.read_text(encoding="utf-8"))["kind"] in ("NetworkChaos", "PodChaos"))


@pytest.mark.parametrize("case", sorted(FAULTS))
@pytest.mark.parametrize(("service", "run_id"), [(PAYMENT, None), (PINNED, "20261127T101500Z-3f2a")],
                         ids=["labels", "pinned-pods-with-run-id"])
def test_every_emitted_manifest_validates_against_the_crd(
    schemas: dict[str, dict[str, Any]], case: str, service: Service, run_id: str | None
) -> None:
    manifest = build_manifest(name=f"exp-{case}", service=service, fault=FAULTS[case],
                              experiment=f"exp-{case}", run_id=run_id, step=f"step-{case}")
    assert schema_errors(manifest, schemas) == []
    assert list(iter_nulls(manifest)) == []


@pytest.mark.parametrize("example", _examples(), ids=lambda p: p.stem)
def test_upstream_examples_validate_with_the_same_strict_schema(
    schemas: dict[str, dict[str, Any]], example: Path
) -> None:
    # Proves the validator set-up (strictness, formats) accepts what Chaos Mesh ships.
    assert schema_errors(yaml.safe_load(example.read_text(encoding="utf-8")), schemas) == []


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda s: s.update(action="bandwdith"), "action"),
        (lambda s: s.update(externalTarget=["8.8.8.8"]), "externalTarget"),
        (lambda s: s["delay"].update(latencyy="1s"), "latencyy"),
        (lambda s: s["delay"].update(latency="fast"), "latency"),
        (lambda s: s.update(target={}), "target"),
        (lambda s: s.update(value=2), "value"),
        (lambda s: s.update(bandwidth={"rate": "1mbps", "limit": 0, "buffer": 1}), "limit"),
        (lambda s: s.update(bandwidth={"rate": "1mbps", "limit": 2**31, "buffer": 1}), "limit"),
    ],
    ids=["bandwidth-typo", "unknown-field", "unknown-subfield", "latency-pattern", "empty-target",
         "value-not-string", "limit-minimum", "limit-int32"],
)
def test_the_schema_check_catches_chaosk8s_style_mistakes(
    schemas: dict[str, dict[str, Any]], mutation: Any, expected: str
) -> None:
    manifest = build_manifest(name="d", service=PAYMENT, fault=FAULTS["delay"], experiment="d")
    mutation(manifest["spec"])
    errors = schema_errors(manifest, schemas)
    assert errors
    assert any(expected in e for e in errors), errors


def test_upstream_examples_are_present() -> None:
    require_chaos_mesh_dir()
    names = {p.stem for p in _examples()}
    assert {"network-bandwidth-example", "pod-kill-example", "container-kill-example"} <= names


# --- Chaos Toolkit -------------------------------------------------------------------


def _hypothesis(service: Service) -> dict[str, Any]:
    from chaoslab.prometheus.hypothesis import build_hypothesis
    from chaoslab.prometheus.rules import load_rules

    return build_hypothesis(service, load_rules([SHOP_RULES]), None)


def _ctk_docs() -> dict[str, dict[str, Any]]:
    hypotheses = {s.name: _hypothesis(s) for s in (PAYMENT, RECOMMENDATION)}
    docs = {}
    for i, (case, fault) in enumerate(FAULTS.items()):
        service = RECOMMENDATION if isinstance(fault, PodChaos) else PAYMENT
        experiment = Experiment(name=f"exp-{case}", fault=fault, service=service.name,
                                tags=("weekly",))
        target = "sandbox" if case.startswith(("pod", "network-")) else "kubernetes"
        docs[case] = build_ctk_experiment(
            experiment=experiment, service=service, target=target,
            run_id="20261127T101500Z-3f2a" if target == "sandbox" else None,
            hypothesis=hypotheses[service.name] if i % 2 else None,
            prometheus_url="http://127.0.0.1:9090" if i % 3 else None,
        )
    return docs


def test_every_ctk_export_passes_chaoslib_validation() -> None:
    from chaoslib.experiment import ensure_experiment_is_valid

    docs = _ctk_docs()
    for doc in docs.values():
        ensure_experiment_is_valid(doc)
    assert sum("steady-state-hypothesis" in d for d in docs.values()) >= len(docs) // 2
    kinds = {d["extensions"][0]["kind"] for d in docs.values()}
    targets = {d["configuration"]["chaoslab_target"] for d in docs.values()}
    assert kinds == {"NetworkChaos", "PodChaos"}
    assert targets == {"kubernetes", "sandbox"}


def test_chaos_validate_accepts_an_export(tmp_path: Path) -> None:
    fault = FAULTS["bandwidth"]
    assert isinstance(fault, NetworkChaos)
    doc = build_ctk_experiment(experiment=Experiment(name="bw", fault=fault, service="payment"),
                               service=PAYMENT, hypothesis=_hypothesis(PAYMENT))
    path = tmp_path / "exported.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    chaos = Path(sys.executable).with_name("chaos")
    done = subprocess.run([str(chaos), "--no-log-file", "validate", str(path)], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "experiment looks valid" in (done.stdout + done.stderr).lower()


# --- the loader agrees with the CRD ----------------------------------------------------


@pytest.mark.parametrize("example", _examples(), ids=lambda p: p.stem)
def test_loader_accepts_upstream_examples_and_re_emits_them(tmp_path: Path, example: Path) -> None:
    """An upstream example's spec, written as a chaoslab fault block (its selector becomes
    an inline target, a duration is added where chaoslab requires one), loads and comes
    back out field for field."""
    from chaoslab.chaosmesh.manifest import experiment_manifest
    from chaoslab.loader import load_experiment

    upstream = yaml.safe_load(example.read_text(encoding="utf-8"))
    block = {k: v for k, v in upstream["spec"].items() if k != "selector"}
    block.setdefault("duration", "10s")
    selector = dict(upstream["spec"]["selector"])
    namespace = (selector.pop("namespaces", None) or ["default"])[0]
    key = "networkChaos" if upstream["kind"] == "NetworkChaos" else "podChaos"
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "chaoslab/v1", "kind": "Experiment", "metadata": {"name": "upstream"},
        "spec": {"target": {"namespace": namespace, "tier": "non-core", "selector": selector},
                 "fault": {key: block}},
    }), encoding="utf-8")
    emitted = experiment_manifest(load_experiment(path, catalog=None), None)["spec"]
    for field, value in block.items():
        assert emitted[field] == value, field
    assert emitted["selector"] == {"namespaces": [namespace], **selector}
