"""`chaoslab export --to workflow|schedule`: a game day as a Chaos Mesh Workflow guarded by
the SLO gate, through the CLI (a subprocess), checked against the upstream Workflow and
Schedule CRDs and against the rules Chaos Mesh's Workflow webhook applies."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.loader import load_gameday
from chaoslab.model import Plan, parse_go_duration
from chaoslab.plan import build_plan
from tests.support.chaos_cases import REPO_ROOT, iter_nulls, load_crd_schemas, schema_errors
from tests.support.files import catalog_doc, experiment_doc, gameday_doc, network, pod, shop, write

GATE = "http://chaoslab-gate.chaoslab.svc:8080/gate"
SAMPLE = REPO_ROOT / "experiments" / "gameday.yaml"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CHAOS_FIELDS = {"NetworkChaos": "networkChaos", "PodChaos": "podChaos"}


def export(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaoslab", "export", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=60, check=False)


def matrix_gameday(tmp_path: Path) -> Path:
    """Two experiments, a matrix over the non-core services and a two-level ramp."""
    shop(tmp_path)
    write(tmp_path / "exp" / "payment-delay.yaml", experiment_doc("payment-delay", service="payment"))
    write(tmp_path / "exp" / "catalog-pause.yaml", experiment_doc(
        "catalog-pause", service="catalog", fault=pod(action="pod-failure")))
    return write(tmp_path / "gameday.yaml", gameday_doc(
        "matrix-weekly",
        matrix={"services": {"tier": "non-core"},
                "faults": [{"name": "kill", **pod(duration="15s")},
                           {"name": "slow", **network(duration="25s", delay={"latency": "1s"})}]},
        blastRadius=[{"mode": "one"}, {"mode": "fixed-percent", "value": "50"}],
        safety={"allowNamespaces": ["shop"], "maxPercent": 50},
    ))


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return load_crd_schemas()


def _by_name(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in spec["templates"]}


def assert_webhook_rules(spec: dict[str, Any]) -> None:
    """What Chaos Mesh's Workflow webhook checks (api/v1alpha1/workflow_webhook.go)."""
    names = [t["name"] for t in spec["templates"]]
    assert len(names) == len(set(names)), "template names must be unique"
    templates = _by_name(spec)
    assert spec["entry"] in templates
    for template in spec["templates"]:
        assert DNS_LABEL.match(template["name"]), template["name"]
        assert len(template["name"]) <= 57, template["name"]
        kind = template["templateType"]
        if kind in ("Serial", "Parallel"):
            assert all(child in templates for child in template["children"])
            assert "abortWithStatusCheck" not in template  # ignored there: it belongs on the check
        elif kind in CHAOS_FIELDS:
            assert "duration" not in template[CHAOS_FIELDS[kind]], "the webhook refuses duration"
            assert parse_go_duration(template["deadline"]) > 0
            assert "children" not in template
            assert "statusCheck" not in template
        else:
            assert kind == "StatusCheck", kind


def assert_follows_plan(spec: dict[str, Any], plan: Plan) -> None:
    """Stages in tier order, each gated then watched; steps in plan order with their durations."""
    templates = _by_name(spec)
    entry = templates[spec["entry"]]
    assert entry["templateType"] == "Serial"
    stages = [s for s in plan.stages if any(step.refusal is None for step in s.steps)]
    assert entry["children"] == [n for s in stages for n in (f"gate-{s.tier.label}", f"stage-{s.tier.label}")]
    for stage in stages:
        gate = templates[f"gate-{stage.tier.label}"]
        assert gate["statusCheck"]["mode"] == "Synchronous"
        assert "deadline" not in gate  # a passed deadline would let the Workflow go on unchecked
        parallel = templates[f"stage-{stage.tier.label}"]
        assert parallel["templateType"] == "Parallel"
        watch, serial = (templates[c] for c in parallel["children"])
        assert watch["statusCheck"]["mode"] == "Continuous"
        assert serial["templateType"] == "Serial"
        steps = [s for s in stage.steps if s.refusal is None]
        chaos = [templates[c] for c in serial["children"]]
        assert [t["name"] for t in chaos] == [s.name for s in steps]
        assert [t["deadline"] for t in chaos] == [s.fault.duration for s in steps]
        assert [t["templateType"] for t in chaos] == [s.fault.kind.value for s in steps]
        modes = [t[CHAOS_FIELDS[t["templateType"]]]["mode"] for t in chaos]
        assert modes == [s.fault.mode.value for s in steps]
        length = sum(parse_go_duration(s.fault.duration) for s in steps)
        assert parse_go_duration(watch["deadline"]) >= length
        assert watch["statusCheck"]["duration"] == watch["deadline"]
    for template in spec["templates"]:
        if template["templateType"] == "StatusCheck":
            check = template["statusCheck"]
            assert template["abortWithStatusCheck"] is True
            assert (check["intervalSeconds"], check["failureThreshold"], check["type"]) == (1, 1, "HTTP")
            assert check["http"] == {"url": GATE, "method": "GET", "criteria": {"statusCode": "200"}}


