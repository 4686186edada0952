"""`chaoslab schema`: a JSON Schema generated from the loader's field definitions. Every
shipped file passes it, and files the loader rejects are rejected by it too wherever a
schema can express the rule."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from chaoslab.errors import InvalidInputError
from chaoslab.loader import load_any
from chaoslab.loader.document import read_data
from chaoslab.sandbox.config import load_sandbox_config

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
SHIPPED = sorted(p for p in EXPERIMENTS.rglob("*.yaml") if p.parent.name != "rules")


def _schema(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "chaoslab", "schema", *args], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    schema: dict[str, Any] = json.loads(out.stdout)
    Draft202012Validator.check_schema(schema)
    return schema


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return Draft202012Validator(_schema())


def _plain(path: Path) -> Any:
    return json.loads(json.dumps(read_data(path)))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_every_shipped_file_passes_the_schema(validator: Draft202012Validator, path: Path) -> None:
    errors = [e.message for e in validator.iter_errors(_plain(path))]
    assert errors == []


@pytest.mark.parametrize("kind", ["Experiment", "GameDay", "Catalog", "Sandbox"])
def test_a_kind_schema_takes_its_kind_only(kind: str) -> None:
    one = Draft202012Validator(_schema("--kind", kind))
    for path in SHIPPED:
        data = _plain(path)
        assert one.is_valid(data) == (data["kind"] == kind), path


def test_an_unknown_kind_is_a_usage_error() -> None:
    out = subprocess.run([sys.executable, "-m", "chaoslab", "schema", "--kind", "Workflow"],
                         capture_output=True, text=True, check=False, cwd=ROOT)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


Mutation = Callable[[dict[str, Any]], None]


def _parent(doc: dict[str, Any], path: str) -> tuple[Any, Any]:
    """The container of ``path`` (``spec.services.0.tier``) and the last key or index."""
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    node: Any = doc
    for key in keys[:-1]:
        node = node[key]
    return node, keys[-1]


def _set(path: str, value: Any) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        node, key = _parent(doc, path)
        node[key] = value
    return apply


def _drop(path: str) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        node, key = _parent(doc, path)
        del node[key]
    return apply


DELAY = "spec.fault.networkChaos"
# (shipped file, mutation): each makes a file the loader rejects.
INVALID = {
    "typo-in-spec": ("exp/payment-delay.yaml", _set("spec.servce", "payment")),
    "unknown-mode": ("exp/payment-delay.yaml", _set(f"{DELAY}.mode", "some")),
    "duration-not-go": ("exp/payment-delay.yaml", _set(f"{DELAY}.duration", "30 seconds")),
    "latency-not-tc": ("exp/payment-delay.yaml", _set(f"{DELAY}.delay.latency", "fast")),
    "unknown-action": ("exp/payment-pod-kill.yaml", _set("spec.fault.podChaos.action", "pod-explode")),
    "name-not-dns": ("exp/payment-delay.yaml", _set("metadata.name", "Payment_Delay")),
    "no-service-nor-target": ("exp/payment-delay.yaml", _drop("spec.service")),
    "no-fault": ("exp/payment-delay.yaml", _drop("spec.fault")),
    "fault-selector-namespaces": ("exp/payment-delay.yaml",
                                  _set(f"{DELAY}.selector", {"namespaces": ["shop"],
                                                             "labelSelectors": {"app": "payment"}})),
    "wrong-api-version": ("exp/payment-delay.yaml", _set("apiVersion", "chaoslab/v2")),
    "unknown-tier": ("catalog.yaml", _set("spec.services.0.tier", "gold")),
    "service-without-selector": ("catalog.yaml", _drop("spec.services.0.selector")),
    "no-services": ("catalog.yaml", _set("spec.services", [])),
    "unknown-gate": ("gameday.yaml", _set("spec.gate", "maybe")),
    "max-percent-over-100": ("gameday.yaml", _set("spec.safety.maxPercent", 150)),
    "bad-window-day": ("gameday.yaml", _set("spec.window", {"days": ["funday"], "from": "10:00",
                                                            "to": "12:00", "timezone": "UTC"})),
    "bad-window-clock": ("gameday.yaml", _set("spec.window", {"days": ["mon"], "from": "25:00",
                                                              "to": "12:00", "timezone": "UTC"})),
    "nothing-to-run": ("gameday.yaml", _drop("spec.experiments")),
    "too-many-replicas": ("sandbox-fixed.yaml", _set("spec.services.payment.replicas", 99)),
    "unknown-sandbox-service": ("sandbox-fixed.yaml", _set("spec.services.checkout", {"replicas": 2})),
}


def _loader_rejects(path: Path) -> bool:
    try:
        if read_data(path).get("kind") == "Sandbox":
            load_sandbox_config(path)
        else:
            load_any(path)
    except InvalidInputError:
        return True
    return False


@pytest.mark.parametrize("case", sorted(INVALID))
def test_files_the_loader_rejects_are_rejected_by_the_schema(
    validator: Draft202012Validator, tmp_path: Path, case: str
) -> None:
    name, mutate = INVALID[case]
    # A copy of the shipped folder, so relative paths (catalog, rules, experiments) resolve.
    shutil.copytree(EXPERIMENTS, tmp_path / "experiments")
    path = tmp_path / "experiments" / name
    doc = _plain(path)
    broken = copy.deepcopy(doc)
    mutate(broken)
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    assert _loader_rejects(path), f"the loader accepts {case}"
    assert not validator.is_valid(broken), case
    assert validator.is_valid(doc)


def test_guards_pass_the_schema_and_round_trip(validator: Draft202012Validator, tmp_path: Path) -> None:
    """``spec.guards`` of a catalog and a game day: accepted by the schema, kept by dump()."""
    import chaoslab

    doc = yaml.safe_load((EXPERIMENTS / "catalog.yaml").read_text())
    doc["spec"]["guards"] = {"severities": ["critical"], "ignore": ["KubeSchedulerDown", 'namespace="dev"']}
    assert list(validator.iter_errors(doc)) == []
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc))
    catalog = chaoslab.load(path)
    again = tmp_path / "again.yaml"
    again.write_text(chaoslab.dump(catalog))
    assert chaoslab.load(again) == catalog
    assert [f.text for f in catalog.guards.ignore] == ["KubeSchedulerDown", 'namespace="dev"']
    doc["spec"]["guards"]["severity"] = ["page"]  # a misspelled key: rejected by both
    assert list(validator.iter_errors(doc))


def test_a_game_day_with_every_optional_field_passes_the_schema_and_round_trips(
    validator: Draft202012Validator, tmp_path: Path
) -> None:
    """recoveryTarget, readiness and silence: accepted by the schema, kept by dump()."""
    import chaoslab

    shutil.copytree(EXPERIMENTS, tmp_path / "e")
    doc = yaml.safe_load((tmp_path / "e" / "gameday.yaml").read_text())
    doc["spec"].update({
        "recoveryTarget": "30s", "readiness": False,
        "silence": {"alertmanager": "http://127.0.0.1:9093", "scope": "gameday",
                    "extraMatchers": ['cluster="prod"'], "required": False},
    })
    assert list(validator.iter_errors(doc)) == []
    path = tmp_path / "e" / "custom.yaml"
    path.write_text(yaml.safe_dump(doc))
    gameday = chaoslab.load(path)
    again = tmp_path / "e" / "again.yaml"
    again.write_text(chaoslab.dump(gameday, relative_to=tmp_path / "e"))
    assert chaoslab.load(again) == gameday
    assert (gameday.recovery_target_s, gameday.readiness, gameday.silence is not None) == (30.0, False, True)
    doc["spec"]["silence"]["scope"] = "everything"  # not a scope: rejected by both
    assert list(validator.iter_errors(doc))
