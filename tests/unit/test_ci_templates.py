"""The CI templates in deploy/ci: valid YAML, chaoslab's CLI used as documented, and the
properties a chaos stage needs. Each job's shell steps are executed in order with a
stand-in `chaoslab` on PATH, so "validate first" and "fail on 1, 3 and 4" are observed,
not read."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.cli.main import build_parser

CI = Path(__file__).resolve().parents[2] / "deploy" / "ci"
GITHUB = CI / "github-actions.yml"
GITLAB = CI / "gitlab-ci.yml"
FAKE_CHAOSLAB = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$1" in
  validate) exit "${FAKE_VALIDATE:-0}" ;;
  run) mkdir -p reports && echo '<testsuite/>' > reports/chaos-junit.xml; exit "${FAKE_RUN:-0}" ;;
esac
exit 0
"""


def _lines(script: str) -> list[str]:
    """A shell script's logical lines (backslash continuations joined)."""
    return [" ".join(line.split()) for line in script.replace("\\\n", " ").splitlines() if line.strip()]


def _commands(node: object) -> list[str]:
    if isinstance(node, str):
        return [line for line in _lines(node) if line.startswith("chaoslab ")]
    if isinstance(node, dict):
        return [c for v in node.values() for c in _commands(v)]
    if isinstance(node, list):
        return [c for v in node for c in _commands(v)]
    return []


def _load(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("template", sorted(CI.glob("*.yml")), ids=lambda p: p.name)
def test_template_commands_parse_with_chaoslab_cli(template: Path) -> None:
    commands = _commands(_load(template))
    assert any(c.startswith("chaoslab run ") for c in commands)
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])
        assert callable(args.handler)
        if args.command == "run":
            assert args.yes, f"{template.name}: a CI run needs --yes"
            assert args.junit, f"{template.name}: a CI run needs --junit"
            assert args.junit.startswith(args.reports + "/"), "the JUnit file is published with reports/"


# --- GitHub Actions ---------------------------------------------------------------------


def _github_job() -> dict[str, Any]:
    jobs = _load(GITHUB)["jobs"]
    assert len(jobs) == 1
    return dict(next(iter(jobs.values())))


def test_github_runs_only_on_a_schedule_or_by_hand_one_at_a_time() -> None:
    doc = _load(GITHUB)
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert doc["concurrency"]["group"]
    assert doc["concurrency"]["cancel-in-progress"] is False


def test_github_installs_chaoslab_from_a_requirement_the_user_sets() -> None:
    steps = _github_job()["steps"]
    installs = [line for s in steps for line in _lines(s.get("run", "")) if line.startswith("pip install")]
    assert installs == ['pip install "$CHAOSLAB_REQUIREMENT"']
    step = next(s for s in steps if "pip install" in s.get("run", ""))
    assert step["env"]["CHAOSLAB_REQUIREMENT"] == "${{ vars.CHAOSLAB_REQUIREMENT }}"


def test_github_publishes_junit_and_reports_always() -> None:
    steps = _github_job()["steps"]
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert all(s["if"] == "always()" for s in uploads)
    paths = {s["with"]["path"] for s in uploads}
    assert {"reports/", "reports/chaos-junit.xml"} <= paths


