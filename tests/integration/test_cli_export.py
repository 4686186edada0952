"""`chaoslab export` through the CLI: files on disk in, YAML/JSON on stdout."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.cli.main import main
from chaoslab.loader import load_gameday
from chaoslab.plan import build_plan
from tests.support.chaos_cases import REPO_ROOT

SHOP_RULES = REPO_ROOT / "experiments" / "rules" / "shop-slo.yaml"

# case → (service, fault block as written in an Experiment file)
FAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "netem": ("catalog", {"networkChaos": {"action": "netem", "mode": "one", "duration": "20s",
                                           "delay": {"latency": "50ms"}, "loss": {"loss": "10"}}}),
    "delay": ("payment", {"networkChaos": {"action": "delay", "mode": "fixed-percent", "value": "50",
                                           "duration": "30s",
                                           "delay": {"latency": "200ms", "jitter": "50ms"}}}),
    "loss": ("cart", {"networkChaos": {"action": "loss", "mode": "fixed", "value": 2, "duration": "15s",
                                       "loss": {"loss": "25", "correlation": "25"}}}),
    "duplicate": ("catalog", {"networkChaos": {"action": "duplicate", "mode": "all", "duration": "10s",
                                               "duplicate": {"duplicate": "5"}}}),
    "corrupt": ("catalog", {"networkChaos": {"action": "corrupt", "mode": "random-max-percent",
                                             "value": "30", "duration": "10s",
                                             "corrupt": {"corrupt": "3"}}}),
    "partition": ("recommendation", {"networkChaos": {
        "action": "partition", "mode": "one", "duration": "10s", "direction": "both",
        "target": {"mode": "fixed", "value": "1", "selector": {"labelSelectors": {"app": "catalog"}}}}}),
    # externalTargets only with direction to, for partition too (the webhook skips partition).
    "partition-external": ("recommendation", {"networkChaos": {
        "action": "partition", "mode": "all", "duration": "10s", "direction": "to",
        "externalTargets": ["psp.example.com:443", "10.0.0.0/8"]}}),
    "bandwidth": ("frontend", {"networkChaos": {
        "action": "bandwidth", "mode": "one", "duration": "1m",
        "bandwidth": {"rate": "1mbps", "limit": 100, "buffer": 10000}}}),
    "external": ("payment", {"networkChaos": {"action": "delay", "mode": "one", "duration": "10s",
                                              "delay": {"latency": "1s"},
                                              "externalTargets": ["psp.example.com"]}}),
    "from-target": ("payment", {"networkChaos": {
        "action": "loss", "mode": "one", "duration": "10s", "direction": "from", "loss": {"loss": "50"},
        "target": {"mode": "all", "selector": {"labelSelectors": {"app": "cart"}}}}}),
    "pod-kill": ("recommendation", {"podChaos": {"action": "pod-kill", "mode": "one", "duration": "20s",
                                                 "gracePeriod": 0}}),
    "pod-failure": ("catalog", {"podChaos": {"action": "pod-failure", "mode": "fixed-percent", "value": "50",
                                             "duration": "30s"}}),
    "container-kill": ("cart", {"podChaos": {"action": "container-kill", "mode": "all", "duration": "10s",
                                             "containerNames": ["cart"]}}),
}
VALUE_MODES = ("fixed", "fixed-percent", "random-max-percent")


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _experiment(name: str, service: str, fault: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "chaoslab/v1", "kind": "Experiment",
            "metadata": {"name": name, "description": f"{name} on {service}"},
            "spec": {"service": service, "fault": fault, **spec}}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A directory with the sample catalog, its rules and one experiment file per case."""
    shutil.copy(REPO_ROOT / "experiments" / "catalog.yaml", tmp_path / "catalog.yaml")
    shutil.copy(SHOP_RULES, tmp_path / "shop-slo.yaml")
    for case, (service, fault) in FAULTS.items():
        _write(tmp_path / "exp" / f"{case}.yaml", _experiment(f"{service}-{case}", service, fault))
    return tmp_path


