"""deploy/: `kubectl kustomize deploy/` builds, and the objects it builds hold what running
chaoslab in a cluster needs: least-privilege RBAC without wildcards, a CronJob that never
runs two game days at once and cleans up after a killed one, a hardened gate Deployment
with probes on /healthz, and commands that chaoslab's own CLI parses."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# Every verb chaoslab's code uses against the API; anything else would be a privilege too many.
USED_VERBS = {"get", "list", "watch", "create", "delete", "patch"}


@pytest.fixture(scope="module")
def built() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is absent: cannot run `kubectl kustomize deploy/`")
    done = subprocess.run([kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(obj["spec"]["template"]["spec"])


def test_the_build_holds_every_part(built: list[dict[str, Any]]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in built)
    assert kinds == sorted([
        ("Namespace", "chaoslab"), ("ServiceAccount", "chaoslab"), ("ServiceAccount", "chaoslab-gate"),
        ("ClusterRole", "chaoslab"), ("ClusterRoleBinding", "chaoslab"),
        ("ConfigMap", "chaoslab-settings"), ("ConfigMap", "chaoslab-experiments"),
        ("PersistentVolumeClaim", "chaoslab-reports"), ("CronJob", "chaoslab-gameday"),
        ("Deployment", "chaoslab-gate"), ("Service", "chaoslab-gate"),
    ])
    for obj in built:
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "chaoslab"
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "chaoslab", obj["metadata"]


def test_rbac_is_least_privilege_without_wildcards(built: list[dict[str, Any]]) -> None:
    roles = [o for o in built if o["kind"] in ("Role", "ClusterRole")]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], f"{role['metadata']['name']}: wildcard in {key}"
            assert set(rule["verbs"]) <= USED_VERBS
            assert "nonResourceURLs" not in rule
            assert not {"secrets", "configmaps", "pods/exec"} & set(rule["resources"])
    accounts = {(o["metadata"]["namespace"], o["metadata"]["name"])
                for o in built if o["kind"] == "ServiceAccount"}
    role_names = {(o["kind"], o["metadata"]["name"]) for o in roles}
    for binding in (o for o in built if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in role_names
        for subject in binding["subjects"]:
            assert (subject["namespace"], subject["name"]) in accounts
            assert subject["name"] != "chaoslab-gate"  # the gate needs no API access at all
    gate = pod_spec(one(built, "Deployment", "chaoslab-gate"))
    assert gate["serviceAccountName"] == "chaoslab-gate"
    assert gate["automountServiceAccountToken"] is False


def test_containers_are_hardened_and_bounded(built: list[dict[str, Any]]) -> None:
    for obj in (one(built, "Deployment", "chaoslab-gate"), one(built, "CronJob", "chaoslab-gameday")):
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1], f"{image}: no tag"
            assert not image.endswith(":latest")


def test_the_gate_deployment_and_service(built: list[dict[str, Any]]) -> None:
    deployment = one(built, "Deployment", "chaoslab-gate")
    service = one(built, "Service", "chaoslab-gate")
    container = pod_spec(deployment)["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/healthz"
        assert check["port"] in ports
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in ports
    args = parse(container["args"])
    assert (args.command, args.gate_command) == ("gate", "serve")
    assert args.host == "0.0.0.0"  # in a pod, the Service must reach it
    assert args.port == ports[service["spec"]["ports"][0]["targetPort"]]


def test_the_cronjob_runs_one_game_day_at_a_time_and_cleans_up_first(built: list[dict[str, Any]]) -> None:
    cronjob = one(built, "CronJob", "chaoslab-gameday")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    spec = pod_spec(cronjob)
    assert spec["serviceAccountName"] == "chaoslab"
    cleanup = parse(spec["initContainers"][0]["args"])
    assert cleanup.command == "cleanup"
    assert cleanup.all
    run = spec["containers"][0]
    args = parse(run["args"])
    assert args.command == "run"
    assert args.yes
    assert args.target == "kubernetes"
    mounts = {m["name"]: m["mountPath"] for m in run["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims == {"reports": "chaoslab-reports"}
    assert args.reports == mounts["reports"]
    assert args.junit.startswith(mounts["reports"] + "/")
    one(built, "PersistentVolumeClaim", "chaoslab-reports")


@pytest.mark.parametrize(("kind", "name"), [("CronJob", "chaoslab-gameday"), ("Deployment", "chaoslab-gate")])
def test_mounted_experiments_cover_every_path_used_and_validate(
    built: list[dict[str, Any]], kind: str, name: str, tmp_path: Path
) -> None:
    data = one(built, "ConfigMap", "chaoslab-experiments")["data"]
    spec = pod_spec(one(built, kind, name))
    volume = next(v for v in spec["volumes"] if v["name"] == "experiments")
    items = {i["path"]: i["key"] for i in volume["configMap"]["items"]}
    assert all(key in data for key in items.values())
    container = spec["containers"][0]
    root = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "experiments")
    used = {a for a in container["args"] if a.startswith(root + "/")}
    assert used <= {f"{root}/{path}" for path in items}
    # The tree the pod sees, rebuilt here: the game day (or the gate's catalog and rules) in
    # it passes `chaoslab validate`.
    for path, key in items.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(data[key], encoding="utf-8")
    args = [a.replace(root, str(tmp_path), 1) for a in container["args"]]
    rules = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--rules"]
    files = [a for a in args if a.startswith(str(tmp_path)) and a not in rules]
    checks = [["validate", *files]]
    if rules:  # the rule files load and bind to the catalog's services
        catalog = next(f for f in files if f.endswith("catalog.yaml"))
        checks.append(["hypothesis", "--catalog", catalog, "--service", "frontend",
                       *(x for r in rules for x in ("--rules", r))])
    for check in checks:
        done = subprocess.run([sys.executable, "-m", "chaoslab", *check], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def parse(argv: list[str]) -> Any:
    """chaoslab's own parser accepts the container's arguments."""
    args = build_parser().parse_args(argv)
    assert callable(args.handler), shlex.join(argv)
    return args