def _fake_bin(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("chaoslab", FAKE_CHAOSLAB), ("pip", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CALLS": str(tmp_path / "calls"),
            "HOME": str(tmp_path)}


def _bash(script: str, env: dict[str, str], cwd: Path) -> int:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is absent")
    return subprocess.run([bash, "--noprofile", "--norc", "-eo", "pipefail", "-c", script], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=30, check=False).returncode


def _placeholders(env: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """A step's `env:`, with each GitHub expression replaced by a harmless stand-in."""
    out = {}
    for key, value in env.items():
        text = str(value)
        if "${{" in text:
            text = {"KUBECONFIG": str(tmp_path / "kubeconfig"), "KUBECONFIG_DATA": "YXBpVmVyc2lvbjogdjEK",
                    "CHAOSLAB_REQUIREMENT": "chaoslab @ file:///wheels/chaoslab.whl"}.get(key, "set")
        out[key] = text
    return out


def _run_github(tmp_path: Path, **codes: int) -> tuple[bool, list[str]]:
    """The job's `run:` steps in order, as Actions would on the success path."""
    job = _github_job()
    env = {**_fake_bin(tmp_path), **_placeholders(job.get("env", {}), tmp_path),
           **{f"FAKE_{k.upper()}": str(v) for k, v in codes.items()}}
    failed = False
    for step in job["steps"]:
        condition = step.get("if", "success()")
        if "run" not in step or condition == "cancelled()" or (failed and condition != "always()"):
            continue
        assert "${{" not in step["run"], "expressions belong in env:, not in the script"
        code = _bash(step["run"], {**env, **_placeholders(step.get("env", {}), tmp_path)}, tmp_path)
        failed = failed or code != 0
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    return not failed, calls


@pytest.mark.parametrize(("code", "passes"), [(0, True), (1, False), (2, False), (3, False), (4, False)])
def test_github_validates_first_and_fails_on_every_nonzero_exit(
    tmp_path: Path, code: int, passes: bool
) -> None:
    ok, calls = _run_github(tmp_path, run=code)
    assert ok is passes
    assert [c.split()[0] for c in calls] == ["validate", "run"]


def test_github_never_runs_an_invalid_game_day(tmp_path: Path) -> None:
    ok, calls = _run_github(tmp_path, validate=2)
    assert not ok
    assert [c.split()[0] for c in calls] == ["validate"]


# --- GitLab CI --------------------------------------------------------------------------


def _gitlab_job() -> dict[str, Any]:
    doc = _load(GITLAB)
    jobs = [v for k, v in doc.items() if isinstance(v, dict) and "script" in v]
    assert len(jobs) == 1
    return dict(jobs[0])


def _rule_matches(expression: str, variables: dict[str, str]) -> bool:
    """GitLab `if:` expressions of the form `$A == "x" && $B == "y"`."""
    terms = [t.strip() for t in expression.split("&&")]
    for term in terms:
        match = re.fullmatch(r'\$(\w+) == "([^"]*)"', term)
        assert match, f"unsupported rule term {term!r}"
        if variables.get(match[1]) != match[2]:
            return False
    return True


@pytest.mark.parametrize(
    ("source", "runs"),
    [("push", False), ("merge_request_event", False), ("trigger", False), ("schedule", True), ("web", True)],
)
def test_gitlab_runs_only_on_a_schedule_or_by_hand(source: str, runs: bool) -> None:
    job = _gitlab_job()
    variables = {"CI_PIPELINE_SOURCE": source, "CHAOS": "1"}
    assert any(_rule_matches(r["if"], variables) for r in job["rules"]) is runs
    assert all(r.get("when", "on_success") != "always" for r in job["rules"])


def test_gitlab_one_at_a_time_from_the_users_image_with_artifacts() -> None:
    doc, job = _load(GITLAB), _gitlab_job()
    assert job["resource_group"]
    assert job["image"]["name"] == "$CHAOSLAB_IMAGE"
    assert job["image"]["entrypoint"] == [""]
    assert ":latest" not in doc["variables"]["CHAOSLAB_IMAGE"]
    assert not [line for s in job["script"] for line in _lines(s) if "pip install" in line]
    assert job["artifacts"]["when"] == "always"
    assert "reports/" in job["artifacts"]["paths"]
    assert job["artifacts"]["reports"]["junit"] == "reports/chaos-junit.xml"


def _run_gitlab(tmp_path: Path, **codes: int) -> tuple[bool, list[str]]:
    job = _gitlab_job()
    env = {**_fake_bin(tmp_path), "GAMEDAY": job["variables"]["GAMEDAY"], "PROMETHEUS_URL": "http://p:9090",
           **{f"FAKE_{k.upper()}": str(v) for k, v in codes.items()}}
    code = _bash("\n".join(job["script"]), env, tmp_path)  # the runner joins the items into one script
    _bash("\n".join(job["after_script"]), env, tmp_path)
    calls = (tmp_path / "calls").read_text().splitlines()
    return code == 0, calls


@pytest.mark.parametrize(("code", "passes"), [(0, True), (1, False), (2, False), (3, False), (4, False)])
def test_gitlab_validates_first_and_fails_on_every_nonzero_exit(
    tmp_path: Path, code: int, passes: bool
) -> None:
    ok, calls = _run_gitlab(tmp_path, run=code)
    assert ok is passes
    assert [c.split()[0] for c in calls] == ["validate", "run", "cleanup"]


def test_gitlab_never_runs_an_invalid_game_day(tmp_path: Path) -> None:
    ok, calls = _run_gitlab(tmp_path, validate=2)
    assert not ok
    assert [c.split()[0] for c in calls] == ["validate", "cleanup"]