def _export(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", sorted(FAULTS))
def test_chaos_mesh_export_of_every_action(shop: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    service, fault = FAULTS[case]
    code, out, err = _export(capsys, "--to", "chaos-mesh", str(shop / "exp" / f"{case}.yaml"))
    assert code == 0, err
    [doc] = list(yaml.safe_load_all(out))
    [(key, block)] = fault.items()
    assert doc["kind"] == {"networkChaos": "NetworkChaos", "podChaos": "PodChaos"}[key]
    assert doc["metadata"]["name"] == f"{service}-{case}"
    assert doc["metadata"]["namespace"] == "shop"
    assert doc["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "chaoslab",
                                         "chaoslab.io/experiment": f"{service}-{case}"}
    spec = doc["spec"]
    assert spec["action"] == block["action"]
    assert spec["duration"] == block["duration"]
    assert spec["selector"]["labelSelectors"] == {"app": service}
    assert spec["mode"] == block["mode"]
    if block["mode"] in VALUE_MODES:
        assert spec["value"] == str(block["value"])
    else:
        assert "value" not in spec
    assert ("target" in spec) == ("target" in block)
    for sub in ("delay", "loss", "duplicate", "corrupt", "bandwidth", "externalTargets", "containerNames"):
        assert spec.get(sub) == block.get(sub)


def test_chaostoolkit_export_is_a_ctk_experiment(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _export(capsys, "--to", "chaostoolkit", "--prometheus", "http://prom:9090",
                             str(shop / "exp" / "delay.yaml"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["configuration"] == {"chaoslab_target": "kubernetes", "prometheus_url": "http://prom:9090"}
    inject, hold = doc["method"]
    assert inject["provider"]["module"] == "chaoslab.chaosmesh.actions"
    assert inject["provider"]["arguments"]["manifest"]["spec"]["value"] == "50"
    assert hold["provider"]["arguments"] == {"duration": "30s"}
    assert doc["rollbacks"][0]["provider"]["arguments"]["experiment"] == "payment-delay"
    assert doc["runtime"]["rollbacks"] == {"strategy": "always"}
    assert "steady-state-hypothesis" not in doc
    _assert_ctk_valid(doc)


def test_hypothesis_from_the_experiment_rules_and_the_flag(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(shop / "exp" / "with-rules.yaml",
           _experiment("cart-loss", "cart", FAULTS["loss"][1], hypothesis={"rules": ["../shop-slo.yaml"]}))
    code, out, err = _export(capsys, "--to", "chaostoolkit", str(shop / "exp" / "with-rules.yaml"))
    assert code == 0, err
    doc = json.loads(out)
    probes = doc["steady-state-hypothesis"]["probes"]
    alerts = {p["provider"]["arguments"]["alert"] for p in probes if p["provider"]["func"] == "alert_quiet"}
    assert {"CartHighErrorRate", "CartHighLatencyP99"} <= alerts
    assert [p["provider"]["arguments"] for p in probes if p["provider"]["func"] == "guards_quiet"] == [
        {"alerts": ["ShopAvailabilityBurn"]}]
    assert doc["configuration"]["prometheus_url"]["key"] == "CHAOSLAB_PROMETHEUS_URL"
    _assert_ctk_valid(doc)

    code, out, err = _export(capsys, "--to", "chaostoolkit", "--rules", str(SHOP_RULES),
                             str(shop / "exp" / "delay.yaml"))
    assert code == 0, err
    assert json.loads(out)["steady-state-hypothesis"]["probes"]


def test_sandbox_target_with_explicit_prometheus(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _export(capsys, "--to", "chaostoolkit", "--target", "sandbox",
                             "--prometheus", "http://127.0.0.1:9999", str(shop / "exp" / "pod-kill.yaml"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["configuration"]["chaoslab_target"] == "sandbox"
    modules = {a["provider"]["module"] for a in doc["method"][:1] + doc["rollbacks"]}
    assert modules == {"chaoslab.sandbox.actions"}
    _assert_ctk_valid(doc)


def _export_without_sandbox(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A fresh HOME and state directory: whatever sandbox a developer runs is not seen.
    env = {**os.environ, "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"),
           "CHAOSLAB_SANDBOX_DIR": str(tmp_path / "no-sandbox")}
    return subprocess.run(
        [sys.executable, "-m", "chaoslab", "export", "--to", "chaostoolkit", "--target", "sandbox", *args],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60, check=False,
    )


def test_sandbox_target_exports_without_a_running_sandbox(shop: Path, tmp_path: Path) -> None:
    # An export is a conversion: without a hypothesis it needs no Prometheus and no sandbox.
    done = _export_without_sandbox(tmp_path, str(shop / "exp" / "pod-kill.yaml"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    doc = json.loads(done.stdout)
    assert doc["configuration"] == {"chaoslab_target": "sandbox"}
    _assert_ctk_valid(doc)


def test_sandbox_target_with_rules_and_no_sandbox_reads_the_url_at_run_time(
    shop: Path, tmp_path: Path
) -> None:
    done = _export_without_sandbox(tmp_path, "--rules", str(SHOP_RULES), str(shop / "exp" / "delay.yaml"))
    assert done.returncode == 0, done.stderr
    assert "warning: no sandbox is running; start it with `chaoslab sandbox up`" in done.stderr
    assert "Traceback" not in done.stderr
    doc = json.loads(done.stdout)
    assert doc["configuration"]["prometheus_url"]["key"] == "CHAOSLAB_PROMETHEUS_URL"
    assert doc["steady-state-hypothesis"]["probes"]
    _assert_ctk_valid(doc)


# --- game days ------------------------------------------------------------------


@pytest.fixture
def gameday(shop: Path) -> Path:
    return _write(shop / "gameday.yaml", {
        "apiVersion": "chaoslab/v1", "kind": "GameDay", "metadata": {"name": "weekly"},
        "spec": {"catalog": "catalog.yaml", "rules": ["shop-slo.yaml"],
                 "experiments": ["exp/pod-kill.yaml", "exp/delay.yaml", "exp/duplicate.yaml"],
                 "blastRadius": [{"mode": "one"}, {"mode": "fixed-percent", "value": "50"}]},
    })


def _plan_steps(path: Path) -> list[dict[str, Any]]:
    plan = build_plan(load_gameday(path))
    return [{"name": s.name, "service": s.service.name, "mode": s.fault.mode.value, "value": s.fault.value}
            for s in plan.steps]


def test_gameday_to_chaos_mesh_is_one_document_per_step(
    gameday: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _export(capsys, "--to", "chaos-mesh", str(gameday))
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    steps = _plan_steps(gameday)
    assert [d["metadata"]["name"] for d in docs] == [s["name"] for s in steps]
    assert len(docs) == 6  # three experiments × two ramp levels
    for doc, step in zip(docs, steps, strict=True):
        assert doc["metadata"]["labels"]["chaoslab.io/step"] == step["name"]
        assert doc["spec"]["selector"]["labelSelectors"] == {"app": step["service"]}
        assert doc["spec"]["mode"] == step["mode"]
        assert doc["spec"].get("value") == (step["value"] if step["mode"] in VALUE_MODES else None)
        assert doc["spec"]["duration"]


def test_gameday_to_chaostoolkit_needs_a_step(gameday: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = [s["name"] for s in _plan_steps(gameday)]
    code, out, err = _export(capsys, "--to", "chaostoolkit", str(gameday))
    assert code == 2
    assert out == ""
    assert str(gameday) in err
    assert "--step" in err
    assert all(name in err for name in names)

    code, out, err = _export(capsys, "--to", "chaostoolkit", "--prometheus", "http://p:9090",
                             "--step", names[-1], str(gameday))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["extensions"][0]["step"] == names[-1]
    assert doc["method"][0]["provider"]["arguments"]["manifest"]["metadata"]["name"] == names[-1]
    assert doc["steady-state-hypothesis"]["probes"]
    _assert_ctk_valid(doc)

    code, _, err = _export(capsys, "--to", "chaostoolkit", "--step", "nope", str(gameday))
    assert code == 2
    assert "no step named 'nope'" in err


def test_gameday_safety_refusals_are_never_exported(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(shop / "guarded.yaml", {
        "apiVersion": "chaoslab/v1", "kind": "GameDay", "metadata": {"name": "guarded"},
        "spec": {"catalog": "catalog.yaml", "experiments": ["exp/pod-kill.yaml"],
                 "safety": {"maxPercent": 40},
                 "blastRadius": [{"mode": "one"}, {"mode": "fixed-percent", "value": "50"}]},
    })
    allowed, refused = (s["name"] for s in _plan_steps(path))
    code, out, err = _export(capsys, "--to", "chaos-mesh", str(path))
    assert code == 0, err
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == [allowed]
    assert f"skipping step {refused}" in err
    assert "maxPercent" in err

    code, out, err = _export(capsys, "--to", "chaostoolkit", "--step", refused, str(path))
    assert code == 2
    assert out == ""
    assert "refused" in err


def test_single_step_gameday_needs_no_step_and_step_filters_chaos_mesh(
    gameday: Path, shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = _write(shop / "single.yaml", {
        "apiVersion": "chaoslab/v1", "kind": "GameDay", "metadata": {"name": "single"},
        "spec": {"catalog": "catalog.yaml", "experiments": ["exp/bandwidth.yaml"]},
    })
    code, out, err = _export(capsys, "--to", "chaostoolkit", str(single))
    assert code == 0, err
    assert json.loads(out)["extensions"][0]["step"] == "frontend-bandwidth"

    name = _plan_steps(gameday)[1]["name"]
    code, out, err = _export(capsys, "--to", "chaos-mesh", "--step", name, str(gameday))
    assert code == 0, err
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == [name]


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--to", "chaos-mesh", "{exp}/typo.yaml"], "latencyy"),
        (["--to", "chaos-mesh", "{dir}/catalog.yaml"], "catalog.yaml"),
        (["--to", "chaos-mesh", "{exp}/absent.yaml"], "absent.yaml"),
        (["--to", "chaos-mesh", "--step", "x", "{exp}/delay.yaml"], "--step"),
        (["--to", "kubectl", "{exp}/delay.yaml"], "--to"),
        (["{exp}/delay.yaml"], "--to"),
    ],
    ids=["unknown-field", "catalog-file", "missing-file", "step-on-experiment", "bad-format", "no-format"],
)
def test_bad_input_exits_2_without_traceback(shop: Path, argv: list[str], needle: str) -> None:
    _write(shop / "exp" / "typo.yaml", _experiment("payment-typo", "payment", {"networkChaos": {
        "action": "delay", "mode": "one", "duration": "5s", "delay": {"latencyy": "1s"}}}))
    args = [a.format(exp=shop / "exp", dir=shop) for a in argv]
    done = subprocess.run([sys.executable, "-m", "chaoslab", "export", *args], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["export", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "chaoslab export --to chaos-mesh" in out
    assert "chaos run" in out
    assert "exit codes:\n  0  written to stdout\n  2  bad input or usage" in out


def _assert_ctk_valid(doc: dict[str, Any]) -> None:
    """chaoslib's own validation, once every activity module can be imported."""
    modules = ["chaoslab.chaosmesh.actions", "chaoslab.sandbox.actions", "chaoslab.halt"]
    if "steady-state-hypothesis" in doc:
        modules.append("chaoslab.prometheus.probes")
    if any(importlib.util.find_spec(m) is None for m in modules):
        return
    from chaoslib.experiment import ensure_experiment_is_valid

    ensure_experiment_is_valid(doc)