def assert_labelled(obj: dict[str, Any], gameday: str) -> None:
    labels = obj["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "chaoslab"
    assert labels["chaoslab.io/gameday"] == gameday


@pytest.mark.parametrize("which", ["sample", "matrix"])
def test_workflow_export_validates_and_follows_the_plan(
    schemas: dict[str, dict[str, Any]], tmp_path: Path, which: str
) -> None:
    path = SAMPLE if which == "sample" else matrix_gameday(tmp_path)
    done = export("--to", "workflow", "--gate-url", GATE, path)
    assert done.returncode == 0, done.stderr
    workflow = yaml.safe_load(done.stdout)
    assert schema_errors(workflow, schemas) == []
    assert list(iter_nulls(workflow)) == []
    plan = build_plan(load_gameday(path))
    assert_labelled(workflow, plan.gameday.name)
    assert workflow["metadata"]["namespace"] == "shop"
    assert_webhook_rules(workflow["spec"])
    assert_follows_plan(workflow["spec"], plan)
    if which == "matrix":  # experiments then the matrix, each ramp's levels together and in order
        names = [t["name"] for t in workflow["spec"]["templates"] if t["templateType"] in CHAOS_FIELDS]
        assert names == [f"{base}-r{level}" for base in (
            "catalog-pause", "catalog-kill", "catalog-slow", "recommendation-kill", "recommendation-slow",
            "payment-delay") for level in (1, 2)]


@pytest.mark.parametrize("which", ["sample", "matrix"])
def test_schedule_export_wraps_the_same_workflow(
    schemas: dict[str, dict[str, Any]], tmp_path: Path, which: str
) -> None:
    path = SAMPLE if which == "sample" else matrix_gameday(tmp_path)
    done = export("--to", "schedule", "--cron", "0 9 * * 2", "--gate-url", GATE, path)
    assert done.returncode == 0, done.stderr
    schedule = yaml.safe_load(done.stdout)
    assert schema_errors(schedule, schemas) == []
    assert schedule["kind"] == "Schedule"
    assert schedule["spec"]["type"] == "Workflow"
    assert schedule["spec"]["schedule"] == "0 9 * * 2"
    assert schedule["spec"]["concurrencyPolicy"] == "Forbid"  # never two game days at once
    plan = build_plan(load_gameday(path))
    assert_labelled(schedule, plan.gameday.name)
    workflow = yaml.safe_load(export("--to", "workflow", "--gate-url", GATE, path).stdout)
    assert schedule["spec"]["workflow"] == workflow["spec"]
    # The Workflow CRD accepts the embedded spec too.
    embedded = {**workflow, "spec": schedule["spec"]["workflow"]}
    assert schema_errors(embedded, schemas) == []


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--to", "workflow"], "--gate-url"),
        (["--to", "schedule", "--gate-url", GATE], "--cron"),
        (["--to", "schedule", "--gate-url", GATE, "--cron", "every tuesday"], "--cron"),
        (["--to", "schedule", "--gate-url", GATE, "--cron", "@every soon"], "--cron"),
        (["--to", "workflow", "--gate-url", "chaoslab-gate:8080/gate"], "--gate-url"),
        (["--to", "workflow", "--gate-url", GATE, "--step", "cart-delay"], "--step"),
        (["--to", "workflow", "--gate-url", GATE, "--namespace", "Chaos_Lab"], "--namespace"),
    ],
    ids=["no-gate-url", "no-cron", "bad-cron", "bad-every", "gate-url-without-scheme", "step", "namespace"],
)
def test_missing_or_bad_flags_exit_2_with_one_line(args: list[str], field: str) -> None:
    done = export(*args, SAMPLE)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"chaoslab: {SAMPLE}: ")
    assert f"{field}:" in lines[0]
    assert done.stdout == ""


def test_an_experiment_is_not_a_game_day() -> None:
    path = REPO_ROOT / "experiments" / "exp" / "payment-delay.yaml"
    done = export("--to", "workflow", "--gate-url", GATE, path)
    assert done.returncode == 2
    assert "kind: --to workflow needs a GameDay" in done.stderr


def test_services_in_several_namespaces_need_a_namespace(
    schemas: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    services = [
        {"name": "web", "namespace": "front", "tier": "core", "selector": {"labelSelectors": {"app": "web"}}},
        {"name": "search", "namespace": "back", "tier": "non-core",
         "selector": {"labelSelectors": {"app": "search"}}},
    ]
    write(tmp_path / "catalog.yaml", catalog_doc(services))
    write(tmp_path / "exp" / "web.yaml", experiment_doc("web-delay", service="web"))
    write(tmp_path / "exp" / "search.yaml", experiment_doc("search-kill", service="search", fault=pod()))
    path = write(tmp_path / "gameday.yaml", gameday_doc("two-namespaces"))
    refused = export("--to", "workflow", "--gate-url", GATE, path)
    assert refused.returncode == 2
    assert "--namespace: the services span namespaces back, front" in refused.stderr
    done = export("--to", "workflow", "--gate-url", GATE, "--namespace", "chaoslab", path)
    assert done.returncode == 0, done.stderr
    workflow = yaml.safe_load(done.stdout)
    assert workflow["metadata"]["namespace"] == "chaoslab"
    assert schema_errors(workflow, schemas) == []
    selectors = {t["name"]: t.get("networkChaos", t.get("podChaos", {})).get("selector")
                 for t in workflow["spec"]["templates"]}
    assert selectors["web-delay"]["namespaces"] == ["front"]
    assert selectors["search-kill"]["namespaces"] == ["back"]


def test_refused_steps_are_left_out_and_named(tmp_path: Path) -> None:
    shop(tmp_path)
    write(tmp_path / "exp" / "cart.yaml", experiment_doc("cart-delay", service="cart"))
    write(tmp_path / "exp" / "catalog.yaml", experiment_doc(
        "catalog-all", service="catalog", fault=network(mode="all")))
    path = write(tmp_path / "gameday.yaml", gameday_doc("careful", safety={"maxPercent": 50}))
    done = export("--to", "workflow", "--gate-url", GATE, path)
    assert done.returncode == 0, done.stderr
    assert "skipping step catalog-all" in done.stderr
    spec = yaml.safe_load(done.stdout)["spec"]
    assert "catalog-all" not in _by_name(spec)
    assert _by_name(spec)[spec["entry"]]["children"] == ["gate-core", "stage-core"]
